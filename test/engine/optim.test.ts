import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { backward, nn, ops, optim, Tensor, tidyAsync } from '../../engine/index.ts';
import { assertClose, randomArray } from '../helpers/reference.ts';

/** torch.optim.Adam's update for one parameter in float64 (the formula of torch/optim/adam.py). */
class CpuAdam {
  m: Float64Array;
  v: Float64Array;
  step = 0;
  constructor(public p: Float64Array, readonly o: { lr: number; betas: [number, number]; eps: number; weightDecay: number }) {
    this.m = new Float64Array(p.length);
    this.v = new Float64Array(p.length);
  }
  update(grad: Float64Array | null): void {
    if (!grad) return; // torch skips p.grad is None
    const { lr, betas: [b1, b2], eps, weightDecay } = this.o;
    this.step++;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    for (let i = 0; i < this.p.length; i++) {
      const g = grad[i] + weightDecay * this.p[i];
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      // denom = sqrt(v) / sqrt(bc2) + eps; step_size = lr / bc1
      this.p[i] -= (lr / bc1) * this.m[i] / (Math.sqrt(this.v[i]) / Math.sqrt(bc2) + eps);
    }
  }
}

const SHAPES = [[5, 7], [13], [2, 3], [4]];
/** Gradient scale per parameter: parameter 2 gets gradients near eps, where eps's place matters. */
const GRAD_SCALE = [1, 0.5, 1e-8, 1];
/** Parameter 1 is frozen for the first three steps, parameter 3 for all of them. */
const hasGrad = (param: number, step: number) => (param === 1 ? step >= 3 : param !== 3);

for (const options of [
  { lr: 2e-4, betas: [0, 0.9] as [number, number], eps: 1e-8, weightDecay: 0 }, // GRAM-HD's
  { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01 }, // torch's defaults + L2
]) {
  test(`Adam matches torch's formula in float64 over 6 steps (betas ${options.betas}, weight decay ${options.weightDecay}), state survives export/import`, async () => {
    const init = SHAPES.map((s, k) => randomArray(s.reduce((a, b) => a * b, 1), 10 + k));
    const params = init.map((x, k) => nn.parameter(Tensor.fromData(Float32Array.from(x), SHAPES[k])));
    const cpu = init.map((x) => new CpuAdam(x.slice(), options));
    let adam = new optim.Adam(params, options);
    for (let step = 0; step < 6; step++) {
      const grads = init.map((x, k) => hasGrad(k, step) ? randomArray(x.length, 100 * step + k).map((g) => Math.fround(g * GRAD_SCALE[k])) : null);
      await tidyAsync(async () => {
        adam.step(grads.map((g, k) => g && Tensor.fromData(Float32Array.from(g), SHAPES[k])));
      });
      cpu.forEach((c, k) => c.update(grads[k]));
      if (step === 2) {
        // resume from a checkpoint: a fresh optimiser over the same parameters
        const saved = adam.stateDict();
        assert.equal([...saved.keys()], [
          'state.0.step', 'state.0.exp_avg', 'state.0.exp_avg_sq', 'state.2.step', 'state.2.exp_avg', 'state.2.exp_avg_sq',
          'param_groups.0.lr', 'param_groups.0.betas.0', 'param_groups.0.betas.1', 'param_groups.0.eps', 'param_groups.0.weight_decay',
        ]);
        const resumed = new optim.Adam(params, { lr: 5 });
        resumed.loadStateDict(saved);
        assert.is(resumed.lr, options.lr);
        adam.dispose();
        adam = resumed;
      }
    }
    const state = adam.stateDict();
    assert.equal([0, 1, 2, 3].map((k) => state.get(`state.${k}.step`)), [6, 3, 6, undefined]);
    for (let k = 0; k < 3; k++) {
      const p = await params[k].data();
      assertClose(p, cpu[k].p, 1e-6, `param ${k}`);
      // the change alone, so that an error in the update cannot hide behind |p|; float32 rounds p by
      // up to half an ulp (3e-8 at |p| < 1) per step, against changes of about lr (2e-4) per step
      assertClose(p.map((x, i) => x - Math.fround(init[k][i])), cpu[k].p.map((x, i) => x - init[k][i]), 1e-3, `param ${k} change`);
      assertClose(await (state.get(`state.${k}.exp_avg`) as Tensor).data(), cpu[k].m, 1e-6, `exp_avg ${k}`);
      assertClose(await (state.get(`state.${k}.exp_avg_sq`) as Tensor).data(), cpu[k].v, 1e-6, `exp_avg_sq ${k}`);
    }
    assert.equal([...(await params[3].data())], [...Float32Array.from(init[3])], 'a parameter without gradients is untouched');
    adam.dispose();
    params.forEach((p) => p.dispose());
  });
}

test('Adam.step() reads the gradients backward() accumulated; zeroGrad() drops them', async () => {
  const init = randomArray(6, 77);
  const p = nn.parameter(Tensor.fromData(Float32Array.from(init), [6]));
  const adam = new optim.Adam([p], { lr: 0.01 });
  const cpu = new CpuAdam(init.slice(), { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  await tidyAsync(async () => backward(ops.sum(ops.square(p)))); // d/dp sum(p^2) = 2p
  adam.step();
  cpu.update(init.map((x) => 2 * x));
  assertClose(await p.data(), cpu.p, 1e-6, 'param after backward + step');
  adam.zeroGrad();
  assert.is(p.grad, null);
  adam.dispose();
  p.dispose();
});

test('Adam.loadStateDict names every problem', () => {
  const p = nn.parameter(Tensor.fromData([1, 2], [2]));
  const adam = new optim.Adam([p]);
  const bad = new Map<string, Tensor | number>([
    ['state.0.step', 1], ['state.0.exp_avg', Tensor.fromData([0, 0, 0], [3])], ['state.3.step', 2], ['momentum', 0.9],
  ]);
  assert.throws(() => adam.loadStateDict(bad), (e: Error) => e.message ===
    'Adam.loadStateDict: state.0.exp_avg: checkpoint [3] vs parameter [2]; state.3.step: there are 1 parameters; ' +
    'unexpected key momentum; state.0: needs step, exp_avg and exp_avg_sq');
  p.dispose();
});

test('clipGradNorm matches torch.nn.utils.clip_grad_norm_ in float64', async () => {
  await tidyAsync(async () => {
    const data = [randomArray(37, 1), randomArray(300, 2), randomArray(600, 3)];
    const shapes = [[37], [10, 30], [600]];
    const grads = data.map((d, k) => Tensor.fromData(Float32Array.from(d), shapes[k]));
    const total = Math.sqrt(data.reduce((s, d) => s + d.reduce((t, x) => t + x * x, 0), 0));
    for (const maxNorm of [0.3, 1e3]) {
      const out = optim.clipGradNorm([grads[0], null, grads[1], grads[2]], maxNorm);
      assertClose([await out.totalNorm.item()], [total], 1e-6, 'total norm');
      assert.equal(out.totalNorm.shape, []);
      assert.is(out.grads[1], null);
      // clip_coef = max_norm / (total + 1e-6), clamped to at most 1
      const coef = Math.min(maxNorm / (total + 1e-6), 1);
      const clipped = [out.grads[0], out.grads[2], out.grads[3]];
      for (let k = 0; k < 3; k++) assertClose(await clipped[k]!.data(), data[k].map((x) => x * coef), 1e-6, `grad ${k} at max ${maxNorm}`);
    }
    const none = optim.clipGradNorm([null], 1);
    assert.is(await none.totalNorm.item(), 0);
  });
});

test('ExponentialMovingAverage follows torch_ema: min(decay, (1+n)/(10+n)), trainable parameters only', async () => {
  class Pair extends nn.Module {
    a = new nn.Linear(3, 2);
    b = nn.freeze(new nn.Linear(2, 2));
    c = new nn.Linear(2, 1, { bias: false });
  }
  const model = new Pair();
  const tracked = [model.a.weight, model.a.bias!, model.c.weight];
  const shadow = await Promise.all(tracked.map(async (t) => Float64Array.from(await t.data())));
  // decay 0.5 crosses the warm-up: (1+n)/(10+n) < 0.5 until n = 8
  const ema = new optim.ExponentialMovingAverage(model, 0.5);
  for (let n = 1; n <= 12; n++) {
    const values = tracked.map((t, k) => randomArray(t.size, 1000 * n + k));
    tracked.forEach((t, k) => nn.assign(t, Float32Array.from(values[k])));
    ema.update();
    const d = Math.min(0.5, (1 + n) / (10 + n));
    shadow.forEach((s, k) => s.forEach((x, i) => (s[i] = x - (1 - d) * (x - values[k][i]))));
  }
  const state = ema.stateDict();
  assert.equal([...state.keys()], ['decay', 'num_updates', 'shadow_params.0', 'shadow_params.1', 'shadow_params.2']);
  assert.is(state.get('num_updates'), 12);
  for (let k = 0; k < 3; k++) assertClose(await (state.get(`shadow_params.${k}`) as Tensor).data(), shadow[k], 1e-6, `shadow ${k}`);

  const copy = new Pair();
  const frozenBefore = await copy.b.weight.data();
  ema.copyTo(copy);
  assertClose(await copy.c.weight.data(), shadow[2], 1e-6, 'copyTo');
  assert.equal([...(await copy.b.weight.data())], [...frozenBefore], 'copyTo leaves untracked parameters alone');

  const resumed = new optim.ExponentialMovingAverage(new Pair(), 0.5);
  resumed.loadStateDict(state);
  assert.is(resumed.numUpdates, 12);
  assertClose(await (resumed.stateDict().get('shadow_params.1') as Tensor).data(), shadow[1], 1e-6, 'loaded shadow');
  assert.throws(() => resumed.loadStateDict(new Map([['num_updates', 1], ['shadow_params.7', 0]])), /shadow_params\.0: missing.*unexpected key shadow_params\.7/);
  ema.dispose();
  resumed.dispose();
});

test.run();
