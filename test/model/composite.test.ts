// GRAM's compositing: the fused kernel (inference) and the op-level path (training) against a
// float64 CPU transcription of the reference's formulas, on rays with ties in distance, invalid
// points, a background that is not the farthest point, and huge densities.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { noGrad, Tensor, tidyAsync } from '../../engine/index.ts';
import { compositeManifolds } from '../../model/composite.ts';
import { assertClose, randomArray } from '../helpers/reference.ts';

/** float64: stable sort by distance, delta 1e10 for the background (index m-1) and the last sorted
 * point, alpha = (1 - exp(-delta sigma)) valid, T = prod (1 - alpha + 1e-10). */
function composite64(rgbSigma: Float64Array, dist: Float64Array, valid: Float64Array, rays: number, m: number): { rgb: Float64Array; depth: Float64Array } {
  const rgb = new Float64Array(rays * 3);
  const depth = new Float64Array(rays);
  for (let r = 0; r < rays; r++) {
    const order = [...Array(m).keys()].sort((a, b) => dist[r * m + a] - dist[r * m + b] || a - b);
    let t = 1;
    order.forEach((p, k) => {
      const delta = p === m - 1 || k === m - 1 ? 1e10 : 0.04;
      const alpha = (1 - Math.exp(-delta * rgbSigma[(r * m + p) * 4 + 3])) * valid[r * m + p];
      const w = alpha * t;
      for (let c = 0; c < 3; c++) rgb[r * 3 + c] += w * rgbSigma[(r * m + p) * 4 + c];
      depth[r] += w * dist[r * m + p];
      t *= 1 - alpha + 1e-10;
    });
  }
  return { rgb, depth };
}

test('fused and op-level compositing match float64', async () => {
  const rays = 301;
  const m = 13;
  const rgbSigma = randomArray(rays * m * 4, 3, 0, 1);
  for (let i = 0; i < rays * m; i++) rgbSigma[i * 4 + 3] *= i % 7 === 0 ? 500 : 30; // some nearly opaque points
  const dist = randomArray(rays * m, 4, 0.88, 1.12);
  for (let r = 0; r < rays; r += 5) dist[r * m + 2] = dist[r * m + 5]; // ties: the stable order decides
  for (let r = 0; r < rays; r += 3) dist[r * m + m - 1] = 0.9; // the background in front of manifolds
  const valid = Float64Array.from({ length: rays * m }, (_, i) => (i % m === m - 1 || (i * 2654435761) % 5 > 1 ? 1 : 0));
  const ref = composite64(rgbSigma, dist, valid, rays, m);
  for (const impl of ['fused', 'reference'] as const) {
    await tidyAsync(async () => {
      const out = noGrad(() => compositeManifolds(
        Tensor.fromData(Float32Array.from(rgbSigma), [1, rays, m, 4]),
        Tensor.fromData(Float32Array.from(dist), [1, rays, m, 1]),
        Tensor.fromData(Float32Array.from(valid), [1, rays, m, 1]), impl));
      assert.equal([out.rgb.shape, out.depth.shape], [[1, rays, 3], [1, rays, 1]]);
      const e1 = assertClose(await out.rgb.data(), ref.rgb, 2e-6, `${impl} rgb`);
      const e2 = assertClose(await out.depth.data(), ref.depth, 2e-6, `${impl} depth`);
      console.log(`  ${impl}: rgb ${e1.toExponential(2)}, depth ${e2.toExponential(2)}`);
    });
  }
});

test.run();
