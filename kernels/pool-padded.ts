// Max pooling over the last two dimensions with zero-cost padding: taps that fall into the padding
// are skipped, which is torch's max_pool2d (implicit -inf padding), as InceptionV3 uses it.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const POOL_PADDED_WG = 256;

/** dst[.., i, j] = max of src over the kh x kw window at (i*sh - ph, j*sw - pw), padding skipped. */
export const maxPoolKernel: Kernel = {
  key: 'max-pool-padded',
  code: () => /* wgsl */ `
struct Params { count: u32, h: u32, w: u32, ho: u32, wo: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32, _p0: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${linearIndexFn(POOL_PADDED_WG)}
@compute @workgroup_size(${POOL_PADDED_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.count) { return; }
  let plane = i / (P.ho * P.wo);
  // signed window origin: the padding makes it negative near the top and left edges
  let top = i32(((i / P.wo) % P.ho) * P.sh) - i32(P.ph);
  let left = i32((i % P.wo) * P.sw) - i32(P.pw);
  let base = plane * P.h * P.w;
  var best = -3.4028234663852886e38;
  var any = false;
  for (var a = 0u; a < P.kh; a++) {
    let r = top + i32(a);
    if (r < 0 || r >= i32(P.h)) { continue; }
    for (var b = 0u; b < P.kw; b++) {
      let c = left + i32(b);
      if (c < 0 || c >= i32(P.w)) { continue; }
      let v = src[base + u32(r) * P.w + u32(c)];
      // NaN propagates, as in torch
      if (!any || v > best || v != v) { best = v; }
      any = true;
    }
  }
  dst[i] = best;
}`,
};

export function maxPoolUniforms(count: number, h: number, w: number, ho: number, wo: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number): Uint8Array {
  return new Uint8Array(new Uint32Array([count, h, w, ho, wo, kh, kw, sh, sw, ph, pw, 0]).buffer);
}
