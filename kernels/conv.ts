// The three convolution kernels that close under differentiation: the forward convolution, its
// input gradient (a transposed convolution) and its weight gradient. Each is an implicit GEMM in
// which one invocation accumulates a block of outputs in registers (llvmpipe rewards register
// blocking far more than shared memory). The blocks are generated fully unrolled, as separate
// named variables, so that no compiler has to promote an array to registers.
//
// Layouts: x [N, C, H, W], y [N, O, Ho, Wo], weight [O, C/groups, kh, kw] shared by the batch
// (wBatch = 0) or one such block per sample (wBatch = its size). The geometry is a uniform; the
// kernel key holds only the block shape.
import type { Kernel } from '../engine/runtime.ts';

export const CONV_WG = 64;

/** Block of outputs one invocation computes: `channels` rows (out-channels for the forward,
 * in-channels for the input gradient, out-channels for the weight gradient) by `columns` (pixels
 * along an output row, pixels of one stride phase along an input row, in-channels); columns is a
 * multiple of 4 because columns are held as vec4 accumulators. */
export interface ConvBlock {
  channels: number;
  columns: number;
}

/** The uniform every conv kernel reads; `blocks` is each kernel's column-block count (see the
 * kernels). */
export interface ConvUniforms {
  n: number; c: number; h: number; w: number;
  o: number; ho: number; wo: number; groups: number;
  kh: number; kw: number; sh: number; sw: number;
  ph: number; pw: number; wBatch: number; blocks: number;
}

const GEOMETRY = /* wgsl */ `
struct Geometry { n: u32, c: u32, h: u32, w: u32, o: u32, ho: u32, wo: u32, groups: u32,
  kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32, wBatch: u32, blocks: u32 };
@group(0) @binding(0) var<uniform> P: Geometry;`;

export function convUniforms(u: ConvUniforms): Uint32Array {
  return new Uint32Array([u.n, u.c, u.h, u.w, u.o, u.ho, u.wo, u.groups, u.kh, u.kw, u.sh, u.sw, u.ph, u.pw, u.wBatch, u.blocks]);
}

const range = (n: number) => [...Array(n).keys()];
const quads = (b: ConvBlock) => range(b.columns / 4);
const lines = (parts: string[], indent: string) => parts.join(`\n${indent}`);

function checkBlock(b: ConvBlock): void {
  if (b.columns % 4 !== 0 || b.columns < 4 || b.channels < 1) throw new Error(`conv block ${b.channels}x${b.columns}: columns must be a positive multiple of 4`);
}

/** Invocations along x walk the column blocks (`count` of them); the workgroup's y picks the
 * channel block and z the (sample, group). Lanes past the end compute a clamped duplicate and skip
 * only the stores, so that no early return makes the loops divergent. */
function prologue(count: string): string {
  return /* wgsl */ `
  let cg = P.c / P.groups;
  let og = P.o / P.groups;
  let khkw = P.kh * P.kw;
  let n = wid.z / P.groups;
  let g = wid.z % P.groups;
  let inRange = gid.x < ${count};
  let idx = min(gid.x, ${count} - 1u);`;
}

const ENTRY = /* wgsl */ `@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>)`;

/** y[n, o, i, j] = sum over c, a, b of x[n, c, i*sh - ph + a, j*sw - pw + b] * w[o, c, a, b].
 * One invocation: `channels` out-channels x `columns` adjacent pixels of one output row; `blocks`
 * = column blocks per output row. */
export function convForwardKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const M = range(block.channels);
  const Q = quads(block);
  return {
    key: `conv2d:${block.channels}x${block.columns}`,
    code: () => /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${ENTRY} {${prologue('P.ho * P.blocks')}
  let o0 = wid.y * ${block.channels}u;
  let row = idx / P.blocks;
  let j0 = (idx % P.blocks) * ${block.columns}u;
  let hw = P.h * P.w;
  let xBase = (n * P.c + g * cg) * hw;
  let wBase = n * P.wBatch + g * og * cg * khkw;
  ${lines(M.map((m) => `let w${m} = wBase + min(o0 + ${m}u, og - 1u) * cg * khkw;`), '  ')}
  ${lines(M.flatMap((m) => Q.map((q) => `var acc${m}_${q} = vec4<f32>(0.0);`)), '  ')}
  let lastCol = vec4<i32>(i32(P.w) - 1);
  for (var a = 0u; a < P.kh; a++) {
    let ih = i32(row * P.sh + a) - i32(P.ph);
    let rowIn = ih >= 0 && ih < i32(P.h);
    let xRow = xBase + u32(clamp(ih, 0, i32(P.h) - 1)) * P.w;
    for (var b = 0u; b < P.kw; b++) {
      ${lines(Q.map((q) => `let iw${q} = vec4<i32>((vec4<u32>(j0 + ${4 * q}u) + vec4<u32>(0u, 1u, 2u, 3u)) * P.sw + b) - i32(P.pw);`), '      ')}
      ${lines(Q.map((q) => `let in${q} = (iw${q} >= vec4<i32>(0)) & (iw${q} <= lastCol) & vec4<bool>(rowIn);`), '      ')}
      ${lines(Q.map((q) => `let at${q} = vec4<u32>(clamp(iw${q}, vec4<i32>(0), lastCol)) + xRow;`), '      ')}
      var xi = 0u;
      var wi = a * P.kw + b;
      for (var c = 0u; c < cg; c++) {
        ${lines(Q.map((q) => `let v${q} = select(vec4<f32>(0.0), vec4<f32>(x[at${q}.x + xi], x[at${q}.y + xi], x[at${q}.z + xi], x[at${q}.w + xi]), in${q});`), '        ')}
        ${lines(M.map((m) => `let k${m} = wt[w${m} + wi];`), '        ')}
        ${lines(M.flatMap((m) => Q.map((q) => `acc${m}_${q} = fma(vec4<f32>(k${m}), v${q}, acc${m}_${q});`)), '        ')}
        xi += hw;
        wi += khkw;
      }
    }
  }
  if (!inRange) { return; }
  let plane = P.ho * P.wo;
  let yRow = (n * P.o + g * og + o0) * plane + row * P.wo;
  ${lines(M.map((m) => `if (o0 + ${m}u < og) {
    ${lines(Q.flatMap((q) => range(4).map((t) => `if (j0 + ${4 * q + t}u < P.wo) { y[yRow + ${m}u * plane + j0 + ${4 * q + t}u] = acc${m}_${q}[${t}]; }`)), '    ')}
  }`), '  ')}
}`,
  };
}

/** The adjoint of the forward in x (a transposed convolution):
 * gx[n, c, h, w] = sum over o, a, b with (h + ph - a) = i*sh, (w + pw - b) = j*sw of gy[n, o, i, j] * w[o, c, a, b].
 * One invocation: `channels` in-channels x `columns` pixels w = r + k*sw of one input row that share
 * the stride phase r, so they all take the same taps b and read adjacent gy columns; only taps
 * of the row's phase are visited, so stride 2 costs no wasted work. `blocks` = column blocks per
 * phase (of ceil(W / sw) pixels). */
export function convInputGradKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const M = range(block.channels);
  const Q = quads(block);
  return {
    key: `conv2d-input-grad:${block.channels}x${block.columns}`,
    code: () => /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
${ENTRY} {${prologue('P.h * P.sw * P.blocks')}
  let perRow = P.sw * P.blocks;
  let c0 = wid.y * ${block.channels}u;
  let h = idx / perRow;
  let r = (idx % perRow) / P.blocks;
  let k0 = (idx % P.blocks) * ${block.columns}u;
  let plane = P.ho * P.wo;
  let gyBase = (n * P.o + g * og) * plane;
  let wBase = n * P.wBatch + g * og * cg * khkw;
  let oStride = cg * khkw;
  ${lines(M.map((m) => `let w${m} = wBase + min(c0 + ${m}u, cg - 1u) * khkw;`), '  ')}
  ${lines(M.flatMap((m) => Q.map((q) => `var acc${m}_${q} = vec4<f32>(0.0);`)), '  ')}
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
        ${lines(M.map((m) => `let k${m} = wt[w${m} + wi];`), '        ')}
        ${lines(M.flatMap((m) => Q.map((q) => `acc${m}_${q} = fma(vec4<f32>(k${m}), v${q}, acc${m}_${q});`)), '        ')}
        gi += plane;
        wi += oStride;
      }
    }
  }
  if (!inRange) { return; }
  let hw = P.h * P.w;
  let gxRow = (n * P.c + g * cg + c0) * hw + h * P.w + r;
  ${lines(M.map((m) => `if (c0 + ${m}u < cg) {
    ${lines(Q.flatMap((q) => range(4).map((t) => `if (r + (k0 + ${4 * q + t}u) * P.sw < P.w) { gx[gxRow + ${m}u * hw + (k0 + ${4 * q + t}u) * P.sw] = acc${m}_${q}[${t}]; }`)), '    ')}
  }`), '  ')}
}`,
  };
}

/** The adjoint of the forward in the weight, per sample:
 * gw[n, o, c, a, b] = sum over i, j of x[n, c, i*sh - ph + a, j*sw - pw + b] * gy[n, o, i, j].
 * One invocation: `channels` out-channels x `columns` in-channels at one tap (a, b), so every
 * column reads the same pixel position and the loop runs only over the output pixels whose tap
 * lands inside the image (no bounds test in the inner loop). `blocks` = in-channel blocks. */
export function convWeightGradKernel(block: ConvBlock): Kernel {
  checkBlock(block);
  const M = range(block.channels);
  const Q = quads(block);
  const C = range(block.columns);
  return {
    key: `conv2d-weight-grad:${block.channels}x${block.columns}`,
    code: () => /* wgsl */ `${GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gw: array<f32>;
// first index i >= 0 whose tap i*s - p + t lands in [0, size), and one past the last
fn tapRange(s: u32, p: u32, t: u32, size: u32, count: u32) -> vec2<u32> {
  let lo = select(0u, (p - t + s - 1u) / s, p > t);
  let hi = select(0u, min(count, (size + p - t - 1u) / s + 1u), size + p > t);
  return vec2<u32>(lo, max(lo, hi));
}
${ENTRY} {${prologue(`P.blocks * ((P.o / P.groups + ${block.channels - 1}u) / ${block.channels}u)`)}
  let o0 = (idx / P.blocks) * ${block.channels}u;
  let tap = wid.y;
  let c0 = (idx % P.blocks) * ${block.columns}u;
  let a = tap / P.kw;
  let b = tap % P.kw;
  let hw = P.h * P.w;
  let plane = P.ho * P.wo;
  let xBase = (n * P.c + g * cg) * hw;
  ${lines(C.map((c) => `let x${c} = xBase + min(c0 + ${c}u, cg - 1u) * hw;`), '  ')}
  ${lines(M.map((m) => `let y${m} = (n * P.o + g * og + min(o0 + ${m}u, og - 1u)) * plane;`), '  ')}
  ${lines(M.flatMap((m) => Q.map((q) => `var acc${m}_${q} = vec4<f32>(0.0);`)), '  ')}
  let rows = tapRange(P.sh, P.ph, a, P.h, P.ho);
  let cols = tapRange(P.sw, P.pw, b, P.w, P.wo);
  for (var i = rows.x; i < rows.y; i++) {
    let xRow = (i * P.sh + a - P.ph) * P.w + b - P.pw;
    let gyRow = i * P.wo;
    for (var j = cols.x; j < cols.y; j++) {
      let xo = xRow + j * P.sw;
      let gj = gyRow + j;
      ${lines(Q.map((q) => `let v${q} = vec4<f32>(${range(4).map((t) => `x[x${4 * q + t} + xo]`).join(', ')});`), '      ')}
      ${lines(M.map((m) => `let k${m} = gy[y${m} + gj];`), '      ')}
      ${lines(M.flatMap((m) => Q.map((q) => `acc${m}_${q} = fma(vec4<f32>(k${m}), v${q}, acc${m}_${q});`)), '      ')}
    }
  }
  if (!inRange) { return; }
  let out = (n * P.o + g * og + o0) * cg * khkw + c0 * khkw + tap;
  ${lines(M.map((m) => `if (o0 + ${m}u < og) {
    ${lines(Q.flatMap((q) => range(4).map((t) => `if (c0 + ${4 * q + t}u < cg) { gw[out + (${m}u * cg + ${4 * q + t}u) * khkw] = acc${m}_${q}[${t}]; }`)), '    ')}
  }`), '  ')}
}`,
  };
}
