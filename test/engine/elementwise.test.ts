import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { broadcastMap, checkOp } from '../helpers/reference.ts';

type Unary = [string, (x: Tensor) => Tensor, (v: number) => number, [number, number]?];
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
const unaries: Unary[] = [
  ['neg', ops.neg, (v) => -v],
  ['exp', ops.exp, Math.exp],
  ['log', ops.log, Math.log, [0.2, 3]],
  ['sin', ops.sin, Math.sin, [-40, 40]],
  ['cos', ops.cos, Math.cos, [-40, 40]],
  ['sqrt', ops.sqrt, Math.sqrt, [0.2, 3]],
  ['rsqrt', ops.rsqrt, (v) => 1 / Math.sqrt(v), [0.2, 3]],
  ['square', ops.square, (v) => v * v],
  ['abs', ops.abs, Math.abs],
  ['sigmoid', ops.sigmoid, (v) => 1 / (1 + Math.exp(-v)), [-8, 8]],
  ['softplus', ops.softplus, softplus, [-6, 6]],
  ['relu', ops.relu, (v) => Math.max(v, 0)],
  ['leakyRelu', (x) => ops.leakyRelu(x, 0.2), (v) => (v > 0 ? v : 0.2 * v)],
  ['tanh', ops.tanh, Math.tanh, [-3, 3]],
  ['pow3', (x) => ops.pow(x, 3), (v) => v ** 3],
  ['clamp', (x) => ops.clamp(x, -0.5, 0.5), (v) => Math.min(0.5, Math.max(-0.5, v))],
];

for (const [name, f, ref, range] of unaries) {
  test(`${name} forward and gradient match float64`, async () => {
    // shapes not a multiple of any workgroup size; the kinks of relu/abs/clamp are avoided by
    // the FD step being far smaller than the distance of random points to them (almost surely)
    await checkOp({ name, shapes: [[3, 37]], ranges: [range ?? [-2, 2]], gpu: ([x]) => f(x), cpu: ([x]) => x.map(ref) });
  });
}

type Binary = [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number, [number, number]?];
const binaries: Binary[] = [
  ['add', ops.add, (a, b) => a + b],
  ['sub', ops.sub, (a, b) => a - b],
  ['mul', ops.mul, (a, b) => a * b],
  ['div', ops.div, (a, b) => a / b, [0.5, 2]],
  ['maximum', ops.maximum, Math.max],
  ['minimum', ops.minimum, Math.min],
];
const shapePairs: [number[], number[]][] = [[[5, 7], [5, 7]], [[2, 3, 5], [3, 1]], [[4, 1, 6], [1, 3, 1]], [[7], [2, 3, 7]]];

for (const [name, f, ref, range] of binaries) {
  test(`${name} broadcasts, forward and gradients match float64`, async () => {
    for (const [sa, sb] of shapePairs) {
      const out = [...Array(Math.max(sa.length, sb.length))].map((_, d, arr) => Math.max(sa[sa.length - arr.length + d] ?? 1, sb[sb.length - arr.length + d] ?? 1));
      await checkOp({
        name: `${name} [${sa}] x [${sb}]`, shapes: [sa, sb], ranges: [range ?? [-2, 2], range ?? [-2, 2]],
        gpu: ([a, b]) => f(a, b),
        cpu: ([a, b]) => broadcastMap(out, [{ data: a, shape: sa }, { data: b, shape: sb }], ref),
      });
    }
  });
}

test('scalar operands and where/comparisons', async () => {
  await checkOp({ name: 'x*3+1', shapes: [[9]], gpu: ([x]) => ops.add(ops.mul(x, 3), 1), cpu: ([x]) => x.map((v) => v * 3 + 1) });
  await checkOp({ name: '2-x', shapes: [[9]], gpu: ([x]) => ops.sub(2, x), cpu: ([x]) => x.map((v) => 2 - v) });
  await checkOp({ name: '2/x', shapes: [[9]], ranges: [[0.5, 2]], gpu: ([x]) => ops.div(2, x), cpu: ([x]) => x.map((v) => 2 / v) });
  await checkOp({
    name: 'where(a>b, a*b, b)', shapes: [[4, 5], [5]],
    gpu: ([a, b]) => ops.where(ops.gt(a, b), ops.mul(a, b), b),
    cpu: ([a, b]) => broadcastMap([4, 5], [{ data: a, shape: [4, 5] }, { data: b, shape: [5] }], (x, y) => (x > y ? x * y : y)),
  });
  await tidyAsync(async () => {
    const a = Tensor.fromData([1, 2, 3], [3]);
    assert.equal([...(await ops.ge(a, 2).data())], [0, 1, 1]);
    assert.equal([...(await ops.ne(a, 2).data())], [1, 0, 1]);
    assert.equal([...(await ops.lt(a, Tensor.fromData([3, 2, 1], [3])).data())], [1, 0, 0]);
  });
});

test('portable sin/cos are float32-accurate up to |x| = 300', async () => {
  await tidyAsync(async () => {
    const n = 20001;
    const xs = Float32Array.from({ length: n }, (_, i) => -300 + (600 * i) / (n - 1));
    const t = Tensor.fromData(xs, [n]);
    const [s, c] = [await ops.sin(t).data(), await ops.cos(t).data()];
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(s[i] - Math.sin(xs[i])), Math.abs(c[i] - Math.cos(xs[i])));
    // lavapipe's own sin reaches 7.5e-8 here, SwiftShader's 1.9e-4
    assert.ok(worst < 2.5e-7, `max abs error ${worst}`);
  });
});

test.run();
