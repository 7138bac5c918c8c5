// An exponential moving average of a module's trainable parameters with torch_ema's semantics:
// at the n-th update (1-based) the decay is min(decay, (1 + n) / (10 + n)), and each shadow moves
// by shadow -= (1 - d)(shadow - param). Only parameters that require gradients when the average is
// created are tracked (GRAM-HD's frozen representation is not).
import { emaKernel, emaUniforms, OPTIM_WG } from '../../kernels/optim.ts';
import { assign } from '../nn/assign.ts';
import type { Module } from '../nn/module.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';

function trainable(module: Module): Tensor[] {
  return module.parameters().filter((p) => p.requiresGrad);
}

function copyOf(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape).keep();
  assign(c, t);
  return c;
}

export class ExponentialMovingAverage {
  numUpdates = 0;
  private readonly tracked: Tensor[];
  private shadowParams: Tensor[];

  constructor(module: Module, readonly decay: number) {
    if (!(decay >= 0 && decay <= 1)) throw new Error(`ExponentialMovingAverage: decay must lie in [0, 1], got ${decay}`);
    this.tracked = trainable(module);
    this.shadowParams = this.tracked.map(copyOf);
  }

  /** Moves the shadows towards the tracked parameters' current values (after an optimiser step). */
  update(): void {
    this.numUpdates++;
    const decay = Math.min(this.decay, (1 + this.numUpdates) / (10 + this.numUpdates));
    this.shadowParams.forEach((s, i) => {
      if (s.size > 0) dispatch(emaKernel, [s.buffer, this.tracked[i].buffer], emaUniforms(s.size, 1 - decay), Math.ceil(s.size / OPTIM_WG));
    });
  }

  /** Writes the averages into the parameters of `module` that require gradients (the same module
   * or another instance of its class, e.g. an inference copy). */
  copyTo(module: Module): void {
    const targets = trainable(module);
    if (targets.length !== this.shadowParams.length || targets.some((t, i) => t.shape.join() !== this.shadowParams[i].shape.join())) {
      throw new Error(`ExponentialMovingAverage.copyTo: the module's ${targets.length} trainable parameters do not match the ${this.shadowParams.length} averaged ones`);
    }
    targets.forEach((t, i) => assign(t, this.shadowParams[i]));
  }

  /** torch_ema's state_dict: `decay`, `num_updates` and `shadow_params.<i>` (the EMA's own tensors). */
  stateDict(): Map<string, Tensor | number> {
    const out = new Map<string, Tensor | number>([['decay', this.decay], ['num_updates', this.numUpdates]]);
    this.shadowParams.forEach((s, i) => out.set(`shadow_params.${i}`, s));
    return out;
  }

  /** Loads a stateDict()'s update count and shadows (copied); `decay` stays as constructed. */
  loadStateDict(source: Map<string, Tensor | number>): void {
    const problems: string[] = [];
    const numUpdates = source.get('num_updates');
    if (typeof numUpdates !== 'number') problems.push('num_updates: expected a number');
    this.shadowParams.forEach((s, i) => {
      const v = source.get(`shadow_params.${i}`);
      if (!(v instanceof Tensor)) problems.push(`shadow_params.${i}: missing`);
      else if (v.shape.join() !== s.shape.join()) problems.push(`shadow_params.${i}: checkpoint [${v.shape.join(',')}] vs model [${s.shape.join(',')}]`);
    });
    for (const key of source.keys()) {
      const m = /^shadow_params\.(\d+)$/.exec(key);
      if (m ? Number(m[1]) >= this.shadowParams.length : key !== 'num_updates' && key !== 'decay') problems.push(`unexpected key ${key}`);
    }
    if (problems.length) throw new Error(`ExponentialMovingAverage.loadStateDict: ${problems.join('; ')}`);
    this.numUpdates = numUpdates as number;
    this.shadowParams.forEach((s, i) => assign(s, source.get(`shadow_params.${i}`) as Tensor));
  }

  dispose(): void {
    for (const s of this.shadowParams) s.dispose();
    this.shadowParams = [];
  }
}
