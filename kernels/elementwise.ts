// One WGSL generator for every elementwise op: up to three inputs broadcast against the output
// shape through per-input strides (0 on broadcast axes), or a plain index when every input already
// has the output's shape. Ops are an expression in a, b, c (inputs as f32), p0, p1 (scalar parameters) and fi
// (the linear output index, for iota-like fills).
import type { Kernel } from './kernel.ts';
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
  /** The output's rank, when broadcasting: the index decomposition is unrolled for it (a loop over
   * dynamically indexed uniforms is ~7x slower on llvmpipe). */
  rank?: number;
}

export function elementwiseKernel(spec: ElementwiseSpec): Kernel {
  const n = spec.inputs.length;
  const rank = spec.rank ?? MAX_RANK;
  const key = `ew:${spec.name}:${spec.inputs.join('')}>${spec.out}:${spec.contiguous ? 'c' : `b${rank}`}`;
  const names = ['a', 'b', 'c'];
  const code = () => {
    const bindings = spec.inputs.map((t, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<${t}>;`).join('\n');
    const loads = spec.inputs.map((_, k) => spec.contiguous
      ? `let ${names[k]} = f32(in${k}[i]);`
      : `let ${names[k]} = f32(in${k}[off${k}]);`).join('\n  ');
    return /* wgsl */ `
struct Params { n: u32, rank: u32, p0: f32, p1: f32, shape: array<vec4<u32>, 2>, strides: array<array<vec4<u32>, 2>, ${Math.max(1, n)}> };
@group(0) @binding(0) var<uniform> P: Params;
${bindings}
@group(0) @binding(${n + 1}) var<storage, read_write> out: array<${spec.out}>;
${linearIndexFn(ELEMENTWISE_WG)}
${VEC_AT}
${PORTABLE_SINCOS}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.n) { return; }
  let p0 = P.p0;
  let p1 = P.p1;
  let fi = f32(i);
  ${spec.contiguous ? '' : offsets(n, rank)}
  ${loads}
  out[i] = ${spec.out}(${spec.expr});
}`;
  };
  return { key, code };
}

/** WGSL declaring off0.. off{n-1}: each input's element offset for output index i, the index
 * decomposed over the output's `rank` dimensions from the last, with constant uniform indices. */
function offsets(n: number, rank: number): string {
  const at = (v: string, d: number) => `${v}[${d >> 2}][${d & 3}]`;
  const inputs = [...Array(n).keys()];
  const lines = [`var rem = i;`, ...inputs.map((k) => `var off${k} = 0u;`)];
  for (let d = rank - 1; d >= 1; d--) {
    lines.push(`{ let size = ${at('P.shape', d)}; let q = rem / size; let c = rem - q * size; rem = q;`,
      ...inputs.map((k) => `  off${k} += c * ${at(`P.strides[${k}]`, d)};`), '}');
  }
  if (rank >= 1) lines.push(...inputs.map((k) => `off${k} += rem * ${at(`P.strides[${k}]`, 0)};`));
  return lines.join('\n  ');
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
