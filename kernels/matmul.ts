// Batched matrix product C[b] = A[b] B[b], with A and B read through strides so transposed
// operands need no copy. Each invocation accumulates a TILE x TILE block of C in registers
// (register blocking is what makes llvmpipe fast; shared memory barely matters there).
import type { Kernel } from '../engine/runtime.ts';

export const MATMUL_TILE = 4;
export const MATMUL_WG = 16;

export const matmulKernel: Kernel = {
  key: 'matmul:rb4',
  code: /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, batch: u32, aBatch: u32, bBatch: u32, am: u32, ak: u32, bk: u32, bn: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${MATMUL_WG}, ${MATMUL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  let row0 = gid.y * ${MATMUL_TILE}u;
  let col0 = gid.x * ${MATMUL_TILE}u;
  if (row0 >= P.m || col0 >= P.n) { return; }
  let aBase = b * P.aBatch;
  let bBase = b * P.bBatch;
  var acc: array<vec4<f32>, ${MATMUL_TILE}>;
  var rows: array<u32, ${MATMUL_TILE}>;
  for (var i = 0u; i < ${MATMUL_TILE}u; i++) { rows[i] = min(row0 + i, P.m - 1u); }
  var cols: vec4<u32>;
  for (var j = 0u; j < 4u; j++) { cols[j] = min(col0 + j, P.n - 1u); }
  for (var kk = 0u; kk < P.k; kk++) {
    let bo = bBase + kk * P.bk;
    let bv = vec4<f32>(B[bo + cols.x * P.bn], B[bo + cols.y * P.bn], B[bo + cols.z * P.bn], B[bo + cols.w * P.bn]);
    for (var i = 0u; i < ${MATMUL_TILE}u; i++) {
      acc[i] += A[aBase + rows[i] * P.am + kk * P.ak] * bv;
    }
  }
  let cBase = b * P.m * P.n;
  for (var i = 0u; i < ${MATMUL_TILE}u; i++) {
    let r = row0 + i;
    if (r >= P.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < P.n) { C[cBase + r * P.n + col0 + j] = acc[i][j]; }
    }
  }
}`,
};

/** Workgroup counts for an M x N x batch product. */
export function matmulGroups(m: number, n: number, batch: number): [number, number, number] {
  const per = MATMUL_TILE * MATMUL_WG;
  return [Math.ceil(n / per), Math.ceil(m / per), batch];
}
