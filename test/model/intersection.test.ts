// Ray-manifold intersection: the fused kernel (inference) against the op-level path (training) and
// a float64 transcription of the reference's rule, on fields that cross some levels, cross none,
// cross several times, and change by less than the interpolation threshold.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { noGrad, Tensor, tidyAsync } from '../../engine/index.ts';
import { intersectManifolds } from '../../model/intersection.ts';
import { assertClose, randomArray } from '../helpers/reference.ts';

function intersect64(points: Float64Array, s: Float64Array, levels: number[], rays: number, samples: number): { hits: Float64Array; valid: Float64Array } {
  const l = levels.length;
  const hits = new Float64Array(rays * l * 3);
  const valid = new Float64Array(rays * l);
  for (let r = 0; r < rays; r++) {
    levels.forEach((level, j) => {
      let first = samples - 2;
      for (let k = 0; k + 1 < samples; k++) {
        if (s[r * samples + k + 1] <= level && s[r * samples + k] >= level) { first = k; break; }
      }
      const sl = s[r * samples + first];
      const sh = s[r * samples + first + 1];
      const ok = sh <= level && sl >= level;
      const change = sh - sl;
      const steep = Math.abs(change) > 0.05;
      for (let c = 0; c < 3; c++) {
        const xl = points[(r * samples + first) * 3 + c];
        const xh = points[(r * samples + first + 1) * 3 + c];
        hits[(r * l + j) * 3 + c] = ok && steep ? ((sh - level) * xl + (level - sl) * xh) / change : xh;
      }
      valid[r * l + j] = ok ? 1 : 0;
    });
  }
  return { hits, valid };
}

test('fused and op-level intersections match float64', async () => {
  const rays = 211;
  const samples = 16;
  const levels = [23, 20.5, 17, 14, 11.5, 8];
  const points = randomArray(rays * samples * 3, 5, -0.2, 0.2);
  const s = new Float64Array(rays * samples);
  const noise = randomArray(rays * samples, 6, -1, 1);
  for (let r = 0; r < rays; r++) {
    for (let k = 0; k < samples; k++) {
      // mostly falling fields from ~30 to ~0; every 4th ray wiggles (several crossings), every 7th is
      // flat (changes below the threshold), every 9th stays above every level
      const t = k / (samples - 1);
      let v = 30 - 30 * t + noise[r * samples + k];
      if (r % 4 === 0) v += 6 * Math.sin(9 * t + r);
      if (r % 7 === 0) v = 17 + 0.01 * noise[r * samples + k];
      if (r % 9 === 0) v = 40 + noise[r * samples + k];
      s[r * samples + k] = v;
    }
  }
  const ref = intersect64(points, s, levels, rays, samples);
  for (const impl of ['fused', 'reference'] as const) {
    await tidyAsync(async () => {
      const out = noGrad(() => intersectManifolds(Tensor.fromData(Float32Array.from(points), [1, rays, samples, 3]),
        Tensor.fromData(Float32Array.from(s), [1, rays, samples, 1]), Tensor.fromData(levels, [levels.length]), impl));
      assert.equal([out.points.shape, out.isValid.shape], [[1, rays, levels.length, 3], [1, rays, levels.length, 1]]);
      assert.equal(Array.from(await out.isValid.data()), Array.from(ref.valid), `${impl} validity`);
      const e = assertClose(await out.points.data(), ref.hits, 1e-5, `${impl} points`);
      console.log(`  ${impl}: points ${e.toExponential(2)}, ${ref.valid.reduce((a, b) => a + b, 0)} of ${ref.valid.length} valid`);
    });
  }
});

test.run();
