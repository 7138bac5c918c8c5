// Resampling kernels.
//
// Separable filters: one pass resamples one axis of a tensor viewed as [outer, size, inner]. Each
// output index t reads a few taps (clamped source index, weight) that a filter defines exactly as
// torch computes them; the adjoint pass (the transposed map) gathers, for every source index p, the
// outputs whose taps hit p. Every filter's tap span [first, last] is nondecreasing in t, so those
// outputs are one contiguous run, found by binary search: no atomics, and forward and adjoint
// evaluate the very same tap function, so they are exact transposes of each other.
//
// Bilinear footprints (grid sampling): every output point reads the 2x2 texels at base + (dx, dy)
// with four given weights; texels outside the image read as zero. Three kernels close the op under
// differentiation: sample (weights x texels), spread (its adjoint in the texels, a scatter with a
// float add built from atomic compare-exchange) and correlate (its derivative in the weights).
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const RESAMPLE_WG = 256;

/** linear / cubic: torch.nn.functional.interpolate's bilinear and bicubic (A = -0.75) taps;
 * keys: GRAM-HD's consistency downsampler (replicate padding, 4*factor Keys a = -0.5 taps, stride
 * factor). */
export type ResampleFilter = 'linear' | 'cubic' | 'keys';

const RESAMPLE_PARAMS = /* wgsl */ `
struct Params { outer: u32, inSize: u32, outSize: u32, inner: u32,
  ratio: f32, alignCorners: u32, factor: u32, pad: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
struct Tap { index: u32, weight: f32 };
fn clampIndex(i: i32) -> u32 { return u32(clamp(i, 0, i32(P.inSize) - 1)); }`;

// torch's area_pixel_compute_source_index, then guard_index_and_lambda: the left source index (as
// f32) and the fraction past it. Bilinear clamps negative sources to 0 when align_corners=False.
const SOURCE = (clampNegative: boolean) => /* wgsl */ `
fn source(t: u32) -> vec2<f32> {
  var s = P.ratio * f32(t);
  if (P.alignCorners == 0u) { s = ${clampNegative ? 'max(P.ratio * (f32(t) + 0.5) - 0.5, 0.0)' : 'P.ratio * (f32(t) + 0.5) - 0.5'}; }
  let left = min(floor(s), f32(P.inSize) - 1.0);
  return vec2<f32>(left, clamp(s - left, 0.0, 1.0));
}`;

const FILTERS: Record<ResampleFilter, string> = {
  linear: /* wgsl */ `${SOURCE(true)}
fn tapCount() -> u32 { return 2u; }
fn tap(t: u32, k: u32) -> Tap {
  let s = source(t);
  let left = u32(s.x);
  if (k == 0u) { return Tap(left, 1.0 - s.y); }
  return Tap(min(left + 1u, P.inSize - 1u), s.y);
}
fn span(t: u32) -> vec2<u32> {
  let left = u32(source(t).x);
  return vec2<u32>(left, min(left + 1u, P.inSize - 1u));
}`,
  // torch's cubic_convolution1 (|x| <= 1) and cubic_convolution2 (1 < |x| < 2), taps at
  // left-1 .. left+2 with indices clamped to the border
  cubic: /* wgsl */ `${SOURCE(false)}
const A = -0.75;
fn cubicNear(x: f32) -> f32 { return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0; }
fn cubicFar(x: f32) -> f32 { return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A; }
fn tapCount() -> u32 { return 4u; }
fn tap(t: u32, k: u32) -> Tap {
  let s = source(t);
  var w: f32;
  switch k {
    case 0u: { w = cubicFar(s.y + 1.0); }
    case 1u: { w = cubicNear(s.y); }
    case 2u: { w = cubicNear(1.0 - s.y); }
    default: { w = cubicFar(2.0 - s.y); }
  }
  return Tap(clampIndex(i32(s.x) - 1 + i32(k)), w);
}
fn span(t: u32) -> vec2<u32> {
  let left = i32(source(t).x);
  return vec2<u32>(clampIndex(left - 1), clampIndex(left + 2));
}`,
  // output t covers padded positions t*factor + k, k < 4*factor, i.e. source t*factor + k - pad
  // clamped (replicate padding); weight keys((k - 2*factor + 0.5) / factor) / factor
  keys: /* wgsl */ `
fn keys(x: f32) -> f32 {
  let t = abs(x);
  if (t <= 1.0) { return (1.5 * t - 2.5) * t * t + 1.0; }
  if (t < 2.0) { return ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0; }
  return 0.0;
}
fn tapCount() -> u32 { return 4u * P.factor; }
fn tap(t: u32, k: u32) -> Tap {
  let f = f32(P.factor);
  return Tap(clampIndex(i32(t * P.factor + k) - i32(P.pad)), keys((f32(k) - 2.0 * f + 0.5) / f) / f);
}
fn span(t: u32) -> vec2<u32> {
  let first = i32(t * P.factor) - i32(P.pad);
  return vec2<u32>(clampIndex(first), clampIndex(first + i32(4u * P.factor) - 1));
}`,
};

const FORWARD_MAIN = /* wgsl */ `
@compute @workgroup_size(${RESAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.outer * P.outSize * P.inner) { return; }
  let j = i % P.inner;
  let t = (i / P.inner) % P.outSize;
  let o = i / (P.inner * P.outSize);
  var acc = 0.0;
  for (var k = 0u; k < tapCount(); k++) {
    let tp = tap(t, k);
    acc += tp.weight * src[(o * P.inSize + tp.index) * P.inner + j];
  }
  dst[i] = acc;
}`;

const ADJOINT_MAIN = /* wgsl */ `
@compute @workgroup_size(${RESAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.outer * P.inSize * P.inner) { return; }
  let j = i % P.inner;
  let p = (i / P.inner) % P.inSize;
  let o = i / (P.inner * P.inSize);
  // first output whose span reaches p
  var lo = 0u;
  var hi = P.outSize;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (span(mid).y < p) { lo = mid + 1u; } else { hi = mid; }
  }
  var acc = 0.0;
  for (var t = lo; t < P.outSize; t++) {
    if (span(t).x > p) { break; }
    for (var k = 0u; k < tapCount(); k++) {
      let tp = tap(t, k);
      if (tp.index == p) { acc += tp.weight * src[(o * P.outSize + t) * P.inner + j]; }
    }
  }
  dst[i] = acc;
}`;

/** One axis of [outer, inSize, inner] -> [outer, outSize, inner], or the adjoint
 * [outer, outSize, inner] -> [outer, inSize, inner]. Bindings: params, src, dst. */
export function resampleAxisKernel(filter: ResampleFilter, adjoint: boolean): Kernel {
  return {
    key: `resample:${filter}:${adjoint ? 'adjoint' : 'forward'}`,
    code: () => `${RESAMPLE_PARAMS}\n${linearIndexFn(RESAMPLE_WG)}\n${FILTERS[filter]}\n${adjoint ? ADJOINT_MAIN : FORWARD_MAIN}`,
  };
}

export interface ResampleAxisUniforms {
  outer: number; inSize: number; outSize: number; inner: number;
  /** Source step per output step (torch's scale). */
  ratio: number;
  alignCorners: boolean;
  factor: number;
  pad: number;
}

export function resampleAxisUniforms(u: ResampleAxisUniforms): ArrayBuffer {
  const buf = new ArrayBuffer(32);
  new Uint32Array(buf).set([u.outer, u.inSize, u.outSize, u.inner, 0, u.alignCorners ? 1 : 0, u.factor, u.pad]);
  new Float32Array(buf)[4] = u.ratio;
  return buf;
}

// Footprint tensors: images [N, C, H, W] (x, spread's output), per-point values [N, C, Q] (sample's
// output, the gradients g), per-point weights [N, Q, 4] with corner k at (dx, dy) = (k & 1, k >> 1),
// per-point base texel [N, Q, 2] as f32 (x, y); Q = points per image.
const FOOTPRINT_PARAMS = /* wgsl */ `
struct Params { n: u32, c: u32, h: u32, w: u32, q: u32, _p0: u32, _p1: u32, _p2: u32 };
@group(0) @binding(0) var<uniform> P: Params;
${linearIndexFn(RESAMPLE_WG)}
// flat index of corner k of point (n, point) in channel plane 'plane', or -1 outside the image
fn texel(point: u32, k: u32, plane: u32) -> i32 {
  let cx = base[point * 2u] + f32(k & 1u);
  let cy = base[point * 2u + 1u] + f32(k >> 1u);
  if (cx >= 0.0 && cx <= f32(P.w) - 1.0 && cy >= 0.0 && cy <= f32(P.h) - 1.0) {
    return i32((plane * P.h + u32(cy)) * P.w + u32(cx));
  }
  return -1;
}`;

/** y[n, c, q] = sum_k weight[n, q, k] * image[n, c, corner_k]. Bindings: params, image, weight, base, y. */
export const footprintSampleKernel: Kernel = {
  key: 'footprint:sample',
  code: () => /* wgsl */ `
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> base: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${FOOTPRINT_PARAMS}
@compute @workgroup_size(${RESAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n * P.c * P.q) { return; }
  let plane = i / P.q;
  let point = (plane / P.c) * P.q + i % P.q;
  var acc = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let at = texel(point, k, plane);
    if (at >= 0) { acc += weight[point * 4u + k] * image[at]; }
  }
  y[i] = acc;
}`,
};

/** image[n, c, corner_k] += weight[n, q, k] * g[n, c, q] (the adjoint of sample in the image);
 * image must be zero-filled. Float adds by compare-exchange, so the order of the sums into one
 * texel (and the last bits of the result) may vary between runs. Bindings: params, g, weight, base,
 * image. */
export const footprintSpreadKernel: Kernel = {
  key: 'footprint:spread',
  code: () => /* wgsl */ `
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> base: array<f32>;
@group(0) @binding(4) var<storage, read_write> image: array<atomic<u32>>;
${FOOTPRINT_PARAMS}
fn addTo(at: i32, v: f32) {
  var old = atomicLoad(&image[at]);
  loop {
    let r = atomicCompareExchangeWeak(&image[at], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}
@compute @workgroup_size(${RESAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n * P.c * P.q) { return; }
  let plane = i / P.q;
  let point = (plane / P.c) * P.q + i % P.q;
  for (var k = 0u; k < 4u; k++) {
    let at = texel(point, k, plane);
    if (at >= 0) { addTo(at, weight[point * 4u + k] * g[i]); }
  }
}`,
};

/** d[n, q, k] = sum_c g[n, c, q] * image[n, c, corner_k] (the derivative of sample in the
 * weights). Bindings: params, g, image, base, d. */
export const footprintCorrelateKernel: Kernel = {
  key: 'footprint:correlate',
  code: () => /* wgsl */ `
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> image: array<f32>;
@group(0) @binding(3) var<storage, read> base: array<f32>;
@group(0) @binding(4) var<storage, read_write> d: array<f32>;
${FOOTPRINT_PARAMS}
@compute @workgroup_size(${RESAMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let point = linearIndex(gid, nwg);
  if (point >= P.n * P.q) { return; }
  let n = point / P.q;
  let q = point % P.q;
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < P.c; c++) {
    let plane = n * P.c + c;
    let gv = g[plane * P.q + q];
    for (var k = 0u; k < 4u; k++) {
      let at = texel(point, k, plane);
      if (at >= 0) { acc[k] += gv * image[at]; }
    }
  }
  for (var k = 0u; k < 4u; k++) { d[point * 4u + k] = acc[k]; }
}`,
};

export function footprintUniforms(n: number, c: number, h: number, w: number, q: number): Uint32Array {
  return new Uint32Array([n, c, h, w, q, 0, 0, 0]);
}
