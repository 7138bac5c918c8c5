// The FiLM-SIREN layer in one kernel: y[b, r, o] = sin(freq[b, o] * (x[b, r, :] . W[o, :] + bias[o])
// + phase[b, o]), with the portable sine; and, with a ReLU in place of the modulated sine, the
// sample network's layer max(x . W[o, :] + bias[o], 0). An invocation accumulates a block of
// (rows, outputs) in registers and applies the epilogue before its only store, so the
// pre-activation never goes to memory. Weights are [out, in] as in torch, so both operands are read
// along k: as vec4 when `in` is a multiple of 4, one float at a time otherwise (the first layers' 3
// inputs, the color layer's hidden + 3). Three shapes of the same computation:
// - the tiled kernel, for GPUs when `in` is a multiple of 4: a 16 x 16 workgroup computes a tile of
//   outputs (128 rows x 64 columns), each 16-deep slice of x and W along k staged once in workgroup
//   memory and read from there by 16 invocations, 8 x 4 outputs per invocation. On an H200 (NVIDIA
//   Vulkan) at GRAM64's [98304, 256] -> 256: 2.55 ms (5.0 TFLOP/s) against the block kernel's 9.45;
//   tiles 64x64, 128x128 and 64x128 and depths 8 and 32 were 2-19% slower;
// - the block kernel: 4 x 4 outputs per invocation straight from storage, for GPUs when `in` is not
//   a multiple of 4 (the first layers' 3 inputs: too little work to stage);
// - the subgroup kernel, for CPU adapters (llvmpipe), where a storage load costs an order of
//   magnitude more than an FMA: a workgroup is one subgroup, each lane loads its own 4 rows of x,
//   the 32 weight rows of the tile are loaded once across the subgroup and shared with
//   subgroupBroadcast, so each load feeds 32 (x) or 4 (W) FMAs instead of 4.
import type { Kernel } from './kernel.ts';
import { PORTABLE_SINCOS } from './wgsl.ts';

/** What follows x W^T + b: the FiLM modulation and sine, or a ReLU. */
export type LinearEpilogue = 'film-sine' | 'relu';

export interface FusedLinearParams {
  batch: number;
  /** Rows (points) per batch element. */
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

/** The tiled kernel's workgroup tile: rows and columns of outputs (multiples of 64, for 16 x 16
 * invocations with 4 x 4 blocks) and the slice of k staged per step (a multiple of 4). */
export interface LinearTile {
  rows: number;
  columns: number;
  depth: number;
}

export const GPU_LINEAR_TILE: LinearTile = { rows: 128, columns: 64, depth: 16 };

export interface FusedLinearSpec {
  epilogue: LinearEpilogue;
  /** `in` is a multiple of 4: operands are read as vec4. */
  vec4Loads: boolean;
  /** The adapter's fixed subgroup size for the subgroup kernel, or null for a GPU kernel. */
  subgroupSize: number | null;
  /** The tiled kernel's tile (needs vec4Loads), or null for the block kernel; ignored with subgroups. */
  tile: LinearTile | null;
}

const TILED_WG = 16;

const BLOCK = 4;
const BLOCK_WG = 8;
const LANE_ROWS = 4;
const TILE_COLUMNS = 32;

export function fusedLinearUniforms(p: FusedLinearParams): Uint32Array {
  return new Uint32Array([p.rows, p.outFeatures, p.inFeatures, p.batch]);
}

/** Workgroups for a [batch, rows, out] result: x over outputs, y over rows, z over the batch. */
export function fusedLinearGroups(spec: FusedLinearSpec, p: FusedLinearParams): [number, number, number] {
  if (spec.subgroupSize !== null) return [Math.ceil(p.outFeatures / TILE_COLUMNS), Math.ceil(p.rows / (spec.subgroupSize * LANE_ROWS)), p.batch];
  if (spec.tile) return [Math.ceil(p.outFeatures / spec.tile.columns), Math.ceil(p.rows / spec.tile.rows), p.batch];
  const per = BLOCK * BLOCK_WG;
  return [Math.ceil(p.outFeatures / per), Math.ceil(p.rows / per), p.batch];
}

const kernels = new Map<string, Kernel>();

/** Buffers, after the uniforms: x, W, bias, [freq, phase,] y. */
export function fusedLinearKernel(spec: FusedLinearSpec): Kernel {
  const { subgroupSize, tile } = spec;
  if (subgroupSize === null && tile && !spec.vec4Loads) throw new Error('fused linear: the tiled kernel needs vec4 operands');
  const shape = subgroupSize !== null ? `subgroup${subgroupSize}` : tile ? `tiled${tile.rows}x${tile.columns}x${tile.depth}` : 'block';
  const key = `fused-linear:${spec.epilogue}:${shape}:${spec.vec4Loads ? 'vec4' : 'scalar'}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = { key, code: () => (subgroupSize !== null ? subgroupSource(spec, subgroupSize) : tile ? tiledSource(spec, tile) : blockSource(spec)) };
    kernels.set(key, kernel);
  }
  return kernel;
}

function header(spec: FusedLinearSpec): string {
  const operand = spec.vec4Loads ? 'vec4<f32>' : 'f32';
  const film = spec.epilogue === 'film-sine';
  return /* wgsl */ `
struct Params { rows: u32, outF: u32, inF: u32, batch: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<${operand}>;
@group(0) @binding(2) var<storage, read> W: array<${operand}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
${film ? `@group(0) @binding(4) var<storage, read> freq: array<f32>;
@group(0) @binding(5) var<storage, read> phase: array<f32>;` : ''}
@group(0) @binding(${film ? 6 : 4}) var<storage, read_write> Y: array<f32>;
${film ? PORTABLE_SINCOS : ''}`;
}

/** The epilogue of output column `o` of batch element `b` for the accumulated product `acc`. */
function epilogue(spec: FusedLinearSpec, acc: string, c: string, f: string, p: string): string {
  return spec.epilogue === 'film-sine' ? `psin(${f} * (${acc} + ${c}) + ${p})` : `max(${acc} + ${c}, 0.0)`;
}

function blockSource(spec: FusedLinearSpec): string {
  const film = spec.epilogue === 'film-sine';
  const accumulate = spec.vec4Loads
    ? `for (var k = 0u; k < steps; k++) {
    let w = array<vec4<f32>, ${BLOCK}>(W[wBase[0] + k], W[wBase[1] + k], W[wBase[2] + k], W[wBase[3] + k]);
    for (var i = 0u; i < ${BLOCK}u; i++) {
      let x = X[xBase[i] + k];
      acc[i] += vec4<f32>(dot(x, w[0]), dot(x, w[1]), dot(x, w[2]), dot(x, w[3]));
    }
  }`
    : `for (var k = 0u; k < steps; k++) {
    let w = vec4<f32>(W[wBase[0] + k], W[wBase[1] + k], W[wBase[2] + k], W[wBase[3] + k]);
    for (var i = 0u; i < ${BLOCK}u; i++) { acc[i] += X[xBase[i] + k] * w; }
  }`;
  return /* wgsl */ `${header(spec)}
@compute @workgroup_size(${BLOCK_WG}, ${BLOCK_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  let row0 = gid.y * ${BLOCK}u;
  let col0 = gid.x * ${BLOCK}u;
  if (row0 >= P.rows || col0 >= P.outF) { return; }
  let steps = ${spec.vec4Loads ? 'P.inF / 4u' : 'P.inF'};
  // rows and columns past the end repeat the last one (in bounds) and are not stored
  var xBase: array<u32, ${BLOCK}>;
  var wBase: array<u32, ${BLOCK}>;
  for (var i = 0u; i < ${BLOCK}u; i++) {
    xBase[i] = (b * P.rows + min(row0 + i, P.rows - 1u)) * steps;
    wBase[i] = min(col0 + i, P.outF - 1u) * steps;
  }
  var acc: array<vec4<f32>, ${BLOCK}>;
  ${accumulate}
  for (var j = 0u; j < ${BLOCK}u; j++) {
    let o = col0 + j;
    if (o >= P.outF) { break; }
    let c = bias[o];
    ${film ? 'let f = freq[b * P.outF + o];\n    let p = phase[b * P.outF + o];' : ''}
    for (var i = 0u; i < ${BLOCK}u; i++) {
      let r = row0 + i;
      if (r < P.rows) { Y[(b * P.rows + r) * P.outF + o] = ${epilogue(spec, 'acc[i][j]', 'c', 'f', 'p')}; }
    }
  }
}`;
}

function tiledSource(spec: FusedLinearSpec, tile: LinearTile): string {
  const film = spec.epilogue === 'film-sine';
  const wg = TILED_WG;
  const threads = wg * wg;
  if (tile.rows % (4 * wg) || tile.columns % (4 * wg) || tile.depth % 4) throw new Error(`fused linear: bad tile ${JSON.stringify(tile)}`);
  const rowGroups = tile.rows / (4 * wg); // vec4 groups of rows per invocation
  const colGroups = tile.columns / (4 * wg);
  const d4 = tile.depth / 4;
  const range = (n: number) => [...Array(n).keys()];
  const lines = (items: number[], line: (n: number) => string) => items.map(line).join('\n');
  // invocation (ly, lx) owns rows 64 g + 4 ly + (0..3) and columns 64 q + 4 lx + (0..3) of the tile:
  // in the inner loop a warp reads one vec4 of x per row group (broadcast) and 16 consecutive vec4
  // of W per column group
  const rows = range(4 * rowGroups);
  const rowOf = (i: number) => `${Math.floor(i / 4) * 4 * wg}u + lid.y * 4u + ${i % 4}u`;
  const colOf = (q: number, c: number) => `${q * 4 * wg}u + lid.x * 4u + ${c}u`;
  // element e of a slice: row (or column) e / d4, k-group e % d4; stored transposed, [k][row]
  const stage = (target: string, extent: number, source: string, start: string, end: string, first: string) => {
    const count = extent * d4;
    return lines(range(Math.ceil(count / threads)), (s) => `    {
      let e = t + ${s * threads}u;${count % threads ? `
      if (e < ${count}u) {` : ' {'}
        let r = e / ${d4}u;
        let kk = k4 + e % ${d4}u;
        var v = vec4<f32>();
        if (kk < steps) { v = ${source}[(${first} + min(${start} + r, ${end} - 1u)) * steps + kk]; }
        let d = (e % ${d4}u) * 4u;
        ${target}[d * ${extent / 4}u + r / 4u][r % 4u] = v.x;
        ${target}[(d + 1u) * ${extent / 4}u + r / 4u][r % 4u] = v.y;
        ${target}[(d + 2u) * ${extent / 4}u + r / 4u][r % 4u] = v.z;
        ${target}[(d + 3u) * ${extent / 4}u + r / 4u][r % 4u] = v.w;
      }
    }`);
  };
  return /* wgsl */ `${header(spec)}
var<workgroup> Xs: array<vec4<f32>, ${tile.depth * tile.rows / 4}>;
var<workgroup> Ws: array<vec4<f32>, ${tile.depth * tile.columns / 4}>;

@compute @workgroup_size(${wg}, ${wg})
fn main(@builtin(workgroup_id) wgid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wgid.z;
  let row0 = wgid.y * ${tile.rows}u;
  let col0 = wgid.x * ${tile.columns}u;
  let t = lid.y * ${wg}u + lid.x;
  let steps = P.inF / 4u;
${lines(rows, (i) => `  var c${i} = array<vec4<f32>, ${colGroups}>();`)}
  // rows and columns past the end read the last one (in bounds) and are not stored
  for (var k4 = 0u; k4 < steps; k4 += ${d4}u) {
${stage('Xs', tile.rows, 'X', 'row0', 'P.rows', 'b * P.rows')}
${stage('Ws', tile.columns, 'W', 'col0', 'P.outF', '0u')}
    workgroupBarrier();
    for (var d = 0u; d < ${tile.depth}u; d++) {
${lines(range(rowGroups), (g) => `      let a${g} = Xs[d * ${tile.rows / 4}u + lid.y + ${g * wg}u];`)}
${lines(range(colGroups), (q) => `      let w${q} = Ws[d * ${tile.columns / 4}u + lid.x + ${q * wg}u];`)}
${lines(rows, (i) => lines(range(colGroups), (q) => `      c${i}[${q}] += a${Math.floor(i / 4)}[${i % 4}] * w${q};`))}
    }
    workgroupBarrier();
  }
${lines(range(colGroups), (q) => lines(range(4), (c) => `  let o${q}_${c} = min(col0 + ${colOf(q, c)}, P.outF - 1u);
  let bias${q}_${c} = bias[o${q}_${c}];${film ? ` let f${q}_${c} = freq[b * P.outF + o${q}_${c}]; let p${q}_${c} = phase[b * P.outF + o${q}_${c}];` : ''}`))}
${lines(rows, (i) => `  {
    let r = row0 + ${rowOf(i)};
    if (r < P.rows) {
${lines(range(colGroups), (q) => lines(range(4), (c) => `      if (col0 + ${colOf(q, c)} < P.outF) { Y[(b * P.rows + r) * P.outF + col0 + ${colOf(q, c)}] = ${epilogue(spec, `c${i}[${q}][${c}]`, `bias${q}_${c}`, `f${q}_${c}`, `p${q}_${c}`)}; }`))}
    }
  }`)}
}`;
}

function subgroupSource(spec: FusedLinearSpec, lanes: number): string {
  const film = spec.epilogue === 'film-sine';
  const R = LANE_ROWS;
  const T = TILE_COLUMNS;
  const rows = [...Array(R).keys()];
  const columns = [...Array(T).keys()];
  const rounds = [...Array(T / lanes).keys()];
  const lines = (items: number[], line: (n: number) => string) => items.map(line).join('\n');
  // lane l loads tile column l + lanes q in round q: column j lives in round j / lanes, lane j % lanes
  const shared = (name: string, j: number) => `subgroupBroadcast(${name}${Math.floor(j / lanes)}, ${j % lanes}u)`;
  const fma = (i: number, j: number) => (spec.vec4Loads ? `c${i}_${j} += dot(a${i}, w${j});` : `c${i}_${j} += a${i} * w${j};`);
  return /* wgsl */ `
enable subgroups;
${header(spec)}
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let b = wg.z;
  let row0 = wg.y * ${lanes * R}u + lane * ${R}u;
  let col0 = wg.x * ${T}u;
  let steps = ${spec.vec4Loads ? 'P.inF / 4u' : 'P.inF'};
  // no early exit (every lane takes part in the broadcasts): indices past the end are clamped and
  // their results not stored
${lines(rows, (i) => `  let xRow${i} = (b * P.rows + min(row0 + ${i}u, P.rows - 1u)) * steps;`)}
${lines(rounds, (q) => `  let wCol${q} = min(col0 + lane + ${q * lanes}u, P.outF - 1u);`)}
${lines(rows, (i) => `  ${columns.map((j) => `var c${i}_${j} = 0.0;`).join(' ')}`)}
  for (var k = 0u; k < steps; k++) {
${lines(rows, (i) => `    let a${i} = X[xRow${i} + k];`)}
${lines(rounds, (q) => `    let wl${q} = W[wCol${q} * steps + k];`)}
${lines(columns, (j) => `    let w${j} = ${shared('wl', j)};\n${lines(rows, (i) => `    ${fma(i, j)}`)}`)}
  }
${lines(rounds, (q) => `  let bl${q} = bias[wCol${q}];${film ? ` let fl${q} = freq[b * P.outF + wCol${q}]; let pl${q} = phase[b * P.outF + wCol${q}];` : ''}`)}
${lines(columns, (j) => `  {
    let c = ${shared('bl', j)};${film ? `\n    let f = ${shared('fl', j)};\n    let p = ${shared('pl', j)};` : ''}
    if (col0 + ${j}u < P.outF) {
${lines(rows, (i) => `      if (row0 + ${i}u < P.rows) { Y[(b * P.rows + row0 + ${i}u) * P.outF + col0 + ${j}u] = ${epilogue(spec, `c${i}_${j}`, 'c', 'f', 'p')}; }`)}
    }
  }`)}
}`;
}
