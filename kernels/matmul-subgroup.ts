// Matrix product for CPU adapters (llvmpipe/lavapipe, SwiftShader), built around what is cheap and
// what is dear there. An invocation is one lane of a SIMD register and a workgroup of exactly one
// subgroup is one register's worth of lanes. Every storage-buffer load inside a loop is emitted
// lane by lane with a bounds check, ~10 instructions per lane plus ~8 per component, whereas
// subgroupBroadcast from a constant lane is an extract and a splat. (llvmpipe in Mesa 25.0 loads
// once for all lanes only where NIR calls the index always uniform: built from constants or push
// constants, never from a loop counter, a workgroup id or a uniform-buffer value; weights read from
// a uniform buffer by the loop counter ran at less than half the rate of a lane's load shared by
// subgroupBroadcast. The loop-free alternative, a 256-deep product unrolled with constant weight
// indices, took 71 s to compile and ran at 1.7 GFLOP/s. textureLoad from an rgba32float texture is
// a branchless gather, ~16% cheaper per float than a storage vec4 load inside a loop: too little to
// pay for copying operands into textures.) So each lane owns 4 rows of C and loads them itself, the
// 32 columns of the tile are loaded once across the subgroup and broadcast to every lane, and k
// advances 4 at a time so that one vec4 load feeds 4 steps (c += dot(a, b) over those 4 steps). The
// 128 accumulators per lane live mostly on the stack. Measured at 1024^3 on 2 EPYC cores (CPU-time
// based, other loads running): 4 x 8 tiles 14, 4 x 16 17, 4 x 32 18-19, 4 x 64 14 GFLOP/s (the
// larger code outgrows the instruction cache); the reference kernel 5. Each variant takes seconds
// to compile (lavapipe caches it on disk afterwards).
import type { Kernel } from './kernel.ts';
import { MATMUL_PARAMS } from './matmul.ts';

/** A kernel variant: the subgroup size, and how each operand is read: vec4 loads along the named
 * axis (A: k or m, B: k or n), or one scalar per element through the strides (any layout and size). */
export interface SubgroupMatmulSpec {
  subgroupSize: number;
  a: 'k' | 'm' | 'strided';
  b: 'k' | 'n' | 'strided';
  /** Columns of C per workgroup: a multiple of 4 and of the subgroup size (subgroupMatmulColumns). */
  columns: number;
}

const ROWS_PER_LANE = 4;
const COLUMNS = 32;

/** 32 columns per workgroup, or for products at most max(8, subgroup size) wide (the radiance
 * network's heads: 4 to 36 columns of 256-feature rows) that many, so that a 4-column product does
 * not compute 28 columns of padding: the heads' kernel time on GRAM64 1.3 -> 0.5 s on lavapipe. */
export function subgroupMatmulColumns(subgroupSize: number, n: number): number {
  const narrow = Math.max(8, subgroupSize);
  return n <= narrow && narrow < COLUMNS ? narrow : COLUMNS;
}

/** Workgroup counts for an M x N x batch product. */
export function subgroupMatmulGroups(spec: SubgroupMatmulSpec, m: number, n: number, batch: number): [number, number, number] {
  return [Math.ceil(n / spec.columns), Math.ceil(m / (spec.subgroupSize * ROWS_PER_LANE)), batch];
}

const cache = new Map<string, Kernel>();

export function subgroupMatmulKernel(spec: SubgroupMatmulSpec): Kernel {
  const key = `matmul:subgroup:s${spec.subgroupSize}:a-${spec.a}:b-${spec.b}:c${spec.columns}`;
  let kernel = cache.get(key);
  if (!kernel) {
    kernel = { key, code: () => subgroupMatmulSource(spec) };
    cache.set(key, kernel);
  }
  return kernel;
}

function subgroupMatmulSource({ subgroupSize: S, a, b, columns: T }: SubgroupMatmulSpec): string {
  const R = ROWS_PER_LANE;
  const rounds = Math.ceil(T / S); // B loads per lane per step
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  const u4 = [0, 1, 2, 3];
  // k + u clamped into range: the loads stay in bounds and the masks zero the excess steps
  const kAt = (step: string) => `min(k + ${step}, kLast)`;

  // A: a{i} = A[row0 + i, k .. k + 3], the lane's rows ('m': one vec4 holds all 4 rows at one k)
  if (a === 'm') emit(`  let aRows = aBase + min(row0, P.m - 4u);`);
  else for (let i = 0; i < R; i++) emit(`  let aRow${i} = aBase + min(row0 + ${i}u, P.m - 1u) * P.am;`);
  // B: round q of lane l covers column l + S q ('k', 'strided') or, for 'n', the 4 columns
  // 4 floor(t / 4) .. + 3 at step t % 4 with t = l + S q
  for (let q = 0; q < rounds; q++) {
    if (b === 'n') {
      emit(`  let bSlot${q} = lane + ${q * S}u;`);
      emit(`  let bCols${q} = bBase + min(col0 + (bSlot${q} / 4u) * 4u, P.n - 4u);`);
      emit(`  let bStep${q} = bSlot${q} % 4u;`);
    } else {
      emit(`  let bCol${q} = bBase + min(col0 + lane + ${q * S}u, P.n - 1u) * P.bn;`);
    }
  }
  const setup = lines.splice(0);

  // vec4 loads along k need no mask: their alignment implies that 4 divides k
  for (let i = 0; i < R; i++) {
    if (a === 'k') emit(`    let a${i} = A[(aRow${i} + k) / 4u];`);
    else if (a === 'strided') emit(`    let a${i} = inK(vec4<f32>(${u4.map((u) => `A[aRow${i} + ${kAt(`${u}u`)} * P.ak]`).join(', ')}), k);`);
  }
  if (a === 'm') {
    for (const u of u4) emit(`    let aStep${u} = select(vec4<f32>(0.0), A[(aRows + ${kAt(`${u}u`)} * P.ak) / 4u], k + ${u}u < P.k);`);
    for (let i = 0; i < R; i++) emit(`    let a${i} = vec4<f32>(${u4.map((u) => `aStep${u}[${i}]`).join(', ')});`);
  }
  for (let q = 0; q < rounds; q++) {
    if (b === 'k') emit(`    let bLoad${q} = B[(bCol${q} + k) / 4u];`);
    else if (b === 'strided') emit(`    let bLoad${q} = inK(vec4<f32>(${u4.map((u) => `B[bCol${q} + ${kAt(`${u}u`)} * P.bk]`).join(', ')}), k);`);
    else emit(`    let bLoad${q} = select(vec4<f32>(0.0), B[(bCols${q} + ${kAt(`bStep${q}`)} * P.bk) / 4u], k + bStep${q} < P.k);`);
  }
  for (let j = 0; j < T; j++) {
    if (b === 'n') {
      // column j at step u was loaded by slot t = 4 floor(j / 4) + u, component j % 4
      const parts = u4.map((u) => {
        const t = 4 * Math.floor(j / 4) + u;
        return `subgroupBroadcast(bLoad${Math.floor(t / S)}[${j % 4}], ${t % S}u)`;
      });
      emit(`    let b${j} = vec4<f32>(${parts.join(', ')});`);
    } else {
      emit(`    let b${j} = subgroupBroadcast(bLoad${Math.floor(j / S)}, ${j % S}u);`);
    }
    for (let i = 0; i < R; i++) emit(`    c${i}_${j} += dot(a${i}, b${j});`);
  }
  const body = lines.splice(0);

  for (let i = 0; i < R; i++) {
    emit(`  if (row0 + ${i}u < P.m) {`);
    emit(`    let o = cBase + (row0 + ${i}u) * P.n + col0;`);
    for (let j = 0; j < T; j++) emit(`    if (col0 + ${j}u < P.n) { C[o + ${j}u] = c${i}_${j}; }`);
    emit(`  }`);
  }
  const store = lines.splice(0);
  const accumulators = Array.from({ length: R }, (_, i) => `  ${Array.from({ length: T }, (_, j) => `var c${i}_${j} = 0.0;`).join(' ')}`);

  return /* wgsl */ `
enable subgroups;
${MATMUL_PARAMS}
@group(0) @binding(1) var<storage, read> A: array<${a === 'strided' ? 'f32' : 'vec4<f32>'}>;
@group(0) @binding(2) var<storage, read> B: array<${b === 'strided' ? 'f32' : 'vec4<f32>'}>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// zeroes the steps of a 4-step group that lie past the end of k
fn inK(v: vec4<f32>, k: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(P.k));
}

@compute @workgroup_size(${S})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x;
  let row0 = wg.y * ${S * R}u + lane * ${R}u;
  let col0 = wg.x * ${T}u;
  let aBase = wg.z * P.aBatch;
  let bBase = wg.z * P.bBatch;
  let cBase = wg.z * P.m * P.n;
  let kLast = P.k - 1u;
${setup.join('\n')}
${accumulators.join('\n')}
  for (var k = 0u; k < P.k; k += 4u) {
${body.join('\n')}
  }
${store.join('\n')}
}`;
}

/** The cheapest load for each operand given its strides (in elements) and batch stride: vec4 loads
 * need the vec4 axis contiguous and every vec4 aligned, which the other strides and the batch
 * stride being multiples of 4 guarantee (tensors start at offset 0). */
export function subgroupOperandLoads(p: { m: number; n: number; am: number; ak: number; bk: number; bn: number; aBatch: number; bBatch: number }): Pick<SubgroupMatmulSpec, 'a' | 'b'> {
  const aligned = (stride: number, batch: number) => stride % 4 === 0 && batch % 4 === 0;
  const a = p.ak === 1 && aligned(p.am, p.aBatch) ? 'k' : p.am === 1 && p.m % 4 === 0 && aligned(p.ak, p.aBatch) ? 'm' : 'strided';
  const b = p.bk === 1 && aligned(p.bn, p.bBatch) ? 'k' : p.bn === 1 && p.n % 4 === 0 && aligned(p.bk, p.bBatch) ? 'n' : 'strided';
  return { a, b };
}
