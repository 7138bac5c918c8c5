import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { nn, ops, Tensor, tidy, tidyAsync } from '../../engine/index.ts';
import { assertClose } from '../helpers/reference.ts';

const { Module, Linear, LeakyReLU, Sequential, parameter, buffer, freeze, Random } = nn;

class Block extends Module {
  // declared before `scale`, yet torch lists a module's own parameters before its children's
  layer = new Linear(2, 2);
  scale = parameter(ops.ones([2]));
}

class Net extends Module {
  network = new Sequential(new Linear(3, 4), new LeakyReLU(0.2), new Linear(4, 2, { bias: false }));
  gain = parameter(ops.ones([1]));
  blocks = [new Block(), new Block()];
  running = buffer(ops.zeros([2]));
  /** A plain tensor field is not state. */
  cache = ops.zeros([5]).keep();
  depth = 3;
}

// What torch prints for the equivalent model (nn.Sequential, nn.ModuleList, register_buffer):
// per module its own parameters, then its own buffers, then each child's, in assignment order.
const TORCH_KEYS = [
  'gain', 'running',
  'network.0.weight', 'network.0.bias', 'network.2.weight',
  'blocks.0.scale', 'blocks.0.layer.weight', 'blocks.0.layer.bias',
  'blocks.1.scale', 'blocks.1.layer.weight', 'blocks.1.layer.bias',
];

test('state_dict and named_parameters keys follow torch for nested Sequential and ModuleList', () => {
  const net = new Net();
  assert.equal([...net.stateDict().keys()], TORCH_KEYS);
  assert.equal(net.namedParameters().map(([k]) => k), TORCH_KEYS.filter((k) => k !== 'running'));
  assert.equal(net.stateDict().get('network.2.weight')!.shape, [2, 4]);
  assert.ok(net.parameters().every((p) => p.requiresGrad && p.kept));
});

test('a parameter shared under two names is one parameter but two state_dict keys', () => {
  class Tied extends Module {
    a = new Linear(2, 2);
    b = this.a;
  }
  const m = new Tied();
  assert.equal(m.namedParameters().map(([k]) => k), ['a.weight', 'a.bias']);
  assert.equal([...m.stateDict().keys()], ['a.weight', 'a.bias', 'b.weight', 'b.bias']);
});

test('loadStateDict reports every missing, unexpected and mis-shaped key in one error', () => {
  const net = new Net();
  const source = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of net.stateDict()) source.set(k, { shape: [...t.shape], data: new Float32Array(t.size) });
  source.delete('gain');
  source.delete('blocks.1.scale');
  source.set('extra', { shape: [1], data: new Float32Array(1) });
  source.set('blocks.2.scale', { shape: [2], data: new Float32Array(2) });
  source.set('network.0.weight', { shape: [3, 4], data: new Float32Array(12) });
  source.set('network.2.weight', { shape: [2], data: new Float32Array(2) });
  assert.throws(() => net.loadStateDict(source), (e: Error) => e.message ===
    'loadStateDict: missing keys gain, blocks.1.scale; unexpected keys extra, blocks.2.scale; ' +
    'shape mismatch network.0.weight: checkpoint [3,4] vs model [4,3], network.2.weight: checkpoint [2] vs model [2,4]');
  // strict=false lets key differences through, never shape differences
  assert.throws(() => net.loadStateDict(source, { strict: false }), /^loadStateDict: shape mismatch network\.0\.weight/);
});

test('loadStateDict copies host values and tensors in place, keeping parameter identity', async () => {
  const net = new Net();
  const before = net.stateDict();
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  let v = 0;
  for (const [k, t] of before) values.set(k, { shape: [...t.shape], data: Float32Array.from({ length: t.size }, () => (v += 0.25)) });
  net.loadStateDict(values);
  for (const [k, t] of net.stateDict()) {
    assert.ok(t === before.get(k), `${k} keeps its tensor`);
    assert.equal([...(await t.data())], [...values.get(k)!.data], k);
  }
  // from GPU tensors, with one key absent and strict off
  const other = new Net();
  const partial = new Map(other.stateDict());
  partial.delete('gain');
  const { missingKeys, unexpectedKeys } = net.loadStateDict(partial, { strict: false });
  assert.equal(missingKeys, ['gain']);
  assert.equal(unexpectedKeys, []);
  assert.equal([...(await net.blocks[1].layer.weight.data())], [...(await other.blocks[1].layer.weight.data())]);
  assert.equal([...(await net.gain.data())], [...values.get('gain')!.data]);
});

test('parameters made inside tidy survive it; freeze keeps them listed', async () => {
  const layer = tidy(() => new Linear(3, 2));
  assert.not.ok(layer.weight.isDisposed);
  assert.equal((await layer.weight.data()).length, 6);
  const net = freeze(new Net());
  assert.equal(net.parameters().length, 10);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
  net.blocks[0].setRequiresGrad(true);
  assert.equal(net.parameters().filter((p) => p.requiresGrad).length, 3);
});

test('Linear: torch default init bounds and forward against float64', async () => {
  const layer = new Linear(16, 64, { rng: new Random(7) });
  const w = await layer.weight.toFloat32();
  const b = await layer.bias!.toFloat32();
  // U(-1/sqrt(in), 1/sqrt(in)) = U(-0.25, 0.25) for both: 1024 draws reach near both ends
  for (const [name, data] of [['weight', w], ['bias', b]] as const) {
    assert.ok(data.every((x) => Math.abs(x) <= 0.25), `${name} within the bound`);
  }
  assert.ok(Math.max(...w) > 0.24 && Math.min(...w) < -0.24);
  const x = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
  await tidyAsync(async () => {
    const y = await layer.forward(Tensor.fromData(x, [3, 16])).data();
    const ref = new Float64Array(3 * 64);
    for (let r = 0; r < 3; r++) for (let o = 0; o < 64; o++) {
      let s = b[o];
      for (let i = 0; i < 16; i++) s += x[r * 16 + i] * w[o * 16 + i];
      ref[r * 64 + o] = s;
    }
    assertClose(y, ref, 1e-6, 'linear forward');
  });
  // the same seed gives the same weights
  assert.equal([...(await new Linear(16, 64, { rng: new Random(7) }).weight.data())], [...w]);
});

test('Conv2d: torch state_dict names, default init bounds and forward against float64', async () => {
  // 2 -> 4 channels in 2 groups, 3x2 kernel, stride (1, 2), padding (1, 0): fan_in = 1*3*2 = 6
  const conv = new nn.Conv2d(2, 4, [3, 2], { stride: [1, 2], padding: [1, 0], groups: 2, rng: new Random(5) });
  const sd = conv.stateDict();
  assert.equal([...sd.keys()], ['weight', 'bias']);
  assert.equal(sd.get('weight')!.shape, [4, 1, 3, 2]);
  const w = await conv.weight.toFloat32();
  const b = await conv.bias!.toFloat32();
  assert.ok([...w, ...b].every((v) => Math.abs(v) <= 1 / Math.sqrt(6)));
  const [H, W] = [4, 5];
  const x = Float32Array.from({ length: 2 * H * W }, (_, i) => Math.cos(i * 0.7));
  const [Ho, Wo] = [H + 2 - 3 + 1, Math.floor((W - 2) / 2) + 1];
  const ref = new Float64Array(4 * Ho * Wo);
  for (let o = 0; o < 4; o++) for (let r = 0; r < Ho; r++) for (let c = 0; c < Wo; c++) {
    let s = b[o];
    const ci = o < 2 ? 0 : 1; // group of output channel o
    for (let a = 0; a < 3; a++) for (let k = 0; k < 2; k++) {
      const [ih, iw] = [r + a - 1, c * 2 + k];
      if (ih >= 0 && ih < H) s += x[ci * H * W + ih * W + iw] * w[o * 6 + a * 2 + k];
    }
    ref[o * Ho * Wo + r * Wo + c] = s;
  }
  await tidyAsync(async () => {
    const y = conv.forward(Tensor.fromData(x, [1, 2, H, W]));
    assert.equal(y.shape, [1, 4, Ho, Wo]);
    assertClose(await y.data(), ref, 1e-6, 'conv2d forward');
  });
});

test('initialisers: kaiming normal (leaky_relu gain), constant', async () => {
  const t = nn.parameter(ops.zeros([256, 64]));
  nn.kaimingNormal_(t, { a: 0.2 }, new Random(9));
  const v = await t.toFloat32();
  const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  // gain sqrt(2 / (1 + 0.2^2)) over sqrt(fan_in = 64); 16384 draws: standard error of std ~0.6%
  const expected = Math.sqrt(2 / 1.04) / 8;
  assert.ok(Math.abs(std / expected - 1) < 0.03, `std ${std} vs ${expected}`);
  nn.constant_(t, -1.5);
  assert.ok((await t.toFloat32()).every((x) => x === -1.5));
  t.dispose();
});

test('Random: uniform and Box-Muller normal have the right moments', () => {
  const rng = new Random(123);
  const n = 200000;
  const u = rng.uniformArray(n, -2, 4);
  const z = rng.normalArray(n, 1, 3);
  const moments = (a: Float32Array) => {
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length) };
  };
  const mu = moments(u);
  const mz = moments(z);
  // U(-2, 4): mean 1, std 6/sqrt(12); N(1, 3). Tolerances ~5 standard errors.
  assert.ok(u.every((x) => x >= -2 && x < 4));
  assert.ok(Math.abs(mu.mean - 1) < 0.02 && Math.abs(mu.std - 6 / Math.sqrt(12)) < 0.01, JSON.stringify(mu));
  assert.ok(Math.abs(mz.mean - 1) < 0.035 && Math.abs(mz.std - 3) < 0.025, JSON.stringify(mz));
});

test.run();
