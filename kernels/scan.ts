// Row-wise kernels over a tensor viewed as [outer, R, inner], one invocation per (outer, inner):
// inclusive cumulative sum/product (optionally from the end), argsort of short rows, and the
// gather / scatter-add pair along the middle axis.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const ROW_WG = 64;
/** Longest row sortRows handles (the renderer sorts at most 25 points per ray). */
export const MAX_SORT_LENGTH = 64;

const HEADER = /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32, k: u32 };
@group(0) @binding(0) var<uniform> P: Params;`;

const MAIN = (body: string) => /* wgsl */ `
${linearIndexFn(ROW_WG)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.outer * P.inner) { return; }
  let o = i / P.inner;
  let j = i % P.inner;
  ${body}
}`;

export function scanKernel(op: 'sum' | 'prod', reverse: boolean): Kernel {
  const combine = op === 'sum' ? 'acc + x[at]' : 'acc * x[at]';
  return {
    key: `scan:${op}:${reverse ? 'rev' : 'fwd'}`,
    code: `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${MAIN(`var acc = ${op === 'sum' ? '0.0' : '1.0'};
  for (var t = 0u; t < P.r; t++) {
    let r = ${reverse ? 'P.r - 1u - t' : 't'};
    let at = (o * P.r + r) * P.inner + j;
    acc = ${combine};
    y[at] = acc;
  }`)}`,
  };
}

export function argsortKernel(descending: boolean): Kernel {
  const before = descending ? 'v > kv' : 'v < kv';
  return {
    key: `argsort:${descending ? 'desc' : 'asc'}`,
    code: `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;
${MAIN(`var vals: array<f32, ${MAX_SORT_LENGTH}>;
  var idx: array<i32, ${MAX_SORT_LENGTH}>;
  // insertion sort: stable, and the fastest for rows this short
  for (var t = 0u; t < P.r; t++) {
    let v = x[(o * P.r + t) * P.inner + j];
    var p = i32(t);
    loop {
      if (p == 0) { break; }
      let kv = vals[p - 1];
      if (!(${before})) { break; }
      vals[p] = kv;
      idx[p] = idx[p - 1];
      p--;
    }
    vals[p] = v;
    idx[p] = i32(t);
  }
  for (var t = 0u; t < P.r; t++) { y[(o * P.r + t) * P.inner + j] = idx[t]; }`)}`,
  };
}

/** out[o, k, j] = x[o, index[o, k, j], j] with x [outer, r, inner] and index [outer, k, inner]. */
export const gatherKernel: Kernel = {
  key: 'gather',
  code: `${HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${MAIN(`for (var t = 0u; t < P.k; t++) {
    let at = (o * P.k + t) * P.inner + j;
    let src = index[at];
    y[at] = select(0.0, x[(o * P.r + u32(src)) * P.inner + j], src >= 0 && u32(src) < P.r);
  }`)}`,
};

/** The adjoint of gather: y[o, r, j] = sum over k with index[o, k, j] == r of g[o, k, j]. */
export const scatterAddKernel: Kernel = {
  key: 'scatter-add',
  code: `${HEADER}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${MAIN(`for (var r = 0u; r < P.r; r++) {
    var acc = 0.0;
    for (var t = 0u; t < P.k; t++) {
      let at = (o * P.k + t) * P.inner + j;
      if (index[at] == i32(r)) { acc += g[at]; }
    }
    y[(o * P.r + r) * P.inner + j] = acc;
  }`)}`,
};
