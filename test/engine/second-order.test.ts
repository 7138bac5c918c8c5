// The gradient of a gradient, as GRAM-HD's R1 penalty needs it: for a small conv + leaky_relu +
// avg_pool + linear net D, the weights' gradient of |dD/dx|^2 against float64 finite differences.
import { test } from 'uvu';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { assertClose, randomArray } from '../helpers/reference.ts';

const [N, C, H, W, O] = [2, 2, 6, 6, 3];
const SLOPE = 0.2;

/** Float64 |dD/dx|^2 summed over the batch, with dD/dx by hand-written backpropagation. */
function penaltyRef(x: Float64Array, cw: Float64Array, cb: Float64Array, lw: Float64Array): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const pre = new Float64Array(O * H * W);
    for (let o = 0; o < O; o++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
      let s = cb[o];
      for (let c = 0; c < C; c++) for (let ki = 0; ki < 3; ki++) for (let kj = 0; kj < 3; kj++) {
        const y = i + ki - 1;
        const z = j + kj - 1;
        if (y >= 0 && y < H && z >= 0 && z < W) s += cw[((o * C + c) * 3 + ki) * 3 + kj] * x[((n * C + c) * H + y) * W + z];
      }
      pre[(o * H + i) * W + j] = s;
    }
    // d out / d pre: linear weight spread over each 2x2 pool window (/4), times the leaky slope
    const gPre = new Float64Array(O * H * W);
    for (let o = 0; o < O; o++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
      const k = (o * H + i) * W + j;
      const pooled = (o * (H / 2) + Math.floor(i / 2)) * (W / 2) + Math.floor(j / 2);
      gPre[k] = (lw[pooled] / 4) * (pre[k] > 0 ? 1 : SLOPE);
    }
    for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let z = 0; z < W; z++) {
      let g = 0;
      for (let o = 0; o < O; o++) for (let ki = 0; ki < 3; ki++) for (let kj = 0; kj < 3; kj++) {
        const i = y - ki + 1;
        const j = z - kj + 1;
        if (i >= 0 && i < H && j >= 0 && j < W) g += cw[((o * C + c) * 3 + ki) * 3 + kj] * gPre[(o * H + i) * W + j];
      }
      total += g * g;
    }
  }
  return total;
}

test('d/dweights of the squared input-gradient norm matches float64 finite differences', async () => {
  const x = randomArray(N * C * H * W, 11);
  const cw = randomArray(O * C * 9, 12);
  const cb = randomArray(O, 13, -0.1, 0.1);
  const lw = randomArray(O * (H / 2) * (W / 2), 14);
  await tidyAsync(async () => {
    const tx = Tensor.fromData(Float32Array.from(x), [N, C, H, W]);
    tx.requiresGrad = true;
    const [tcw, tcb, tlw] = [[cw, [O, C, 3, 3]], [cb, [O]], [lw, [1, lw.length]]].map(([d, s]) => {
      const t = Tensor.fromData(Float32Array.from(d as Float64Array), s as number[]);
      t.requiresGrad = true;
      return t;
    });
    const d = ops.linear(ops.reshape(ops.avgPool2d(ops.leakyRelu(ops.conv2d(tx, tcw, tcb, { padding: 1 }), SLOPE), 2), [N, -1]), tlw);
    const [gx] = grad(ops.sum(d), [tx], { createGraph: true });
    const penalty = ops.sum(ops.square(gx));
    const [gcw, glw] = grad(penalty, [tcw, tlw]);
    assertClose([await penalty.item()], [penaltyRef(x, cw, cb, lw)], 1e-5, 'penalty');
    const h = 1e-6;
    const fd = (arr: Float64Array, f: (a: Float64Array) => number) => Float64Array.from(arr, (_, i) => {
      const p = arr.slice();
      const m = arr.slice();
      p[i] += h;
      m[i] -= h;
      return (f(p) - f(m)) / (2 * h);
    });
    assertClose(await gcw.data(), fd(cw, (a) => penaltyRef(x, a, cb, lw)), 1e-4, 'd penalty / d conv weight');
    assertClose(await glw.data(), fd(lw, (a) => penaltyRef(x, cw, cb, a)), 1e-4, 'd penalty / d linear weight');
  });
});

test.run();
