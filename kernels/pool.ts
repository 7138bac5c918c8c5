// Average pooling over the last two dimensions (no padding, windows that do not fit are dropped,
// as torch's avg_pool2d does) and its adjoint, which gathers for every input pixel the windows
// that cover it (a gather, so overlapping windows need no atomics).
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const POOL_WG = 256;

const PARAMS = /* wgsl */ `
struct Params { count: u32, h: u32, w: u32, ho: u32, wo: u32, kh: u32, kw: u32, sh: u32, sw: u32, scale: f32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${linearIndexFn(POOL_WG)}`;

/** dst[.., i, j] = scale * sum of the kh x kw window of src at (i*sh, j*sw). */
export const avgPoolKernel: Kernel = {
  key: 'avg-pool',
  code: () => /* wgsl */ `${PARAMS}
@compute @workgroup_size(${POOL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.count) { return; }
  let plane = i / (P.ho * P.wo);
  let row = (i / P.wo) % P.ho;
  let col = i % P.wo;
  let base = (plane * P.h + row * P.sh) * P.w + col * P.sw;
  var total = 0.0;
  for (var a = 0u; a < P.kh; a++) {
    for (var b = 0u; b < P.kw; b++) {
      total += src[base + a * P.w + b];
    }
  }
  dst[i] = total * P.scale;
}`,
};

/** dst[.., h, w] = scale * sum of src over the windows (i, j) that contain (h, w). */
export const avgPoolAdjointKernel: Kernel = {
  key: 'avg-pool-adjoint',
  code: () => /* wgsl */ `${PARAMS}
// windows k with k*s <= p < k*s + size, k < count: [first, last + 1)
fn windows(p: u32, s: u32, size: u32, count: u32) -> vec2<u32> {
  let first = select(0u, (p - size) / s + 1u, p >= size);
  return vec2<u32>(first, min(p / s + 1u, count));
}
@compute @workgroup_size(${POOL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.count) { return; }
  let plane = i / (P.h * P.w);
  let rows = windows((i / P.w) % P.h, P.sh, P.kh, P.ho);
  let cols = windows(i % P.w, P.sw, P.kw, P.wo);
  let base = plane * P.ho * P.wo;
  var total = 0.0;
  for (var r = rows.x; r < rows.y; r++) {
    for (var c = cols.x; c < cols.y; c++) {
      total += src[base + r * P.wo + c];
    }
  }
  dst[i] = total * P.scale;
}`,
};

export function poolUniforms(count: number, h: number, w: number, ho: number, wo: number, kh: number, kw: number, sh: number, sw: number): ArrayBuffer {
  const buf = new ArrayBuffer(48);
  new Uint32Array(buf).set([count, h, w, ho, wo, kh, kw, sh, sw]);
  new Float32Array(buf)[9] = 1 / (kh * kw);
  return buf;
}
