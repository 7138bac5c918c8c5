// Reductions of a tensor viewed as [outer, R, inner] over R: sum, max, min or argmax (first
// maximal index, as torch). Rows with many elements (inner == 1, R large) get a workgroup per span
// of the row (the whole row, or for few long rows a span of it) and a shared-memory tree; otherwise
// one invocation per output walks its R elements, or, split into spans, a span of them. Spans are
// a first pass whose partial results a second reduction combines.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax';
export const REDUCE_WG = 256;

const INIT: Record<ReduceOp, string> = { sum: '0.0', max: '-3.4028234e38', min: '3.4028234e38', argmax: '-3.4028234e38' };

function combine(op: ReduceOp, acc: string, v: string): string {
  return op === 'sum' ? `${acc} + ${v}` : op === 'min' ? `min(${acc}, ${v})` : `max(${acc}, ${v})`;
}

export function reduceKernel(op: ReduceOp, perRow: boolean): Kernel {
  const outType = op === 'argmax' ? 'i32' : 'f32';
  const header = /* wgsl */ `
struct Params { outer: u32, r: u32, inner: u32, span: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<${outType}>;`;
  if (!perRow) {
    const body = op === 'argmax'
      ? `var best = -3.4028234e38; var bi = 0;
  for (var r = r0; r < r1; r++) { let v = x[base + r * P.inner]; if (v > best || (r == r0)) { best = v; bi = i32(r); } }
  out[i] = bi;`
      : `var acc = ${INIT[op]};
  for (var r = r0; r < r1; r++) { acc = ${combine(op, 'acc', 'x[base + r * P.inner]')}; }
  out[i] = acc;`;
    return {
      key: `reduce:${op}:strided`,
      code: `${header}
${linearIndexFn(REDUCE_WG)}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  let spans = (P.r + P.span - 1u) / P.span;
  if (i >= P.outer * spans * P.inner) { return; }
  // output [outer, spans, inner]: element i reduces r in [span * s, span * (s + 1))
  let t = i / P.inner;
  let o = t / spans;
  let r0 = (t % spans) * P.span;
  let r1 = min(r0 + P.span, P.r);
  let base = o * P.r * P.inner + (i % P.inner);
  ${body}
}`,
    };
  }
  const isArg = op === 'argmax';
  return {
    key: `reduce:${op}:row`,
    code: `${header}
var<workgroup> vals: array<f32, ${REDUCE_WG}>;
var<workgroup> idxs: array<u32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  // output [outer, spans]: workgroup row reduces r in [span * s, span * (s + 1)) of row o
  let spans = (P.r + P.span - 1u) / P.span;
  let row = wid.x + wid.y * nwg.x;
  if (row >= P.outer * spans) { return; }
  let base = (row / spans) * P.r;
  let r0 = (row % spans) * P.span;
  let r1 = min(r0 + P.span, P.r);
  var acc = ${INIT[op]};
  var ai = 0xffffffffu;
  for (var r = r0 + t; r < r1; r += ${REDUCE_WG}u) {
    let v = x[base + r];
    ${isArg ? 'if (v > acc || ai == 0xffffffffu) { acc = v; ai = r; }' : `acc = ${combine(op, 'acc', 'v')};`}
  }
  vals[t] = acc;
  idxs[t] = ai;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) {
      ${isArg
        ? `let vo = vals[t + s]; let io = idxs[t + s];
      if (io != 0xffffffffu && (idxs[t] == 0xffffffffu || vo > vals[t] || (vo == vals[t] && io < idxs[t]))) { vals[t] = vo; idxs[t] = io; }`
        : `vals[t] = ${combine(op, 'vals[t]', 'vals[t + s]')};`}
    }
    workgroupBarrier();
  }
  if (t == 0u) { out[row] = ${isArg ? 'i32(idxs[0])' : 'vals[0]'}; }
}`,
  };
}
