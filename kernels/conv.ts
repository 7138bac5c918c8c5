// The three convolution kernels that close under differentiation: the forward convolution, its
// input gradient (a transposed convolution) and its weight gradient. Each is an implicit GEMM in
// which one invocation accumulates a block of outputs in registers. The blocks are generated fully
// unrolled, as separate named variables, so that no compiler has to promote an array to registers.
//
// On CPU adapters (llvmpipe) every storage load inside a loop is emitted lane by lane with a
// bounds check (~10 instructions per lane, even where all lanes share the address), so the work per
// load is what counts. With subgroups, a block's per-channel values (the weights; the output
// gradients in the weight gradient) are loaded once across the subgroup, lane l taking channels
// l, l + S, ..., and broadcast to every lane (an extract and a splat). On llvmpipe (2 EPYC cores,
// GFLOP/s from CPU time, as other loads shared the machine) a 64-channel 3x3 conv at 64x64, batch
// 8: forward ~6.5 with 8 x 8 blocks and no subgroups, ~17 with 16 x 4 blocks and broadcasts (16 x 8
// and 32 x 4 no faster, 16 x 16 slower); input gradient 6.6 -> 15.8; weight gradient 4.6 -> 8 with
// 16 x 4 and ~11 with 32 x 4 (64 x 4 and 32 x 8 no faster). Where the forward's time goes (16 x 4,
// [8, 128, 64, 64] -> 32, wall time): 210 ms in all, ~70 ms of it the input loads, ~55 ms the weight
// loads and broadcasts, the rest the multiply-adds, which llvmpipe emits as mul, add and a blend
// with the loop's execution mask, the accumulators spilled (unrolling the channel loop by 2 or 4
// made it slower). Hence the row-of-3 variant, whose three taps share their input loads: 1.2-1.8x
// on the super-resolution trunk's shapes; and, for 3 x 3 kernels at stride 1 with subgroups, the
// whole-3x3 variant (square3Body): nine products per accumulator write, 4 out-channels' weights per
// vec4 load from a packed copy, 32 x 8 blocks, 1.1-1.25x over row-of-3 on the same shapes
// (interleaved runs) and a GRAMHD256 forward 107 -> 86 s. Micro-benchmarks of llvmpipe (Mesa 25.0,
// AVX2, 2 EPYC cores, all lanes together): a storage load ~1.3-1.8 ns per lane for a scalar and
// ~0.8 ns per float as a vec4, a subgroupBroadcast ~0.08 ns, a multiply-add in registers ~0.05 ns
// (mul + add + mask blend: no FMA contraction), so a load is worth ~30 multiply-adds.
//
// On GPUs what counts is how a warp's loads fall on cache lines: in the row-block kernels adjacent
// lanes start `columns` pixels apart, so each input load touches as many lines as there are lanes.
// The column kernels give adjacent lanes adjacent pixels. On an H100, convForwardColumnKernel ran
// the super-resolution trunk's 3x3 convs at 1.3-1.6x the row-of-3 kernel's rate; it also runs the
// input gradient (at stride 1 a forward convolution by the swapped, reversed kernel: 593 -> 233
// ms per GRAMHD256 training step), and convWeightGradColumnKernel took that step's weight
// gradients from 1,872 to 682 ms.
//
// Layouts: x [N, C, H, W], y [N, O, Ho, Wo], weight [O, C/groups, kh, kw] shared by the batch
// (wBatch = 0) or one such block per sample (wBatch = its size). The geometry is a uniform; the
// kernel key holds only the block shape and variant.
import type { Kernel } from './kernel.ts';

/** Workgroup size of the kernels without subgroups (those with subgroups use one subgroup). */
const PLAIN_WG = 64;

/** The outputs one invocation computes: `channels` rows (out-channels for the forward,
 * in-channels for the input gradient, out-channels for the weight gradient) by `columns` (pixels
 * along an output row, pixels of one stride phase along an input row, in-channels); columns is a
 * multiple of 4 because columns are held as vec4 accumulators. With a subgroup size the workgroup
 * is one subgroup and the per-row values are broadcast across it. */
export interface ConvBlock {
  channels: number;
  columns: number;
  subgroupSize: number | null;
  /** Forward only: adds a bias per out-channel (binding 4) as the outputs are stored. */
  bias?: boolean;
  /** Forward only, the rest of the store's epilogue (see ConvEpilogueSpec). */
  epilogue?: ConvEpilogueSpec;
  /** Forward only, for kw = 3 and sw = 1: the three taps of a kernel row share their input loads
   * (columns + 2 per input channel instead of 3 x columns). */
  rowOf3?: boolean;
  /** Forward only, for 3 x 3 kernels at stride 1 (needs subgroups): all nine taps of an input
   * channel in one step, each accumulator written once per channel (see square3Body). */
  square3?: boolean;
}

/** What the forward's store applies after the bias: y = leakyRelu(v, negativeSlope) * scale +
 * residual, each part where given; the residual (same shape as y) is the binding after the bias.
 * The activation of the super-resolution networks' dense blocks and their `x5 * 0.2 + x`, which
 * would otherwise each be a pass over y. With pixelShuffle r, y is stored as torch's
 * pixel_shuffle(y, r) ([N, O / r^2, Ho r, Wo r], the residual in that shape): the upsampling
 * convs' shuffle, otherwise a strided copy of y. */
export interface ConvEpilogueSpec {
  negativeSlope?: number;
  scale?: number;
  residual?: boolean;
  pixelShuffle?: number;
}

export function convWorkgroupSize(block: ConvBlock): number {
  return block.subgroupSize ?? PLAIN_WG;
}

/** The uniform every conv kernel reads; `blocks` is each kernel's column-block count (see the
 * kernels). */
export interface ConvUniforms {
  n: number; c: number; h: number; w: number;
  o: number; ho: number; wo: number; groups: number;
  kh: number; kw: number; sh: number; sw: number;
  ph: number; pw: number; wBatch: number; blocks: number;
}

export function convUniforms(u: ConvUniforms): Uint32Array {
  return new Uint32Array([u.n, u.c, u.h, u.w, u.o, u.ho, u.wo, u.groups, u.kh, u.kw, u.sh, u.sw, u.ph, u.pw, u.wBatch, u.blocks]);
}

const range = (n: number) => [...Array(n).keys()];
const lines = (parts: string[], indent: string) => parts.join(`\n${indent}`);

/** The uniform of every conv kernel (ConvUniforms), binding 0. */
const GEOMETRY = `struct Geometry { n: u32, c: u32, h: u32, w: u32, o: u32, ho: u32, wo: u32, groups: u32,
  kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32, wBatch: u32, blocks: u32 };
@group(0) @binding(0) var<uniform> P: Geometry;`;

/** The declarations, entry point and common values every conv kernel starts with. Invocations
 * along x enumerate `count` items (what they are is each kernel's own); workgroup z is the
 * (sample, group). Lanes past the end compute a clamped duplicate and skip only the stores, so no
 * early return makes the loops divergent (and every lane takes part in the broadcasts). */
function header(block: ConvBlock, bindings: [string, string, string], count: string, extra = '', weightType = 'f32'): string {
  const sg = block.subgroupSize !== null;
  return /* wgsl */ `${sg ? 'enable subgroups;' : ''}
${GEOMETRY}
@group(0) @binding(1) var<storage, read> ${bindings[0]}: array<f32>;
@group(0) @binding(2) var<storage, read> ${bindings[1]}: array<${weightType}>;
@group(0) @binding(3) var<storage, read_write> ${bindings[2]}: array<f32>;${extra}
@compute @workgroup_size(${convWorkgroupSize(block)})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>${sg ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {
  let cg = P.c / P.groups;
  let og = P.o / P.groups;
  let khkw = P.kh * P.kw;
  let n = wid.z / P.groups;
  let g = wid.z % P.groups;
  let inRange = gid.x < ${count};
  let idx = min(gid.x, ${count} - 1u);`;
}

/** The per-row values k0 .. k{channels-1} an invocation reads each step, from `buffer` at
 * `base + row(m) + offset`: loaded by every lane, or once per subgroup and broadcast. */
function rowLoads(block: ConvBlock, row: (m: string) => string) {
  const S = block.subgroupSize;
  const owned = S ? range(Math.ceil(block.channels / S)) : [];
  return {
    setup: (base: string): string[] => S
      ? owned.map((q) => `let own${q} = ${base} + ${row(`lane + ${q * S}u`)};`)
      : range(block.channels).map((m) => `let row${m} = ${base} + ${row(`${m}u`)};`),
    load: (buffer: string, offset: string): string[] => S
      ? [...owned.map((q) => `let ld${q} = ${buffer}[own${q} + ${offset}];`),
        ...range(block.channels).map((m) => `let k${m} = subgroupBroadcast(ld${Math.floor(m / S)}, ${m % S}u);`)]
      : range(block.channels).map((m) => `let k${m} = ${buffer}[row${m} + ${offset}];`),
  };
}

/** acc{m}_{q} += k{m} * v{q} over the block, and the accumulators' declarations. */
function blockProducts(block: ConvBlock): { declare: string[]; accumulate: string[] } {
  const pairs = range(block.channels).flatMap((m) => range(block.columns / 4).map((q) => [m, q]));
  return {
    declare: pairs.map(([m, q]) => `var acc${m}_${q} = vec4<f32>(0.0);`),
    accumulate: pairs.map(([m, q]) => `acc${m}_${q} = fma(vec4<f32>(k${m}), v${q}, acc${m}_${q});`),
  };
}

/** Stores acc{m}_{q}[t], or `value(m, index, acc)` of it, at index `at(m, column)` where `rowOk(m)`
 * and `columnOk(column)` hold. */
function blockStores(block: ConvBlock, out: string, rowOk: (m: number) => string, columnOk: (col: number) => string, at: (m: number, col: number) => string,
  value: (m: number, index: string, acc: string) => string = (_m, _i, acc) => acc): string {
  return lines(range(block.channels).map((m) => `if (${rowOk(m)}) {
    ${lines(range(block.columns).map((col) => `if (${columnOk(col)}) { ${out}[${at(m, col)}] = ${value(m, at(m, col), `acc${m}_${Math.floor(col / 4)}[${col % 4}]`)}; }`), '    ')}
  }`), '  ');
}

/** The forward's stored value for accumulator `acc` of out-channel row m at y index `index`. */
function forwardValue(block: ConvBlock, m: number, index: string, acc: string): string {
  const e = block.epilogue ?? {};
  let v = block.bias ? `(${acc} + bias${m})` : acc;
  if (e.negativeSlope !== undefined) v = `leaky(${v})`;
  if (e.scale !== undefined) v = `${v} * ${wgslFloat(e.scale)}`;
  if (e.residual) v = `${v} + residual[${index}]`;
  return v;
}

const wgslFloat = (v: number) => (Number.isInteger(v) ? `${v}.0` : `${v}`);

/** The forward's bindings after y (bias, residual) and the epilogue's helper function. */
function forwardExtras(block: ConvBlock): string {
  const e = block.epilogue ?? {};
  const extras: string[] = [];
  if (block.bias) extras.push('var<storage, read> bias: array<f32>;');
  if (e.residual) extras.push('var<storage, read> residual: array<f32>;');
  const decls = extras.map((d, i) => `\n@group(0) @binding(${4 + i}) ${d}`).join('');
  // as ops.leakyRelu: a * select(slope, 1, a > 0)
  return e.negativeSlope === undefined ? decls : `${decls}\nfn leaky(a: f32) -> f32 { return a * select(${wgslFloat(e.negativeSlope)}, 1.0, a > 0.0); }`;
}

/** With a pixel shuffle by r, out-channel oc = c r^2 + dy r + dx at (row, j) goes to channel c at
 * (row r + dy, j r + dx) of the [N, O / r^2, Ho r, Wo r] output: each block row's start. */
function shuffledRows(block: ConvBlock): string {
  const r = block.epilogue?.pixelShuffle;
  if (!r) return '';
  return lines(range(block.channels).map((m) => `let oc${m} = g * og + o0 + ${m}u;
  let yRow${m} = ((n * (P.o / ${r * r}u) + oc${m} / ${r * r}u) * P.ho * ${r}u + row * ${r}u + (oc${m} % ${r * r}u) / ${r}u) * P.wo * ${r}u + j0 * ${r}u + oc${m} % ${r}u;`), '  ');
}

function storeIndex(block: ConvBlock, m: number, col: number): string {
  const r = block.epilogue?.pixelShuffle;
  return r ? `yRow${m} + ${col * r}u` : `yRow + ${m}u * plane + ${col}u`;
}

function checkBlock(b: ConvBlock): void {
  if (b.columns % 4 !== 0 || b.columns < 4 || b.channels < 1) throw new Error(`conv block ${b.channels}x${b.columns}: columns must be a positive multiple of 4`);
  if (b.square3 && (b.subgroupSize === null || b.channels !== 4 * b.subgroupSize)) throw new Error(`conv block ${b.channels}x${b.columns}: the 3 x 3 variant needs subgroups and 4 channels per lane`);
}

const epilogueKey = (e: ConvEpilogueSpec | undefined) => (e ? `:lrelu${e.negativeSlope ?? '-'}:scale${e.scale ?? '-'}${e.residual ? ':res' : ''}${e.pixelShuffle ? `:ps${e.pixelShuffle}` : ''}` : '');
const keyOf = (name: string, b: ConvBlock) => `${name}:${b.channels}x${b.columns}${b.subgroupSize ? `:sg${b.subgroupSize}` : ''}${b.bias ? ':bias' : ''}${b.rowOf3 ? ':row3' : ''}${b.square3 ? ':sq3' : ''}${epilogueKey(b.epilogue)}`;

/** y[n, o, i, j] = sum over c, a, b of x[n, c, i*sh - ph + a, j*sw - pw + b] * w[o, c, a, b]
 * (+ bias[o] with block.bias, saving the separate broadcast add's pass over y).
 * One invocation: `channels` out-channels x `columns` adjacent pixels of one output row. x runs
 * over (row, column block), `blocks` = column blocks per output row; workgroup y = out-channel
 * block, so the weights' addresses are the same in every lane. */
export function convForwardKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const Q = range(block.columns / 4);
  const weights = rowLoads(block, (m) => `min(o0 + ${m}, og - 1u) * cg * khkw`);
  const products = blockProducts(block);
  return {
    key: keyOf('conv2d', block),
    code: () => /* wgsl */ `${header(block, ['x', 'wt', 'y'], 'P.ho * P.blocks', forwardExtras(block), block.square3 ? 'vec4<f32>' : 'f32')}
  let o0 = wid.y * ${block.channels}u;
  let row = idx / P.blocks;
  let j0 = (idx % P.blocks) * ${block.columns}u;
  let hw = P.h * P.w;
  let xBase = (n * P.c + g * cg) * hw;
  ${block.square3 ? '' : lines(weights.setup('n * P.wBatch + g * og * cg * khkw'), '  ')}
  ${lines(products.declare, '  ')}
  ${block.square3 ? square3Body(block) : `let lastCol = vec4<i32>(i32(P.w) - 1);
  for (var a = 0u; a < P.kh; a++) {
    let ih = i32(row * P.sh + a) - i32(P.ph);
    let rowIn = ih >= 0 && ih < i32(P.h);
    let xRow = xBase + u32(clamp(ih, 0, i32(P.h) - 1)) * P.w;
    ${block.rowOf3 ? rowOf3Body(block, weights, products) : `for (var b = 0u; b < P.kw; b++) {
      ${lines(Q.map((q) => `let iw${q} = vec4<i32>((vec4<u32>(j0 + ${4 * q}u) + vec4<u32>(0u, 1u, 2u, 3u)) * P.sw + b) - i32(P.pw);`), '      ')}
      ${lines(Q.map((q) => `let in${q} = (iw${q} >= vec4<i32>(0)) & (iw${q} <= lastCol) & vec4<bool>(rowIn);`), '      ')}
      ${lines(Q.map((q) => `let at${q} = vec4<u32>(clamp(iw${q}, vec4<i32>(0), lastCol)) + xRow;`), '      ')}
      var xi = 0u;
      var wi = a * P.kw + b;
      for (var c = 0u; c < cg; c++) {
        ${lines(Q.map((q) => `let v${q} = select(vec4<f32>(0.0), vec4<f32>(x[at${q}.x + xi], x[at${q}.y + xi], x[at${q}.z + xi], x[at${q}.w + xi]), in${q});`), '        ')}
        ${lines(weights.load('wt', 'wi'), '        ')}
        ${lines(products.accumulate, '        ')}
        xi += hw;
        wi += khkw;
      }
    }`}
  }`}
  if (!inRange) { return; }
  let plane = P.ho * P.wo;
  let yRow = (n * P.o + g * og + o0) * plane + row * P.wo + j0;
  ${block.bias ? lines(range(block.channels).map((m) => `let bias${m} = bias[g * og + min(o0 + ${m}u, og - 1u)];`), '  ') : ''}
  ${shuffledRows(block)}
  ${blockStores(block, 'y', (m) => `o0 + ${m}u < og`, (col) => `j0 + ${col}u < P.wo`, (m, col) => storeIndex(block, m, col), (m, index, acc) => forwardValue(block, m, index, acc))}
}`,
  };
}

/** The forward's channel loop for one kernel row when kw = 3 and sw = 1: output column j0 + col
 * takes input column j0 + col + b - pw at tap b, so the columns + 2 inputs t = col + b are loaded
 * once per input channel and each tap's vec4s are assembled from them. */
function rowOf3Body(block: ConvBlock, weights: ReturnType<typeof rowLoads>, products: ReturnType<typeof blockProducts>): string {
  const T = range(block.columns + 2);
  const Q = range(block.columns / 4);
  return `${lines(T.map((t) => `let iw${t} = i32(j0 + ${t}u) - i32(P.pw);`), '    ')}
    ${lines(T.map((t) => `let in${t} = iw${t} >= 0 && iw${t} < i32(P.w) && rowIn;`), '    ')}
    ${lines(T.map((t) => `let at${t} = u32(clamp(iw${t}, 0, i32(P.w) - 1)) + xRow;`), '    ')}
    var xi = 0u;
    var wi = a * 3u;
    for (var c = 0u; c < cg; c++) {
      ${lines(T.map((t) => `let x${t} = select(0.0, x[at${t} + xi], in${t});`), '      ')}
      ${lines(range(3).map((b) => `{
        ${lines(Q.map((q) => `let v${q} = vec4<f32>(${range(4).map((u) => `x${4 * q + u + b}`).join(', ')});`), '        ')}
        ${lines(weights.load('wt', `wi + ${b}u`), '        ')}
        ${lines(products.accumulate, '        ')}
      }`), '      ')}
      xi += hw;
      wi += khkw;
    }`;
}

/** The forward's whole reduction for a 3 x 3 kernel at stride 1 (with subgroups). Per input
 * channel it loads the 3 x (columns + 2) inputs the block's taps cover and the 9 weights of each
 * out-channel (once across the subgroup, broadcast), and adds the nine products of each output to
 * its accumulator in one write. On llvmpipe every write of a variable inside a loop costs a blend
 * with the loop's mask, and the accumulators, too many for the registers, a load and a store from
 * the stack; one write per 9 products instead of per product is what this variant saves over
 * rowOf3. */
function square3Body(block: ConvBlock): string {
  const S = block.subgroupSize!;
  const T = range(block.columns + 2);
  const Q = range(block.columns / 4);
  const A = range(3);
  const taps = range(9);
  const M = range(block.channels);
  const v = (a: number, b: number, q: number) => `vec4<f32>(${range(4).map((u) => `x${a}_${4 * q + u + b}`).join(', ')})`;
  const sum = (m: number, q: number) => taps.map((t) => `k${m}_${t} * ${v(Math.floor(t / 3), t % 3, q)}`).join(' + ');
  return `${lines(A.map((a) => `let ih${a} = i32(row + ${a}u) - i32(P.ph);`), '  ')}
  ${lines(A.map((a) => `let rowIn${a} = ih${a} >= 0 && ih${a} < i32(P.h);`), '  ')}
  ${lines(A.map((a) => `let xRow${a} = xBase + u32(clamp(ih${a}, 0, i32(P.h) - 1)) * P.w;`), '  ')}
  ${lines(T.map((t) => `let iw${t} = i32(j0 + ${t}u) - i32(P.pw);`), '  ')}
  ${lines(T.map((t) => `let colIn${t} = iw${t} >= 0 && iw${t} < i32(P.w);`), '  ')}
  ${lines(T.map((t) => `let col${t} = u32(clamp(iw${t}, 0, i32(P.w) - 1));`), '  ')}
  ${lines(A.flatMap((a) => T.map((t) => `let at${a}_${t} = xRow${a} + col${t};`)), '  ')}
  ${lines(A.flatMap((a) => T.map((t) => `let in${a}_${t} = rowIn${a} && colIn${t};`)), '  ')}
  let oBlocks = (og + ${block.channels - 1}u) / ${block.channels}u;
  var wi = ((select(0u, n, P.wBatch != 0u) * P.groups + g) * oBlocks + wid.y) * cg * ${9 * S}u + lane;
  var xi = 0u;
  for (var c = 0u; c < cg; c++) {
    ${lines(A.flatMap((a) => T.map((t) => `let x${a}_${t} = select(0.0, x[at${a}_${t} + xi], in${a}_${t});`)), '    ')}
    ${lines(taps.map((t) => `let ld${t} = wt[wi + ${t * S}u];`), '    ')}
    ${lines(M.map((m) => `{
      ${lines(taps.map((t) => `let k${m}_${t} = subgroupBroadcast(ld${t}, ${Math.floor(m / 4)}u)[${m % 4}];`), '      ')}
      ${lines(Q.map((q) => `acc${m}_${q} += ${sum(m, q)};`), '      ')}
    }`), '    ')}
    xi += hw;
    wi += ${9 * S}u;
  }`;
}

/** The 3 x 3, stride-1 forward for GPUs: one invocation computes `channels` out-channels (a
 * multiple of 4, held as vec4 accumulators) by `rows` output rows of one output column, and the
 * lanes of a workgroup take adjacent columns. Each input load is then one coalesced access across a
 * warp, where the row-block kernels' lanes, `columns` pixels apart, touch as many cache lines as
 * there are lanes; per input channel an invocation loads the (rows + 2) x 3 inputs its taps cover
 * and its out-channels' 9 taps as vec4s from the packed weights (as square3Body reads them: [(N,)
 * groups, out-channel blocks, C/groups, 9 taps, channels]), the same address in every lane. x runs
 * over (row block, column), `blocks` = row blocks; workgroup y = out-channel block. */
export function convForwardColumnKernel(block: ConvColumnBlock): Kernel {
  if (block.channels % 4 !== 0 || block.channels < 4 || block.rows < 1) throw new Error(`conv column block ${block.channels}x${block.rows}: channels must be a positive multiple of 4`);
  const V = range(block.channels / 4);
  const R = range(block.rows);
  const T = range(block.rows + 2);
  const B = range(3);
  const asBlock: ConvBlock = { channels: block.channels, columns: 4, subgroupSize: null, bias: block.bias, epilogue: block.epilogue };
  const r = block.epilogue?.pixelShuffle;
  const index = (m: number, i: number) => (r
    ? `((n * (P.o / ${r * r}u) + oc${m} / ${r * r}u) * P.ho * ${r}u + (i0 + ${i}u) * ${r}u + (oc${m} % ${r * r}u) / ${r}u) * P.wo * ${r}u + j * ${r}u + oc${m} % ${r}u`
    : `yCol + ${m}u * plane + ${i}u * P.wo`);
  return {
    key: `conv2d-column3:${block.channels}x${block.rows}${block.bias ? ':bias' : ''}${epilogueKey(block.epilogue)}`,
    code: () => /* wgsl */ `${header(asBlock, ['x', 'wt', 'y'], 'P.wo * P.blocks', forwardExtras(asBlock), 'vec4<f32>')}
  let o0 = wid.y * ${block.channels}u;
  let j = idx % P.wo;
  let i0 = (idx / P.wo) * ${block.rows}u;
  let hw = P.h * P.w;
  let xBase = (n * P.c + g * cg) * hw;
  ${lines(T.map((t) => `let ih${t} = i32(i0 + ${t}u) - i32(P.ph);`), '  ')}
  ${lines(B.map((b) => `let iw${b} = i32(j + ${b}u) - i32(P.pw);`), '  ')}
  ${lines(T.flatMap((t) => B.map((b) => `let in${t}_${b} = ih${t} >= 0 && ih${t} < i32(P.h) && iw${b} >= 0 && iw${b} < i32(P.w);`)), '  ')}
  ${lines(T.flatMap((t) => B.map((b) => `let at${t}_${b} = xBase + u32(clamp(ih${t}, 0, i32(P.h) - 1)) * P.w + u32(clamp(iw${b}, 0, i32(P.w) - 1));`)), '  ')}
  let oBlocks = (og + ${block.channels - 1}u) / ${block.channels}u;
  var wi = ((select(0u, n, P.wBatch != 0u) * P.groups + g) * oBlocks + wid.y) * cg * ${9 * V.length}u;
  var xi = 0u;
  ${lines(R.flatMap((i) => V.map((v) => `var acc${i}_${v} = vec4<f32>(0.0);`)), '  ')}
  for (var c = 0u; c < cg; c++) {
    ${lines(range(9).flatMap((tap) => V.map((v) => `let k${tap}_${v} = wt[wi + ${tap * V.length + v}u];`)), '    ')}
    ${lines(T.map((t) => `{
      ${lines(B.map((b) => `let x${b} = select(0.0, x[at${t}_${b} + xi], in${t}_${b});`), '      ')}
      ${lines(R.filter((i) => t - i >= 0 && t - i < 3).flatMap((i) => V.map((v) => `acc${i}_${v} = ${B.reduce((acc, b) => `fma(k${(t - i) * 3 + b}_${v}, vec4<f32>(x${b}), ${acc})`, `acc${i}_${v}`)};`)), '      ')}
    }`), '    ')}
    xi += hw;
    wi += ${9 * V.length}u;
  }
  if (!inRange) { return; }
  let plane = P.ho * P.wo;
  let yCol = (n * P.o + g * og + o0) * plane + i0 * P.wo + j;
  ${block.bias ? lines(range(block.channels).map((m) => `let bias${m} = bias[g * og + min(o0 + ${m}u, og - 1u)];`), '  ') : ''}
  ${r ? lines(range(block.channels).map((m) => `let oc${m} = g * og + o0 + ${m}u;`), '  ') : ''}
  ${lines(R.map((i) => `if (i0 + ${i}u < P.ho) {
    ${lines(range(block.channels).map((m) => `if (o0 + ${m}u < og) { y[${index(m, i)}] = ${forwardValue(asBlock, m, index(m, i), `acc${i}_${Math.floor(m / 4)}[${m % 4}]`)}; }`), '    ')}
  }`), '  ')}
}`,
  };
}

/** The weight gradient of a 3 x 3, stride-1 convolution for GPUs, per sample: a workgroup of
 * PLAIN_WG lanes computes `channels` out-channels (a multiple of 4, as vec4s) x `inChannels`
 * in-channels x the 9 taps of one sample, its lanes taking adjacent output pixels (coalesced loads
 * of gy and x, where convWeightGradKernel's lanes read different channel planes) and striding by
 * the workgroup over the image; the lanes' sums are added across each subgroup and then across the workgroup's subgroups.
 * Workgroup x = (out-channel block, in-channel block), z = (sample, group); gw is [N, O, C/groups,
 * 3, 3] as convWeightGradKernel writes it. */
export function convWeightGradColumnKernel(block: ConvWeightGradColumnBlock): Kernel {
  const { channels, inChannels, subgroupSize: S } = block;
  if (channels % 4 !== 0 || channels < 4 || inChannels < 1 || PLAIN_WG % S !== 0) throw new Error(`conv weight-gradient column block ${channels}x${inChannels} (subgroup ${S}): channels must be a positive multiple of 4 and the subgroup size divide ${PLAIN_WG}`);
  const V = range(channels / 4);
  const K = range(inChannels);
  const A = range(3);
  const taps = range(9);
  // accumulator index (k * 9 + tap) * V + v, the order of the final sum's lanes
  const accs = K.flatMap((k) => taps.flatMap((t) => V.map((v) => `acc${k}_${t}_${v}`)));
  return {
    key: `conv2d-weight-grad-column3:${channels}x${inChannels}:sg${S}`,
    code: () => /* wgsl */ `enable subgroups;
${GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gw: array<f32>;
var<workgroup> partial: array<vec4<f32>, ${accs.length * (PLAIN_WG / S)}>;
@compute @workgroup_size(${PLAIN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let cg = P.c / P.groups;
  let og = P.o / P.groups;
  let n = wid.z / P.groups;
  let g = wid.z % P.groups;
  let o0 = wid.x / P.blocks * ${channels}u;
  let c0 = wid.x % P.blocks * ${inChannels}u;
  let plane = P.ho * P.wo;
  let hw = P.h * P.w;
  ${lines(range(channels).map((m) => `let gyPlane${m} = (n * P.o + g * og + min(o0 + ${m}u, og - 1u)) * plane;`), '  ')}
  ${lines(K.map((k) => `let xPlane${k} = (n * P.c + g * cg + min(c0 + ${k}u, cg - 1u)) * hw;`), '  ')}
  ${lines(accs.map((a) => `var ${a} = vec4<f32>(0.0);`), '  ')}
  for (var p = lid; p < plane; p += ${PLAIN_WG}u) {
    let i = p / P.wo;
    let j = p % P.wo;
    ${lines(V.map((v) => `let gv${v} = vec4<f32>(${range(4).map((u) => `gy[gyPlane${4 * v + u} + p]`).join(', ')});`), '    ')}
    ${lines(A.map((a) => `let ih${a} = i32(i + ${a}u) - i32(P.ph);`), '    ')}
    ${lines(A.map((b) => `let iw${b} = i32(j + ${b}u) - i32(P.pw);`), '    ')}
    ${lines(A.flatMap((a) => A.map((b) => `let in${a}_${b} = ih${a} >= 0 && ih${a} < i32(P.h) && iw${b} >= 0 && iw${b} < i32(P.w);`)), '    ')}
    ${lines(A.flatMap((a) => A.map((b) => `let at${a}_${b} = u32(clamp(ih${a}, 0, i32(P.h) - 1)) * P.w + u32(clamp(iw${b}, 0, i32(P.w) - 1));`)), '    ')}
    ${lines(K.flatMap((k) => taps.map((t) => `{
      let xv = select(0.0, x[xPlane${k} + at${Math.floor(t / 3)}_${t % 3}], in${Math.floor(t / 3)}_${t % 3});
      ${lines(V.map((v) => `acc${k}_${t}_${v} = fma(gv${v}, vec4<f32>(xv), acc${k}_${t}_${v});`), '      ')}
    }`)), '    ')}
  }
  let sub = lid / ${S}u;
  ${lines(accs.map((a, idx) => `let s${idx} = subgroupAdd(${a});
  if (lane == 0u) { partial[sub * ${accs.length}u + ${idx}u] = s${idx}; }`), '  ')}
  workgroupBarrier();
  if (lid < ${accs.length}u) {
    var total = vec4<f32>(0.0);
    for (var s = 0u; s < ${PLAIN_WG / S}u; s++) { total += partial[s * ${accs.length}u + lid]; }
    // accumulator lid = (k * 9 + tap) * ${V.length} + v
    let v = lid % ${V.length}u;
    let tap = lid / ${V.length}u % 9u;
    let c = c0 + lid / ${V.length * 9}u;
    if (c < cg) {
      for (var u = 0u; u < 4u; u++) {
        let o = o0 + 4u * v + u;
        if (o < og) { gw[((n * P.o + g * og + o) * cg + c) * 9u + tap] = total[u]; }
      }
    }
  }
}`,
  };
}

/** What a workgroup of convWeightGradColumnKernel computes. */
export interface ConvWeightGradColumnBlock {
  channels: number;
  inChannels: number;
  subgroupSize: number;
}

/** What convForwardColumnKernel's invocation computes, and its store's epilogue. */
export interface ConvColumnBlock {
  channels: number;
  rows: number;
  bias?: boolean;
  epilogue?: ConvEpilogueSpec;
}

/** The adjoint of the forward in x (a transposed convolution):
 * gx[n, c, h, w] = sum over o, a, b with (h + ph - a) = i*sh, (w + pw - b) = j*sw of gy[n, o, i, j] * w[o, c, a, b].
 * One invocation: `channels` in-channels x `columns` pixels w = r + k*sw of one input row that share
 * the stride phase r, so they all take the same taps b and read adjacent gy columns; only taps
 * of the row's phase are visited, so stride 2 costs no wasted work. `blocks` = column blocks per
 * phase (of ceil(W / sw) pixels). Without subgroups x runs over (row, phase, column block) and
 * workgroup y is the in-channel block; with subgroups x runs over column blocks and y over (row,
 * phase, in-channel block), so that the taps visited, and hence the broadcasts, are the same in
 * every lane. */
export function convInputGradKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const Q = range(block.columns / 4);
  const weights = rowLoads(block, (m) => `min(c0 + ${m}, cg - 1u) * khkw`);
  const products = blockProducts(block);
  const sg = block.subgroupSize !== null;
  return {
    key: keyOf('conv2d-input-grad', block),
    code: () => /* wgsl */ `${header(block, ['gy', 'wt', 'gx'], sg ? 'P.blocks' : 'P.h * P.sw * P.blocks')}
  ${sg ? `let cBlocks = (cg + ${block.channels - 1}u) / ${block.channels}u;
  let c0 = (wid.y % cBlocks) * ${block.channels}u;
  let h = wid.y / cBlocks / P.sw;
  let r = (wid.y / cBlocks) % P.sw;` : `let c0 = wid.y * ${block.channels}u;
  let h = idx / (P.sw * P.blocks);
  let r = (idx / P.blocks) % P.sw;`}
  let k0 = (idx % P.blocks) * ${block.columns}u;
  let plane = P.ho * P.wo;
  let gyBase = (n * P.o + g * og) * plane;
  let oStride = cg * khkw;
  ${lines(weights.setup('n * P.wBatch + g * og * cg * khkw'), '  ')}
  ${lines(products.declare, '  ')}
  let lastCol = vec4<i32>(i32(P.wo) - 1);
  for (var a = (h + P.ph) % P.sh; a < P.kh && a <= h + P.ph; a += P.sh) {
    let i = (h + P.ph - a) / P.sh;
    if (i >= P.ho) { continue; }
    let gyRow = gyBase + i * P.wo;
    for (var b = (r + P.pw) % P.sw; b < P.kw; b += P.sw) {
      // exact division: b was chosen congruent to r + pw modulo sw
      let jb = (i32(r + P.pw) - i32(b)) / i32(P.sw) + i32(k0);
      ${lines(Q.map((q) => `let j${q} = vec4<i32>(jb + ${4 * q}) + vec4<i32>(0, 1, 2, 3);`), '      ')}
      ${lines(Q.map((q) => `let in${q} = (j${q} >= vec4<i32>(0)) & (j${q} <= lastCol);`), '      ')}
      ${lines(Q.map((q) => `let at${q} = vec4<u32>(clamp(j${q}, vec4<i32>(0), lastCol)) + gyRow;`), '      ')}
      var gi = 0u;
      var wi = a * P.kw + b;
      for (var o = 0u; o < og; o++) {
        ${lines(Q.map((q) => `let v${q} = select(vec4<f32>(0.0), vec4<f32>(gy[at${q}.x + gi], gy[at${q}.y + gi], gy[at${q}.z + gi], gy[at${q}.w + gi]), in${q});`), '        ')}
        ${lines(weights.load('wt', 'wi'), '        ')}
        ${lines(products.accumulate, '        ')}
        gi += plane;
        wi += oStride;
      }
    }
  }
  if (!inRange) { return; }
  let hw = P.h * P.w;
  let gxRow = (n * P.c + g * cg + c0) * hw + h * P.w + r;
  ${blockStores(block, 'gx', (m) => `c0 + ${m}u < cg`, (col) => `r + (k0 + ${col}u) * P.sw < P.w`, (m, col) => `gxRow + ${m}u * hw + (k0 + ${col}u) * P.sw`)}
}`,
  };
}

/** The adjoint of the forward in the weight, per sample:
 * gw[n, o, c, a, b] = sum over i, j of x[n, c, i*sh - ph + a, j*sw - pw + b] * gy[n, o, i, j].
 * One invocation: `channels` out-channels x `columns` in-channels at one tap (a, b), so every
 * column reads the same pixel position and the loop runs only over the output pixels whose tap
 * lands inside the image (no bounds test in the inner loop). `blocks` = in-channel blocks. Without
 * subgroups x runs over (out-channel block, in-channel block) and workgroup y is the tap; with
 * subgroups x runs over in-channel blocks and y over (tap, out-channel block), so that a subgroup
 * shares its output gradients. Either way every lane of a workgroup runs the same pixel loop. */
export function convWeightGradKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const Q = range(block.columns / 4);
  const gradients = rowLoads(block, (m) => `min(o0 + ${m}, og - 1u) * plane`);
  const products = blockProducts(block);
  const oBlocks = `((og + ${block.channels - 1}u) / ${block.channels}u)`;
  const sg = block.subgroupSize !== null;
  return {
    key: keyOf('conv2d-weight-grad', block),
    code: () => /* wgsl */ `${header(block, ['x', 'gy', 'gw'], sg ? 'P.blocks' : `P.blocks * ${oBlocks}`)}
  let o0 = ${sg ? `(wid.y % ${oBlocks})` : 'idx / P.blocks'} * ${block.channels}u;
  let tap = ${sg ? `wid.y / ${oBlocks}` : 'wid.y'};
  let c0 = (idx % P.blocks) * ${block.columns}u;
  let a = tap / P.kw;
  let b = tap % P.kw;
  let hw = P.h * P.w;
  let plane = P.ho * P.wo;
  let xBase = (n * P.c + g * cg) * hw;
  ${lines(range(block.columns).map((c) => `let x${c} = xBase + min(c0 + ${c}u, cg - 1u) * hw;`), '  ')}
  ${lines(gradients.setup('(n * P.o + g * og) * plane'), '  ')}
  ${lines(products.declare, '  ')}
  let rows = tapRange(P.sh, P.ph, a, P.h, P.ho);
  let cols = tapRange(P.sw, P.pw, b, P.w, P.wo);
  for (var i = rows.x; i < rows.y; i++) {
    let xRow = (i * P.sh + a - P.ph) * P.w + b - P.pw;
    let gyRow = i * P.wo;
    for (var j = cols.x; j < cols.y; j++) {
      let xo = xRow + j * P.sw;
      let gj = gyRow + j;
      ${lines(Q.map((q) => `let v${q} = vec4<f32>(${range(4).map((t) => `x[x${4 * q + t} + xo]`).join(', ')});`), '      ')}
      ${lines(gradients.load('gy', 'gj'), '      ')}
      ${lines(products.accumulate, '      ')}
    }
  }
  if (!inRange) { return; }
  let out = (n * P.o + g * og + o0) * cg * khkw + c0 * khkw + tap;
  ${blockStores(block, 'gw', (m) => `o0 + ${m}u < og`, (col) => `c0 + ${col}u < cg`, (m, col) => `out + (${m}u * cg + ${col}u) * khkw`)}
}
// first index i >= 0 whose tap i*s - p + t lands in [0, size), and one past the last
fn tapRange(s: u32, p: u32, t: u32, size: u32, count: u32) -> vec2<u32> {
  let lo = select(0u, (p - t + s - 1u) / s, p > t);
  let hi = select(0u, min(count, (size + p - t - 1u) / s + 1u), size + p > t);
  return vec2<u32>(lo, max(lo, hi));
}`,
  };
}
