// The pointwise part of the FiLM-SIREN layer's gradient in one pass over [B, N, out]: from the
// recomputed product xW = x W^T (no bias), the bias, the FiLM codes and the incoming gradient g,
//   h = xW + bias, u = freq h + phase, g_u = g cos(u),
// it writes g_h = g_u freq (feeds dx, dW and dbias), g_u (dphase) and g_u h (dfreq). The op-level
// composition it replaces is model/film-siren.ts's differentiable backward (seven elementwise
// kernels, four of them broadcasting); the two are held equal by test/model/film-siren.test.ts.
import type { Kernel } from './kernel.ts';
import { linearIndexFn, PORTABLE_SINCOS } from './wgsl.ts';

export const FILM_GRAD_WG = 256;

export const filmSirenGradKernel: Kernel = {
  key: 'film-siren-grad',
  code: /* wgsl */ `
struct Params { n: u32, rows: u32, outF: u32, pad: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> XW: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> freq: array<f32>;
@group(0) @binding(4) var<storage, read> phase: array<f32>;
@group(0) @binding(5) var<storage, read> G: array<f32>;
@group(0) @binding(6) var<storage, read_write> GH: array<f32>;
@group(0) @binding(7) var<storage, read_write> GU: array<f32>;
@group(0) @binding(8) var<storage, read_write> GUH: array<f32>;
${linearIndexFn(FILM_GRAD_WG)}
${PORTABLE_SINCOS}
@compute @workgroup_size(${FILM_GRAD_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  let o = i % P.outF;
  let code = (i / (P.rows * P.outF)) * P.outF + o;
  let h = XW[i] + bias[o];
  let f = freq[code];
  let gu = G[i] * pcos(f * h + phase[code]);
  GH[i] = gu * f;
  GU[i] = gu;
  GUH[i] = gu * h;
}`,
};

export function filmSirenGradUniforms(batch: number, rows: number, outFeatures: number): Uint32Array {
  return new Uint32Array([batch * rows * outFeatures, rows, outFeatures, 0]);
}
