// One WGSL generator for every elementwise op: up to three inputs broadcast against the output
// shape through per-input strides (0 on broadcast axes), or a plain index when every input already
// has the output's shape. Ops are an expression in a, b, c (inputs as f32), p0, p1 (scalar parameters) and fi
// (the linear output index, for iota-like fills).
import type { Kernel } from '../engine/runtime.ts';
import { linearIndexFn, MAX_RANK, PORTABLE_SINCOS, VEC_AT } from './wgsl.ts';

export const ELEMENTWISE_WG = 256;

export interface ElementwiseSpec {
  name: string;
  /** WGSL f32 expression in a, b, c, p0, p1 and fi (the output's linear index as f32). */
  expr: string;
  inputs: ('f32' | 'i32')[];
  out: 'f32' | 'i32';
  /** Every input has the output's shape: no index arithmetic. */
  contiguous: boolean;
}

export function elementwiseKernel(spec: ElementwiseSpec): Kernel {
  const n = spec.inputs.length;
  const key = `ew:${spec.name}:${spec.inputs.join('')}>${spec.out}:${spec.contiguous ? 'c' : 'b'}`;
  const names = ['a', 'b', 'c'];
  const code = () => {
    const bindings = spec.inputs.map((t, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<${t}>;`).join('\n');
    const loads = spec.inputs.map((_, k) => spec.contiguous
      ? `let ${names[k]} = f32(in${k}[i]);`
      : `let ${names[k]} = f32(in${k}[offset(i, ${k}u)]);`).join('\n  ');
    return /* wgsl */ `
struct Params { n: u32, rank: u32, p0: f32, p1: f32, shape: array<vec4<u32>, 2>, strides: array<array<vec4<u32>, 2>, ${Math.max(1, n)}> };
@group(0) @binding(0) var<uniform> P: Params;
${bindings}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<${spec.out}>;
${linearIndexFn(ELEMENTWISE_WG)}
${VEC_AT}
${PORTABLE_SINCOS}
fn offset(i: u32, k: u32) -> u32 {
  var rem = i;
  var off = 0u;
  for (var d = i32(P.rank) - 1; d >= 0; d--) {
    let size = at8(P.shape, u32(d));
    off += (rem % size) * at8(P.strides[k], u32(d));
    rem = rem / size;
  }
  return off;
}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  let p0 = P.p0;
  let p1 = P.p1;
  let fi = f32(i);
  ${loads}
  out[i] = ${spec.out}(${spec.expr});
}`;
  };
  return { key, code };
}

/** Packs the elementwise uniforms: count, rank, two scalars, output shape, per-input strides. */
export function elementwiseUniforms(n: number, shape: readonly number[], strides: number[][], p0 = 0, p1 = 0): ArrayBuffer {
  if (shape.length > MAX_RANK) throw new Error(`elementwise ops support rank <= ${MAX_RANK}, got [${shape.join(', ')}]`);
  const words = 4 + 8 + 8 * Math.max(1, strides.length);
  const buf = new ArrayBuffer(words * 4);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  u[0] = n;
  u[1] = shape.length;
  f[2] = p0;
  f[3] = p1;
  shape.forEach((s, d) => (u[4 + d] = s));
  strides.forEach((st, k) => st.forEach((s, d) => (u[12 + 8 * k + d] = s)));
  return buf;
}
