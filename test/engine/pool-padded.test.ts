import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { assertClose, checkOp, numel, randomArray } from '../helpers/reference.ts';

/** Float64 pooling over [planes, h, w] with padding: 'max' skips padded taps, 'avg' divides by the
 * taps inside (count_include_pad false) or by kh * kw (true). */
function poolCpu(x: Float64Array, shape: number[], k: [number, number], s: [number, number], p: [number, number], mode: 'max' | 'avg', includePad = false): Float64Array {
  const [h, w] = shape.slice(-2);
  const planes = numel(shape) / (h * w);
  const ho = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1;
  const wo = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  const out = new Float64Array(planes * ho * wo);
  for (let c = 0; c < planes; c++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    let acc = mode === 'max' ? -Infinity : 0;
    let count = 0;
    for (let a = 0; a < k[0]; a++) for (let b = 0; b < k[1]; b++) {
      const r = i * s[0] - p[0] + a;
      const q = j * s[1] - p[1] + b;
      if (r < 0 || r >= h || q < 0 || q >= w) continue;
      const v = x[(c * h + r) * w + q];
      acc = mode === 'max' ? Math.max(acc, v) : acc + v;
      count++;
    }
    out[(c * ho + i) * wo + j] = mode === 'max' ? acc : acc / (includePad ? k[0] * k[1] : count);
  }
  return out;
}

const cases: { shape: number[]; k: [number, number]; s: [number, number]; p: [number, number] }[] = [
  { shape: [2, 3, 9, 11], k: [3, 3], s: [2, 2], p: [0, 0] },
  { shape: [1, 5, 8, 7], k: [3, 3], s: [1, 1], p: [1, 1] },
  { shape: [2, 2, 13, 6], k: [3, 2], s: [2, 1], p: [1, 1] },
  { shape: [1, 1, 5, 5], k: [5, 5], s: [1, 1], p: [2, 2] },
];

test('maxPool2d matches a float64 CPU reference, with and without padding', async () => {
  for (const [n, c] of cases.entries()) {
    const x = randomArray(numel(c.shape), 10 + n);
    await tidyAsync(async () => {
      const y = ops.maxPool2d(Tensor.fromData(Float32Array.from(x), c.shape), c.k, { stride: c.s, padding: c.p });
      const ref = poolCpu(x, c.shape, c.k, c.s, c.p, 'max');
      assert.equal(y.shape.slice(-2), [Math.floor((c.shape[2] + 2 * c.p[0] - c.k[0]) / c.s[0]) + 1, Math.floor((c.shape[3] + 2 * c.p[1] - c.k[1]) / c.s[1]) + 1]);
      // a max is exact
      assertClose(await y.toFloat32(), ref, 0, `maxPool2d ${JSON.stringify(c)}`);
    });
  }
});

test('maxPool2d of negative values ignores the padding (it is not zeros)', async () => {
  await tidyAsync(async () => {
    const y = ops.maxPool2d(Tensor.fromData([-5, -4, -3, -2], [1, 1, 2, 2]), 3, { stride: 1, padding: 1 });
    // every window holds the whole 2 x 2 image: max -2 everywhere, not 0
    assert.equal([...await y.toFloat32()], [-2, -2, -2, -2]);
  });
});

test('avgPool2dPadded: count_include_pad false and true match the CPU reference, with gradients', async () => {
  for (const [n, c] of cases.entries()) {
    for (const countIncludePad of [false, true]) {
      await checkOp({
        name: `avgPool2dPadded ${JSON.stringify(c)} includePad=${countIncludePad}`,
        shapes: [c.shape],
        seed: 20 + n,
        gpu: ([x]) => ops.avgPool2dPadded(x, c.k, { stride: c.s, padding: c.p, countIncludePad }),
        cpu: ([x]) => poolCpu(x, c.shape, c.k, c.s, c.p, 'avg', countIncludePad),
        gradTol: 1e-4,
      });
    }
  }
});

test('pool options are checked', () => {
  const x = Tensor.fromData(new Float32Array(16), [1, 1, 4, 4]);
  assert.throws(() => ops.maxPool2d(x, 3, { padding: 2 }), /at most half the kernel/);
  assert.throws(() => ops.avgPool2dPadded(x, 0), /positive integers/);
  assert.throws(() => ops.maxPool2d(x, 7), /larger than/);
  x.dispose();
});

test('maxPool2d says it has no gradient rule instead of returning a wrong one', async () => {
  await tidyAsync(async () => {
    const x = Tensor.fromData(new Float32Array(16), [1, 1, 4, 4]);
    x.requiresGrad = true;
    assert.throws(() => grad(ops.sum(ops.maxPool2d(x, 2)), [x]), /no gradient rule/);
  });
});

test.run();
