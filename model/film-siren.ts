// The FiLM-SIREN layer of the radiance network, sin(freq * (x W^T + b) + phase), with the FiLM codes
// of each batch element applied to all of its points. Two implementations, held equal by the tests
// (like eg3d's bias_act impl='ref'|'cuda'): one fused kernel (kernels/film-siren.ts), whose
// pre-activation never reaches memory, and the op-level composition it replaces.
import { ops, Tensor } from '../engine/index.ts';
import { isGradEnabled, record } from '../engine/autograd.ts';
import { dispatch } from '../engine/runtime.ts';
import { FILM_GRAD_WG, filmSirenGradKernel, filmSirenGradUniforms } from '../kernels/film-siren-grad.ts';
import { fusedLinearForward, type FusedImpl } from './fused-linear.ts';

function check(x: Tensor, weight: Tensor, bias: Tensor, freq: Tensor, phase: Tensor): { batch: number; rows: number } {
  const [b, rows, inF] = x.shape;
  const out = weight.shape[0];
  if (x.rank !== 3 || weight.rank !== 2 || weight.shape[1] !== inF) throw new Error(`filmSiren: x [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}]`);
  if (bias.shape.join() !== `${out}`) throw new Error(`filmSiren: bias [${bias.shape.join(', ')}] must be [${out}]`);
  if (freq.shape.join() !== `${b},${out}` || phase.shape.join() !== `${b},${out}`) {
    throw new Error(`filmSiren: freq [${freq.shape.join(', ')}] and phase [${phase.shape.join(', ')}] must be [${b}, ${out}]`);
  }
  return { batch: b, rows };
}

/**
 * x [B, N, in], weight [out, in], bias [out], freq and phase [B, out] -> [B, N, out].
 * `freq` is the frequency itself (the mapping output already scaled by 15 and shifted by 30).
 */
export function filmSiren(x: Tensor, weight: Tensor, bias: Tensor, freq: Tensor, phase: Tensor, impl: FusedImpl = 'fused'): Tensor {
  return impl === 'fused' ? filmSirenFused(x, weight, bias, freq, phase) : filmSirenReference(x, weight, bias, freq, phase);
}

/** The op-level composition: linear, then the per-element modulation, then the portable sine. */
export function filmSirenReference(x: Tensor, weight: Tensor, bias: Tensor, freq: Tensor, phase: Tensor): Tensor {
  check(x, weight, bias, freq, phase);
  const h = ops.linear(x, weight, bias);
  return ops.sin(ops.add(ops.mul(h, ops.unsqueeze(freq, 1)), ops.unsqueeze(phase, 1)));
}

/**
 * One kernel. Its gradient is written with ops (so it is differentiable again) and recomputes the
 * pre-activation h = x W^T + b rather than keeping it: with u = freq h + phase and g_u = g cos(u),
 * dx = (g_u freq) W, dW = sum (g_u freq)^T x, db = sum g_u freq, dfreq = sum_N g_u h,
 * dphase = sum_N g_u.
 */
export function filmSirenFused(x: Tensor, weight: Tensor, bias: Tensor, freq: Tensor, phase: Tensor): Tensor {
  const p = check(x, weight, bias, freq, phase);
  const y = fusedLinearForward('film-sine', x, weight, bias, [freq, phase]);
  return record(y, 'filmSiren', [x, weight, bias, freq, phase], (g) => {
    if (!isGradEnabled()) return filmSirenGradFused(g, x, weight, bias, freq, phase, p);
    const f = ops.unsqueeze(freq, 1);
    const h = ops.linear(x, weight, bias);
    const gu = ops.mul(g, ops.cos(ops.add(ops.mul(h, f), ops.unsqueeze(phase, 1))));
    const gh = ops.mul(gu, f);
    const flat = (t: Tensor) => ops.reshape(t, [p.batch * p.rows, t.shape[2]]);
    return [
      x.requiresGrad ? ops.matmul(gh, weight) : null,
      weight.requiresGrad ? ops.matmul(flat(gh), flat(x), { transA: true }) : null,
      bias.requiresGrad ? ops.sum(gh, [0, 1]) : null,
      freq.requiresGrad ? ops.sum(ops.mul(gu, h), 1) : null,
      phase.requiresGrad ? ops.sum(gu, 1) : null,
    ];
  });
}

/**
 * The same gradient when it is not itself differentiated (no createGraph, as in every generator
 * step): the pointwise part in one kernel (kernels/film-siren-grad.ts) instead of seven, then the
 * two matmuls and three sums of the differentiable path above.
 */
function filmSirenGradFused(g: Tensor, x: Tensor, weight: Tensor, bias: Tensor, freq: Tensor, phase: Tensor, p: { batch: number; rows: number }): (Tensor | null)[] {
  const out = weight.shape[0];
  const xw = ops.matmul(x, weight, { transB: true });
  const [gh, gu, guh] = [0, 1, 2].map(() => Tensor.empty([p.batch, p.rows, out]));
  const n = gh.size;
  if (n > 0) {
    dispatch(filmSirenGradKernel, [xw.buffer, bias.buffer, freq.buffer, phase.buffer, g.buffer, gh.buffer, gu.buffer, guh.buffer],
      filmSirenGradUniforms(p.batch, p.rows, out), Math.ceil(n / FILM_GRAD_WG));
  }
  const flat = (t: Tensor) => ops.reshape(t, [p.batch * p.rows, t.shape[2]]);
  return [
    x.requiresGrad ? ops.matmul(gh, weight) : null,
    weight.requiresGrad ? ops.matmul(flat(gh), flat(x), { transA: true }) : null,
    bias.requiresGrad ? ops.sum(gh, [0, 1]) : null,
    freq.requiresGrad ? ops.sum(guh, 1) : null,
    phase.requiresGrad ? ops.sum(gu, 1) : null,
  ];
}
