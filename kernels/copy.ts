// The strided copy behind permute, slice, concat, padding-into-zeros and flips: for every index of
// an iteration shape, dst[dstOffset + idx.dstStrides] = src[srcOffset + idx.srcStrides]. Strides are
// signed so a negative stride walks backwards. (Long contiguous runs between distinct buffers go
// through buffer copies instead: engine/ops/shape.ts.)
import type { Kernel } from './kernel.ts';
import { linearIndexFn, MAX_RANK } from './wgsl.ts';

export const COPY_WG = 256;

const kernels = new Map<number, Kernel>();

/** The copy for iteration shapes of exactly `rank` dimensions (after coalescing). The index
 * arithmetic is unrolled with constant indices into the uniform: on llvmpipe a uniform read at a
 * dynamic index is a per-lane gather, three per dimension per element, which made the generic loop
 * run at ~15 M elements/s. */
export function stridedCopyKernel(rank: number): Kernel {
  if (!Number.isInteger(rank) || rank < 0 || rank > MAX_RANK) throw new Error(`copies support rank <= ${MAX_RANK}, got ${rank}`);
  let kernel = kernels.get(rank);
  if (!kernel) {
    const at = (v: string, k: number) => `${v}[${k >> 2}][${k & 3}]`;
    const dims = Array.from({ length: rank }, (_, j) => rank - 1 - j).map((k) => {
      const index = k === 0 ? 'rem' : `rem % ${at('P.shape', k)}`;
      return `{
    let c = i32(${index});
    ${k === 0 ? '' : `rem = rem / ${at('P.shape', k)};`}
    s += c * bitcast<i32>(${at('P.src', k)});
    d += c * bitcast<i32>(${at('P.dst', k)});
  }`;
    });
    kernel = {
      key: `strided-copy:r${rank}`,
      code: /* wgsl */ `
struct Params { n: u32, rank: u32, srcOffset: i32, dstOffset: i32,
  shape: array<vec4<u32>, 2>, src: array<vec4<u32>, 2>, dst: array<vec4<u32>, 2> };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${linearIndexFn(COPY_WG)}
@compute @workgroup_size(${COPY_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  var rem = i;
  var s = P.srcOffset;
  var d = P.dstOffset;
  ${dims.join('\n  ')}
  y[d] = x[s];
}`,
    };
    kernels.set(rank, kernel);
  }
  return kernel;
}

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
