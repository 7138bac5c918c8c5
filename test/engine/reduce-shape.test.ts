import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { assertClose, checkOp, numel, randomArray } from '../helpers/reference.ts';

/** Float64 reduction of x (shape) over dims with keepdim. */
function reduceRef(x: Float64Array, shape: number[], dims: number[], f: (vals: number[]) => number): Float64Array {
  const outShape = shape.map((s, d) => (dims.includes(d) ? 1 : s));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < x.length; i++) {
    let rem = i;
    let o = 0;
    let mul = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
      o += (dims.includes(d) ? 0 : c) * mul;
      mul *= outShape[d];
    }
    if (!groups.has(o)) groups.set(o, []);
    groups.get(o)!.push(x[i]);
  }
  return Float64Array.from({ length: numel(outShape) }, (_, o) => f(groups.get(o)!));
}

const sumOf = (v: number[]) => v.reduce((a, b) => a + b, 0);

test('sum, mean, max, min over dims match float64 with gradients', async () => {
  const shape = [3, 5, 7];
  for (const dims of [[0], [1], [2], [0, 2], [0, 1, 2], [1, 2]]) {
    await checkOp({ name: `sum ${dims}`, shapes: [shape], gpu: ([x]) => ops.sum(x, dims), cpu: ([x]) => reduceRef(x, shape, dims, sumOf) });
    await checkOp({ name: `mean ${dims}`, shapes: [shape], gpu: ([x]) => ops.mean(x, dims, true), cpu: ([x]) => reduceRef(x, shape, dims, (v) => sumOf(v) / v.length) });
    await checkOp({ name: `max ${dims}`, shapes: [shape], gpu: ([x]) => ops.max(x, dims), cpu: ([x]) => reduceRef(x, shape, dims, (v) => Math.max(...v)) });
    await checkOp({ name: `min ${dims}`, shapes: [shape], gpu: ([x]) => ops.min(x, dims), cpu: ([x]) => reduceRef(x, shape, dims, (v) => Math.min(...v)) });
  }
  await checkOp({ name: 'norm', shapes: [[4, 9]], gpu: ([x]) => ops.norm(x, 1), cpu: ([x]) => reduceRef(x, [4, 9], [1], (v) => Math.sqrt(sumOf(v.map((a) => a * a)))) });
});

test('few outputs over long strided runs are reduced in spans (two passes) and match float64', async () => {
  // [2, 3000, 5] over dim 1: 10 outputs, so the first pass splits the 3000 rows into spans;
  // [1100, 3] over dim 0: spans that do not divide the 1100 rows evenly. (The gradient rule,
  // an expand, does not depend on how the forward is computed.)
  const cases: [number[], number[]][] = [[[2, 3000, 5], [1]], [[1100, 3], [0]], [[1100, 3], [0, 1]], [[2, 3000, 5], [0, 1]]];
  const reductions = [['sum', ops.sum, sumOf], ['max', ops.max, (v: number[]) => Math.max(...v)], ['min', ops.min, (v: number[]) => Math.min(...v)]] as const;
  for (const [shape, dims] of cases) {
    const x = randomArray(numel(shape), 7);
    for (const [name, op, f] of reductions) {
      const got = await tidyAsync(() => op(Tensor.fromData(Float32Array.from(x), shape), dims).data());
      assertClose(got, reduceRef(x, shape, dims, f), 1e-5, `${name} [${shape}] over ${dims}`);
    }
  }
});

test('long rows use the workgroup reduction and stay accurate', async () => {
  const n = 3 * 100003;
  await checkOp({ name: 'sum rows', shapes: [[3, 1201]], gpu: ([x]) => ops.sum(x, 1), cpu: ([x]) => reduceRef(x, [3, 1201], [1], sumOf) });
  await tidyAsync(async () => {
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
    data[123457] = 5;
    const t = Tensor.fromData(data, [n]);
    assert.is(await ops.argmax(t, 0).item(), 123457);
    assert.equal(Math.fround(await ops.max(t).item()), 5);
  });
});

test('few long contiguous rows are reduced a span per workgroup (two passes) and match float64', async () => {
  // [1, 1000003]: 244 spans of 4099 (the last one short); [3, 200001]: 48 spans per row; the
  // whole of [1000, 1000]: one row of 10^6
  const cases: [number[], number[]][] = [[[1, 1000003], [1]], [[3, 200001], [1]], [[1000, 1000], [0, 1]]];
  // (Math.max(...v) overflows the stack at 10^6 arguments)
  const longReductions = [['sum', ops.sum, sumOf], ['max', ops.max, (v: number[]) => v.reduce((a, b) => Math.max(a, b))],
    ['min', ops.min, (v: number[]) => v.reduce((a, b) => Math.min(a, b))]] as const;
  for (const [shape, dims] of cases) {
    const x = randomArray(numel(shape), 11);
    // extremes in the last, partial span of the first row
    x[shape[1] - 2] = 7;
    x[shape[1] - 1] = -7;
    for (const [name, op, f] of longReductions) {
      const got = await tidyAsync(() => op(Tensor.fromData(Float32Array.from(x), shape), dims).data());
      assertClose(got, reduceRef(x, shape, dims, f), 1e-5, `${name} [${shape}] over ${dims}`);
    }
  }
});

test('argmax returns the first maximal index along a dim', async () => {
  await tidyAsync(async () => {
    const t = Tensor.fromData([1, 3, 3, 0, 4, 3, 5, 5, 5, 6, 0, 5], [2, 2, 3]);
    assert.equal([...(await ops.argmax(t, 2).data())], [1, 1, 0, 0]);
    assert.equal([...(await ops.argmax(t, 1).data())], [0, 1, 0, 1, 0, 0]);
  });
});

test('reshape, permute, transpose, slice, narrow, concat, stack, flip with gradients', async () => {
  await checkOp({ name: 'reshape', shapes: [[4, 6]], gpu: ([x]) => ops.mul(ops.reshape(x, [2, -1, 3]), 2), cpu: ([x]) => x.map((v) => 2 * v) });
  const perm = [2, 0, 1];
  await checkOp({
    name: 'permute', shapes: [[2, 3, 4]], gpu: ([x]) => ops.permute(x, perm),
    cpu: ([x]) => { const o = new Float64Array(24); for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 4; c++) o[c * 6 + a * 3 + b] = x[a * 12 + b * 4 + c]; return o; },
  });
  await checkOp({
    name: 'slice with step', shapes: [[5, 7]], gpu: ([x]) => ops.slice(x, { start: [1, 2], size: [2, 3], step: [2, 2] }),
    cpu: ([x]) => Float64Array.from([1, 3].flatMap((r) => [2, 4, 6].map((c) => x[r * 7 + c]))),
  });
  await checkOp({
    name: 'concat', shapes: [[2, 3], [2, 1], [2, 2]], gpu: (xs) => ops.concat(xs, 1),
    cpu: ([a, b, c]) => Float64Array.from([0, 1].flatMap((r) => [...a.slice(r * 3, r * 3 + 3), b[r], ...c.slice(r * 2, r * 2 + 2)])),
  });
  await checkOp({
    name: 'stack', shapes: [[3], [3]], gpu: (xs) => ops.stack(xs, 1),
    cpu: ([a, b]) => Float64Array.from([0, 1, 2].flatMap((i) => [a[i], b[i]])),
  });
  await checkOp({
    name: 'flip', shapes: [[3, 4]], gpu: ([x]) => ops.flip(x, 1),
    cpu: ([x]) => Float64Array.from([0, 1, 2].flatMap((r) => [3, 2, 1, 0].map((c) => x[r * 4 + c]))),
  });
  await checkOp({
    name: 'transpose then matmul-free mul', shapes: [[3, 5]], gpu: ([x]) => ops.transpose(x),
    cpu: ([x]) => Float64Array.from({ length: 15 }, (_, i) => x[(i % 3) * 5 + Math.floor(i / 3)]),
  });
});

test('cumsum and cumprod along a dim, forward and backward', async () => {
  const shape = [2, 6, 3];
  const scan = (x: Float64Array, f: (a: number, b: number) => number, reverse: boolean) => {
    const o = new Float64Array(x.length);
    for (let a = 0; a < 2; a++) for (let c = 0; c < 3; c++) {
      let acc = NaN;
      for (let t = 0; t < 6; t++) {
        const r = reverse ? 5 - t : t;
        const v = x[a * 18 + r * 3 + c];
        acc = t === 0 ? v : f(acc, v);
        o[a * 18 + r * 3 + c] = acc;
      }
    }
    return o;
  };
  await checkOp({ name: 'cumsum', shapes: [shape], gpu: ([x]) => ops.cumsum(x, 1), cpu: ([x]) => scan(x, (a, b) => a + b, false) });
  await checkOp({ name: 'cumsum reverse', shapes: [shape], gpu: ([x]) => ops.cumsum(x, 1, true), cpu: ([x]) => scan(x, (a, b) => a + b, true) });
  await checkOp({ name: 'cumprod', shapes: [shape], ranges: [[0.3, 1.5]], gpu: ([x]) => ops.cumprod(x, 1), cpu: ([x]) => scan(x, (a, b) => a * b, false) });
});

test('sort with indices along a short dim; gather and scatterAdd gradients', async () => {
  const shape = [4, 9, 2];
  const sortRef = (x: Float64Array, desc: boolean) => {
    const o = new Float64Array(x.length);
    for (let a = 0; a < 4; a++) for (let c = 0; c < 2; c++) {
      const vals = [...Array(9).keys()].map((t) => x[a * 18 + t * 2 + c]).sort((p, q) => (desc ? q - p : p - q));
      vals.forEach((v, t) => (o[a * 18 + t * 2 + c] = v));
    }
    return o;
  };
  await checkOp({ name: 'sort', shapes: [shape], gpu: ([x]) => ops.sort(x, 1).values, cpu: ([x]) => sortRef(x, false) });
  await checkOp({ name: 'sort desc', shapes: [shape], gpu: ([x]) => ops.sort(x, 1, true).values, cpu: ([x]) => sortRef(x, true) });
  await tidyAsync(async () => {
    const t = Tensor.fromData([3, 1, 2, 1, 5, 0], [6]);
    assert.equal([...(await ops.argsort(t, 0).data())], [5, 1, 3, 2, 0, 4], 'stable ascending order');
  });
  const idx = [2, 0, 2, 1, 1, 1];
  await checkOp({
    name: 'gather with repeats', shapes: [[2, 3]],
    gpu: ([x]) => ops.gather(x, 1, Tensor.fromData(idx, [2, 3], 'i32')),
    cpu: ([x]) => Float64Array.from(idx.map((j, k) => x[Math.floor(k / 3) * 3 + j])),
  });
  await checkOp({
    name: 'scatterAdd', shapes: [[2, 3]],
    gpu: ([g]) => ops.scatterAdd(g, 1, Tensor.fromData(idx, [2, 3], 'i32'), 4),
    cpu: ([g]) => { const o = new Float64Array(8); idx.forEach((j, k) => (o[Math.floor(k / 3) * 4 + j] += g[k])); return o; },
  });
  await tidyAsync(async () => {
    const oh = await ops.oneHot(Tensor.fromData([2, 0], [2], 'i32'), 3).data();
    assert.equal([...oh], [0, 0, 1, 1, 0, 0]);
  });
});

test('grad(): createGraph gives a differentiable gradient; allowUnused; backward accumulates', async () => {
  await tidyAsync(async () => {
    const x = Tensor.fromData([0.5, -1.5, 2], [3]);
    x.requiresGrad = true;
    const y = ops.sum(ops.mul(ops.pow(x, 3), ops.sin(x)));
    const [g] = (await import('../../engine/index.ts')).grad(y, [x], { createGraph: true });
    // d/dx (x^3 sin x) = 3x^2 sin x + x^3 cos x; second derivative: 6x sin x + 6x^2 cos x - x^3 sin x
    const [gg] = (await import('../../engine/index.ts')).grad(ops.sum(g), [x]);
    const xs = [0.5, -1.5, 2];
    const d1 = xs.map((v) => 3 * v * v * Math.sin(v) + v ** 3 * Math.cos(v));
    const d2 = xs.map((v) => 6 * v * Math.sin(v) + 6 * v * v * Math.cos(v) - v ** 3 * Math.sin(v));
    const [a, b] = [await g.data(), await gg.data()];
    xs.forEach((_, i) => {
      assert.ok(Math.abs(a[i] - d1[i]) < 1e-5 * (1 + Math.abs(d1[i])), `first derivative ${a[i]} vs ${d1[i]}`);
      assert.ok(Math.abs(b[i] - d2[i]) < 1e-5 * (1 + Math.abs(d2[i])), `second derivative ${b[i]} vs ${d2[i]}`);
    });
    const unused = Tensor.fromData([1], [1]);
    unused.requiresGrad = true;
    const { grad, backward } = await import('../../engine/index.ts');
    assert.throws(() => grad(ops.sum(ops.mul(x, 2)), [unused]), /not used/);
    assert.equal([...(await grad(ops.sum(ops.mul(x, 2)), [unused], { allowUnused: true })[0].data())], [0]);
    backward(ops.sum(ops.mul(x, 2)));
    backward(ops.sum(ops.mul(x, 3)));
    assert.equal([...(await x.grad!.data())], [5, 5, 5]);
    x.grad!.dispose();
  });
});

test.run();

test('concat, narrow and their gradients over long contiguous runs (buffer copies) are exact', async () => {
  await tidyAsync(async () => {
    // planes of 32 x 40 = 1280 floats: each sample's channel block is one run >= the buffer-copy minimum
    const plane = 32 * 40;
    const a = randomArray(2 * 3 * plane, 1);
    const b = randomArray(2 * 2 * plane, 2);
    const r = randomArray(2 * 5 * plane, 3);
    const ta = Tensor.fromData(Float32Array.from(a), [2, 3, 32, 40]);
    const tb = Tensor.fromData(Float32Array.from(b), [2, 2, 32, 40]);
    ta.requiresGrad = true;
    tb.requiresGrad = true;
    const joined = ops.concat([ta, tb], 1);
    const expected = new Float32Array(2 * 5 * plane);
    for (let n = 0; n < 2; n++) {
      expected.set(Float32Array.from(a.slice(n * 3 * plane, (n + 1) * 3 * plane)), n * 5 * plane);
      expected.set(Float32Array.from(b.slice(n * 2 * plane, (n + 1) * 2 * plane)), (n * 5 + 3) * plane);
    }
    assert.equal(Array.from(await joined.data()), Array.from(expected));
    const middle = ops.narrow(joined, 1, 2, 2);
    const expectedMiddle = new Float32Array(2 * 2 * plane);
    for (let n = 0; n < 2; n++) expectedMiddle.set(expected.subarray((n * 5 + 2) * plane, (n * 5 + 4) * plane), n * 2 * plane);
    assert.equal(Array.from(await middle.data()), Array.from(expectedMiddle));
    // d sum(narrow(concat(a, b)) * r') / d(a, b): r' lands on channel 2 of a and channel 0 of b, zero elsewhere
    const rt = Tensor.fromData(Float32Array.from(r.slice(0, 2 * 2 * plane)), [2, 2, 32, 40]);
    const [ga, gb] = grad(ops.sum(ops.mul(middle, rt)), [ta, tb]);
    const rf = Float32Array.from(r.slice(0, 2 * 2 * plane));
    const expectedGa = new Float32Array(2 * 3 * plane);
    const expectedGb = new Float32Array(2 * 2 * plane);
    for (let n = 0; n < 2; n++) {
      expectedGa.set(rf.subarray(n * 2 * plane, (n * 2 + 1) * plane), (n * 3 + 2) * plane);
      expectedGb.set(rf.subarray((n * 2 + 1) * plane, (n * 2 + 2) * plane), n * 2 * plane);
    }
    assert.equal(Array.from(await ga!.data()), Array.from(expectedGa));
    assert.equal(Array.from(await gb!.data()), Array.from(expectedGb));
  });
});
