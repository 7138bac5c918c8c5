// The strided copy behind permute, slice, concat, padding-into-zeros and flips: for every index of
// an iteration shape, dst[dstOffset + idx.dstStrides] = src[srcOffset + idx.srcStrides]. Strides are
// signed so a negative stride walks backwards.
import type { Kernel } from '../engine/runtime.ts';
import { linearIndexFn, MAX_RANK, VEC_AT } from './wgsl.ts';

export const COPY_WG = 256;

export const stridedCopyKernel: Kernel = {
  key: 'strided-copy',
  code: /* wgsl */ `
struct Params { n: u32, rank: u32, srcOffset: i32, dstOffset: i32,
  shape: array<vec4<u32>, 2>, src: array<vec4<u32>, 2>, dst: array<vec4<u32>, 2> };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${linearIndexFn(COPY_WG)}
${VEC_AT}
@compute @workgroup_size(${COPY_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  var rem = i;
  var s = P.srcOffset;
  var d = P.dstOffset;
  for (var k = i32(P.rank) - 1; k >= 0; k--) {
    let size = at8(P.shape, u32(k));
    let c = i32(rem % size);
    rem = rem / size;
    s += c * bitcast<i32>(at8(P.src, u32(k)));
    d += c * bitcast<i32>(at8(P.dst, u32(k)));
  }
  y[d] = x[s];
}`,
};

export function stridedCopyUniforms(shape: readonly number[], srcOffset: number, src: readonly number[], dstOffset: number, dst: readonly number[]): Uint32Array {
  if (shape.length > MAX_RANK) throw new Error(`copies support rank <= ${MAX_RANK}, got [${shape.join(', ')}]`);
  const u = new Uint32Array(28);
  const i = new Int32Array(u.buffer);
  u[0] = shape.reduce((a, b) => a * b, 1);
  u[1] = shape.length;
  i[2] = srcOffset;
  i[3] = dstOffset;
  shape.forEach((s, d) => (u[4 + d] = s));
  src.forEach((s, d) => (i[12 + d] = s));
  dst.forEach((s, d) => (i[20 + d] = s));
  return u;
}
