// Adam with torch.optim.Adam's semantics (one parameter group, amsgrad and maximize off). Each
// parameter is updated in place by one fused kernel; the bias corrections are host numbers, so a
// step reads nothing back. Parameters without a gradient are skipped but keep their index, exactly
// as torch skips `p.grad is None`, so state indices match torch's optimizer state_dict.
import { adamKernel, adamUniforms, OPTIM_WG } from '../../kernels/optim.ts';
import { assign } from '../nn/assign.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import * as ops from '../ops/index.ts';

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient (torch's, not AdamW's decoupled decay); default 0. */
  weightDecay?: number;
}

interface ParamState {
  /** Steps taken by this parameter (torch counts per parameter). */
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/** Checkpoint names of the hyperparameters, as in torch's param_groups[0]. */
const GROUP = 'param_groups.0.';

export class Adam {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  private state: (ParamState | null)[];

  constructor(readonly params: readonly Tensor[], options: AdamOptions = {}) {
    this.lr = options.lr ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    if (!(this.lr >= 0) || !(this.eps >= 0) || !(this.weightDecay >= 0)) throw new Error(`Adam: invalid lr ${this.lr}, eps ${this.eps} or weight decay ${this.weightDecay}`);
    if (this.betas.some((b) => !(b >= 0 && b < 1))) throw new Error(`Adam: betas must lie in [0, 1), got [${this.betas.join(', ')}]`);
    this.state = params.map(() => null);
  }

  /** Updates every parameter that has a gradient: `grads[i]` for params[i] (default: the
   * parameters' .grad, as accumulated by backward()). */
  step(grads: readonly (Tensor | null)[] = this.params.map((p) => p.grad)): void {
    if (grads.length !== this.params.length) throw new Error(`Adam.step: ${grads.length} gradients for ${this.params.length} parameters`);
    const [beta1, beta2] = this.betas;
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (!g) return;
      if (g.size !== p.size) throw new Error(`Adam.step: gradient [${g.shape.join(', ')}] for parameter ${i} [${p.shape.join(', ')}]`);
      const s = (this.state[i] ??= { step: 0, expAvg: ops.zerosLike(p).keep(), expAvgSq: ops.zerosLike(p).keep() });
      s.step++;
      const biasCorrection1 = 1 - beta1 ** s.step;
      const biasCorrection2 = 1 - beta2 ** s.step;
      const uniforms = adamUniforms(p.size, {
        lerpWeight: 1 - beta1, beta2, stepSize: this.lr / biasCorrection1,
        biasCorrection2Sqrt: Math.sqrt(biasCorrection2), eps: this.eps, weightDecay: this.weightDecay,
      });
      if (p.size > 0) dispatch(adamKernel, [p.buffer, g.buffer, s.expAvg.buffer, s.expAvgSq.buffer], uniforms, Math.ceil(p.size / OPTIM_WG));
    });
  }

  /** Drops the parameters' accumulated gradients (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** State in torch's optimizer state_dict layout: `state.<i>.step`, `state.<i>.exp_avg`,
   * `state.<i>.exp_avg_sq` for every parameter that has taken a step, then the hyperparameters
   * under `param_groups.0.`. The tensors are the optimiser's own, not copies. */
  stateDict(): Map<string, Tensor | number> {
    const out = new Map<string, Tensor | number>();
    this.state.forEach((s, i) => {
      if (!s) return;
      out.set(`state.${i}.step`, s.step);
      out.set(`state.${i}.exp_avg`, s.expAvg);
      out.set(`state.${i}.exp_avg_sq`, s.expAvgSq);
    });
    out.set(`${GROUP}lr`, this.lr);
    out.set(`${GROUP}betas.0`, this.betas[0]);
    out.set(`${GROUP}betas.1`, this.betas[1]);
    out.set(`${GROUP}eps`, this.eps);
    out.set(`${GROUP}weight_decay`, this.weightDecay);
    return out;
  }

  /** Replaces the state (and any hyperparameters present) with a stateDict()'s; the tensors are
   * copied. Every problem is reported at once before anything changes. */
  loadStateDict(source: Map<string, Tensor | number>): void {
    const problems: string[] = [];
    const loaded: (ParamState | null)[] = this.params.map(() => null);
    const entries = new Map<number, { step?: number; exp_avg?: Tensor; exp_avg_sq?: Tensor }>();
    const hyper = new Map<string, number>();
    for (const [key, value] of source) {
      const m = /^state\.(\d+)\.(step|exp_avg|exp_avg_sq)$/.exec(key);
      if (m) {
        const i = Number(m[1]);
        const p = this.params[i];
        const field = m[2] as 'step' | 'exp_avg' | 'exp_avg_sq';
        if (!p) problems.push(`${key}: there are ${this.params.length} parameters`);
        else if (field === 'step' ? typeof value !== 'number' : !(value instanceof Tensor)) problems.push(`${key}: expected a ${field === 'step' ? 'number' : 'tensor'}`);
        else if (value instanceof Tensor && value.shape.join() !== p.shape.join()) {
          problems.push(`${key}: checkpoint [${value.shape.join(',')}] vs parameter [${p.shape.join(',')}]`);
        } else entries.set(i, { ...entries.get(i), [field]: value });
      } else if (key.startsWith(GROUP) && typeof value === 'number' && ['lr', 'betas.0', 'betas.1', 'eps', 'weight_decay'].includes(key.slice(GROUP.length))) {
        hyper.set(key.slice(GROUP.length), value);
      } else {
        problems.push(`unexpected key ${key}`);
      }
    }
    for (const [i, e] of entries) {
      if (e.step === undefined || !e.exp_avg || !e.exp_avg_sq) problems.push(`state.${i}: needs step, exp_avg and exp_avg_sq`);
    }
    if (problems.length) throw new Error(`Adam.loadStateDict: ${problems.join('; ')}`);
    for (const [i, e] of entries) {
      const copy = (t: Tensor) => {
        const own = Tensor.empty(this.params[i].shape).keep();
        assign(own, t);
        return own;
      };
      loaded[i] = { step: e.step!, expAvg: copy(e.exp_avg!), expAvgSq: copy(e.exp_avg_sq!) };
    }
    this.dispose();
    this.state = loaded;
    this.lr = hyper.get('lr') ?? this.lr;
    this.betas = [hyper.get('betas.0') ?? this.betas[0], hyper.get('betas.1') ?? this.betas[1]];
    this.eps = hyper.get('eps') ?? this.eps;
    this.weightDecay = hyper.get('weight_decay') ?? this.weightDecay;
  }

  /** Frees the moment tensors; the parameters are untouched. */
  dispose(): void {
    for (const s of this.state) {
      s?.expAvg.dispose();
      s?.expAvgSq.dispose();
    }
    this.state = this.params.map(() => null);
  }
}
