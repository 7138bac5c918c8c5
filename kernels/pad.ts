// Padding of the last two dimensions and its adjoint. The forward reads, for every padded pixel,
// the source pixel its mode names (or writes zero); the adjoint sums, for every source pixel, the
// padded pixels that read it: per dimension at most three runs (the pixel itself, a replicated
// edge run, or up to two mirror images), so the adjoint is a gather with no atomics.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export type PadMode = 'zeros' | 'replicate' | 'reflect';

export const PAD_WG = 256;

const PARAMS = /* wgsl */ `
struct Params { count: u32, h: u32, w: u32, hOut: u32, wOut: u32, top: u32, left: u32, _pad: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${linearIndexFn(PAD_WG)}`;

/** Source index along one dimension for padded position p = s + lo (-1: outside, reads zero). */
const SOURCE: Record<PadMode, string> = {
  zeros: 'return select(-1, p, p >= 0 && p < size);',
  replicate: 'return clamp(p, 0, size - 1);',
  // pads are smaller than the size, so one reflection suffices
  reflect: 'let s = abs(p); return select(s, 2 * (size - 1) - s, s >= size);',
};

/** Runs [first, last] of padded positions along one dimension that read source position s
 * (empty runs have last < first). */
const PREIMAGE: Record<PadMode, string> = {
  zeros: 'return array<vec2<i32>, 3>(vec2<i32>(s + lo), EMPTY, EMPTY);',
  replicate: `let first = select(s + lo, 0, s == 0);
  let last = select(s + lo, outSize - 1, s == size - 1);
  return array<vec2<i32>, 3>(vec2<i32>(first, last), EMPTY, EMPTY);`,
  reflect: `let before = lo - s;
  let after = lo + 2 * (size - 1) - s;
  return array<vec2<i32>, 3>(vec2<i32>(s + lo),
    select(EMPTY, vec2<i32>(before), s >= 1 && before >= 0),
    select(EMPTY, vec2<i32>(after), s <= size - 2 && after < outSize));`,
};

export function padKernel(mode: PadMode): Kernel {
  return {
    key: `pad:${mode}`,
    code: () => /* wgsl */ `${PARAMS}
fn source(p: i32, size: i32) -> i32 {
  ${SOURCE[mode]}
}
@compute @workgroup_size(${PAD_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.count) { return; }
  let plane = i / (P.hOut * P.wOut);
  let row = source(i32((i / P.wOut) % P.hOut) - i32(P.top), i32(P.h));
  let col = source(i32(i % P.wOut) - i32(P.left), i32(P.w));
  if (row < 0 || col < 0) {
    dst[i] = 0.0;
  } else {
    dst[i] = src[(plane * P.h + u32(row)) * P.w + u32(col)];
  }
}`,
  };
}

export function padAdjointKernel(mode: PadMode): Kernel {
  return {
    key: `pad-adjoint:${mode}`,
    code: () => /* wgsl */ `${PARAMS}
const EMPTY = vec2<i32>(0, -1);
fn preimage(s: i32, size: i32, lo: i32, outSize: i32) -> array<vec2<i32>, 3> {
  ${PREIMAGE[mode]}
}
@compute @workgroup_size(${PAD_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.count) { return; }
  let plane = i / (P.h * P.w);
  var rows = preimage(i32((i / P.w) % P.h), i32(P.h), i32(P.top), i32(P.hOut));
  var cols = preimage(i32(i % P.w), i32(P.w), i32(P.left), i32(P.wOut));
  let base = plane * P.hOut * P.wOut;
  var total = 0.0;
  for (var r = 0; r < 3; r++) {
    for (var p = rows[r].x; p <= rows[r].y; p++) {
      for (var c = 0; c < 3; c++) {
        for (var q = cols[c].x; q <= cols[c].y; q++) {
          total += src[base + u32(p) * P.wOut + u32(q)];
        }
      }
    }
  }
  dst[i] = total;
}`,
  };
}

/** Uniforms for both kernels; `count` is the number of destination elements. */
export function padUniforms(count: number, h: number, w: number, hOut: number, wOut: number, top: number, left: number): Uint32Array {
  return new Uint32Array([count, h, w, hOut, wOut, top, left, 0]);
}
