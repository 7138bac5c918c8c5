// In-place update kernels of the optimisers: one dispatch per parameter tensor, no temporaries.
// Each follows the order of PyTorch's own tensor operations so float32 rounding matches closely.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const OPTIM_WG = 256;

/** torch.optim.Adam's single-tensor step (amsgrad and maximize off) on one parameter:
 *   g = grad + weight_decay * param            (only when weight_decay != 0)
 *   exp_avg.lerp_(g, 1 - beta1)                (torch's lerp, with its two branches)
 *   exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g
 *   param += -step_size * exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + eps)
 * with step_size = lr / bias_correction1 computed on the host. */
export const adamKernel: Kernel = {
  key: 'optim:adam',
  code: /* wgsl */ `
struct Params { n: u32, lerpWeight: f32, beta2: f32, oneMinusBeta2: f32,
  stepSize: f32, biasCorrection2Sqrt: f32, eps: f32, weightDecay: f32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> expAvg: array<f32>;
@group(0) @binding(4) var<storage, read_write> expAvgSq: array<f32>;
${linearIndexFn(OPTIM_WG)}
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  let p = param[i];
  var g = grad[i];
  if (P.weightDecay != 0.0) { g = g + P.weightDecay * p; }
  let m0 = expAvg[i];
  let w = P.lerpWeight;
  let m = select(g - (g - m0) * (1.0 - w), m0 + w * (g - m0), abs(w) < 0.5);
  let v = expAvgSq[i] * P.beta2 + P.oneMinusBeta2 * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  let denom = sqrt(v) / P.biasCorrection2Sqrt + P.eps;
  param[i] = p + (-P.stepSize) * (m / denom);
}`,
};

export function adamUniforms(n: number, h: { lerpWeight: number; beta2: number; stepSize: number; biasCorrection2Sqrt: number; eps: number; weightDecay: number }): Uint8Array {
  const buf = new ArrayBuffer(32);
  new Uint32Array(buf, 0, 1)[0] = n;
  new Float32Array(buf, 4, 7).set([h.lerpWeight, h.beta2, 1 - h.beta2, h.stepSize, h.biasCorrection2Sqrt, h.eps, h.weightDecay]);
  return new Uint8Array(buf);
}

/** torch_ema's update of one shadow tensor: tmp = shadow - param; tmp *= 1 - decay; shadow -= tmp. */
export const emaKernel: Kernel = {
  key: 'optim:ema',
  code: /* wgsl */ `
struct Params { n: u32, oneMinusDecay: f32, _pad0: u32, _pad1: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> shadow: array<f32>;
@group(0) @binding(2) var<storage, read> param: array<f32>;
${linearIndexFn(OPTIM_WG)}
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  let s = shadow[i];
  shadow[i] = s - (s - param[i]) * P.oneMinusDecay;
}`,
};

export function emaUniforms(n: number, oneMinusDecay: number): Uint8Array {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 1)[0] = n;
  new Float32Array(buf, 4, 1)[0] = oneMinusDecay;
  return new Uint8Array(buf);
}

/** The sum of squares of one gradient into `sums[slot]`, by one workgroup (a strided pass, then a
 * tree in workgroup memory): the per-tensor term of clip_grad_norm_'s total norm in one dispatch,
 * where norm + stack took four (square, sum, sqrt, a copy into the stack). */
export const sumOfSquaresKernel: Kernel = {
  key: 'optim:sum-of-squares',
  code: /* wgsl */ `
struct Params { n: u32, slot: u32, _pad0: u32, _pad1: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
var<workgroup> partial: array<f32, ${OPTIM_WG}>;
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < P.n; i += ${OPTIM_WG}u) {
    let g = grad[i];
    s += g * g;
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var half = ${OPTIM_WG / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { partial[lid] += partial[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sums[P.slot] = partial[0]; }
}`,
};

export function sumOfSquaresUniforms(n: number, slot: number): Uint32Array {
  return new Uint32Array([n, slot, 0, 0]);
}
