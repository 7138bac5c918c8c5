// Batched matrix product C[b] = op(A[b]) op(B[b]): the uniforms every matmul kernel shares and the
// reference kernel. A and B are read through strides, so transposed operands need no copy. The
// reference kernel accumulates a 4 x 4 block of C per invocation in registers; it is the simple,
// obviously correct one that the fast kernels (matmul-subgroup.ts, matmul-tiled.ts) are tested
// against.
import type { Kernel } from './kernel.ts';

/** Uniform block of every matmul kernel. C is dense [batch, m, n]; element (i, k) of op(A[b]) is
 * A[b * aBatch + i * am + k * ak] and element (k, j) of op(B[b]) is B[b * bBatch + k * bk + j * bn]
 * (a batch stride of 0 broadcasts that operand). */
export const MATMUL_PARAMS = /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, batch: u32, aBatch: u32, bBatch: u32, am: u32, ak: u32, bk: u32, bn: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> P: Params;`;

/** The values of MATMUL_PARAMS, in its order. */
export interface MatmulParams {
  m: number; n: number; k: number; batch: number;
  aBatch: number; bBatch: number; am: number; ak: number; bk: number; bn: number;
}

export function matmulUniforms(p: MatmulParams): Uint32Array {
  return new Uint32Array([p.m, p.n, p.k, p.batch, p.aBatch, p.bBatch, p.am, p.ak, p.bk, p.bn, 0, 0]);
}

const TILE = 4;
const WG = 16;

export const matmulReferenceKernel: Kernel = {
  key: 'matmul:reference',
  code: /* wgsl */ `
${MATMUL_PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${WG}, ${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  let row0 = gid.y * ${TILE}u;
  let col0 = gid.x * ${TILE}u;
  if (row0 >= P.m || col0 >= P.n) { return; }
  let aBase = b * P.aBatch;
  let bBase = b * P.bBatch;
  var acc: array<vec4<f32>, ${TILE}>;
  var rows: array<u32, ${TILE}>;
  for (var i = 0u; i < ${TILE}u; i++) { rows[i] = min(row0 + i, P.m - 1u); }
  var cols: vec4<u32>;
  for (var j = 0u; j < 4u; j++) { cols[j] = min(col0 + j, P.n - 1u); }
  for (var kk = 0u; kk < P.k; kk++) {
    let bo = bBase + kk * P.bk;
    let bv = vec4<f32>(B[bo + cols.x * P.bn], B[bo + cols.y * P.bn], B[bo + cols.z * P.bn], B[bo + cols.w * P.bn]);
    for (var i = 0u; i < ${TILE}u; i++) {
      acc[i] += A[aBase + rows[i] * P.am + kk * P.ak] * bv;
    }
  }
  let cBase = b * P.m * P.n;
  for (var i = 0u; i < ${TILE}u; i++) {
    let r = row0 + i;
    if (r >= P.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < P.n) { C[cBase + r * P.n + col0 + j] = acc[i][j]; }
    }
  }
}`,
};

/** Workgroup counts of the reference kernel for an M x N x batch product. */
export function matmulReferenceGroups(m: number, n: number, batch: number): [number, number, number] {
  const per = TILE * WG;
  return [Math.ceil(n / per), Math.ceil(m / per), batch];
}
