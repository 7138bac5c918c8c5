// 2-D convolution as torch.nn.functional.conv2d (stride, zero or replicate padding, groups), with
// either one weight for the batch or one weight per sample (StyleGAN2's modulated convolution), and
// the modulated convolution itself.
//
// Three primitives close under differentiation, each one WGSL kernel (kernels/conv.ts):
//   convolve(x, w)            y  = F(x, w)
//   transposeConvolve(gy, w)  gx = T(gy, w)   the adjoint of F in x
//   weightGradient(x, gy)     gw = G(x, gy)   the adjoint of F in w
// F, T and G are bilinear and <gy, F(x, w)> = <T(gy, w), x> = <G(x, gy), w>, so the gradient of
// each is made of the other two: dF = (T(g, w), G(x, g)); dT = (F(g, w), G(g, gy));
// dG = (T(gy, g), F(x, g)). Hence gradients of every order (R1 differentiates through D twice).
import { convForwardColumnKernel, convForwardKernel, convWeightGradColumnKernel, convWorkgroupSize, convInputGradKernel, convUniforms, convWeightGradKernel, type ConvBlock, type ConvEpilogueSpec } from '../../kernels/conv.ts';
import { isGradEnabled, noGrad, record } from '../autograd.ts';
import { engineDevice } from '../device.ts';
import { dispatch, type Kernel } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { add, leakyRelu, mul, rsqrt, square } from './elementwise.ts';
import { fixedSubgroupSize, matmul } from './matmul.ts';
import { pad } from './pad.ts';
import { pixelShuffle } from './resample.ts';
import { sum } from './reduce.ts';
import { flip, permute, reshape, slice, stack } from './shape.ts';

type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  /** Pixels added on each side of the height and the width. */
  padding?: Pair;
  /** What the padding holds (default zeros); replicate repeats the edge pixel. */
  paddingMode?: 'zeros' | 'replicate';
  groups?: number;
  /** Which kernels run it (the gradients included): 'auto' (the fastest on this adapter), the
   * plain register-blocked ones, those that broadcast across subgroups (CPU adapters), or the plain
   * ones with the column kernels for 3 x 3, stride-1 convolutions (GPUs). */
  kernel?: ConvKernelChoice;
  /** What follows the convolution and bias: y = pixelShuffle(leakyRelu(conv + bias, negativeSlope)
   * * scale, r) + residual, each part where given. Applied in the kernel's store when nothing needs
   * a gradient, otherwise as the separate ops (which record theirs). */
  epilogue?: ConvEpilogue;
}

export interface ConvEpilogue {
  negativeSlope?: number;
  scale?: number;
  /** The output is pixelShuffle(leakyRelu(conv + bias) * scale, r) (+ residual): [N, O / r^2, Ho r, Wo r]. */
  pixelShuffle?: number;
  /** As the output: [N, O, Ho, Wo], or the shuffled shape. */
  residual?: Tensor;
}

export type ConvKernelChoice = 'auto' | 'plain' | 'subgroup' | 'columns';

/** Everything the kernels need to know about one convolution (padding here is always zeros). */
interface Geometry {
  n: number; c: number; h: number; w: number;
  o: number; ho: number; wo: number; groups: number;
  kh: number; kw: number; sh: number; sw: number;
  ph: number; pw: number;
  /** The weight is [N, O, C/groups, kh, kw], one per sample. */
  perSample: boolean;
  /** Subgroup size of the broadcasting kernels, null for the plain ones. */
  subgroupSize: number | null;
  /** A 3 x 3, stride-1 convolution on the column kernels: convForwardColumnKernel for the forward
   * and for the input gradient (padding up to 2), convWeightGradColumnKernel for the weight
   * gradient where the adapter has a fixed subgroup size. */
  columns: boolean;
}

// Register blocks. On CPU adapters with a fixed subgroup size the per-channel values are
// broadcast across the subgroup, and 16 x 4 blocks ran fastest for the forward and the input
// gradient, 32 x 4 for the weight gradient (kernels/conv.ts has the numbers); elsewhere at most
// 8 x 8, the classic SGEMM micro-tile (1.3-1.5x faster than 4 x 4 on llvmpipe, and within a GPU
// thread's registers). Fewer channels or columns when the layer has fewer, so that small layers
// do not compute mostly padding.
function kernelFor(make: (b: ConvBlock) => Kernel, g: Geometry, channels: number, columns: number, maxBroadcast = 16): { kernel: Kernel; block: ConvBlock } {
  const { subgroupSize } = g;
  const block: ConvBlock = subgroupSize
    ? { channels: Math.min(maxBroadcast, channels <= 8 ? 8 : channels <= 16 ? 16 : 32), columns: 4, subgroupSize }
    : { channels: channels <= 4 ? 4 : 8, columns: columns <= 4 ? 4 : 8, subgroupSize };
  return { kernel: make(block), block };
}

function subgroupSizeFor(op: string, choice: ConvKernelChoice): number | null {
  const size = fixedSubgroupSize();
  if (choice === 'subgroup' && size === null) throw new Error(`${op}: the subgroup kernels need an adapter with a fixed subgroup size`);
  if (choice === 'plain' || choice === 'columns') return null;
  return choice === 'subgroup' || engineDevice().info.isSoftware ? size : null;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function requireF32(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) if (t.dtype !== 'f32') throw new Error(`${op}: needs f32 tensors, got ${t}`);
}

/** Checks an input shape against a weight shape and options; returns the convolution's geometry. */
function geometry(op: string, xShape: readonly number[], weightShape: readonly number[], options: Conv2dOptions): Geometry {
  const { stride = 1, padding = 0, groups = 1, kernel = 'auto' } = options;
  if (xShape.length !== 4) throw new Error(`${op}: input must be [N, C, H, W], got ${shapeText(xShape)}`);
  const perSample = weightShape.length === 5;
  if (weightShape.length !== 4 && !perSample) {
    throw new Error(`${op}: weight must be [O, C/groups, kh, kw] or per sample [N, O, C/groups, kh, kw], got ${shapeText(weightShape)}`);
  }
  const [n, c, h, w] = xShape;
  const [o, cg, kh, kw] = weightShape.slice(perSample ? 1 : 0);
  if (perSample && weightShape[0] !== n) {
    throw new Error(`${op}: per-sample weight ${shapeText(weightShape)} is for ${weightShape[0]} samples, input ${shapeText(xShape)} has ${n}`);
  }
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0 || o % groups !== 0) {
    throw new Error(`${op}: groups ${groups} must divide both the ${c} input and the ${o} output channels`);
  }
  if (cg < 1) throw new Error(`${op}: weight ${shapeText(weightShape)} has no input channels`);
  if (cg * groups !== c) {
    throw new Error(`${op}: weight ${shapeText(weightShape)} takes ${cg} input channels per group (${cg * groups} in ${groups} groups), input ${shapeText(xShape)} has ${c}`);
  }
  const [sh, sw] = pair(stride);
  const [ph, pw] = pair(padding);
  if (![sh, sw].every((s) => Number.isInteger(s) && s >= 1)) throw new Error(`${op}: stride [${sh}, ${sw}] must be positive integers`);
  if (![ph, pw].every((p) => Number.isInteger(p) && p >= 0)) throw new Error(`${op}: padding [${ph}, ${pw}] must be non-negative integers`);
  if (kh < 1 || kw < 1 || kh > h + 2 * ph || kw > w + 2 * pw) {
    throw new Error(`${op}: kernel ${kh} x ${kw} does not fit the ${h} x ${w} input padded by [${ph}, ${pw}]`);
  }
  const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
  const subgroupSize = subgroupSizeFor(op, kernel);
  const columns = subgroupSize === null && kh === 3 && kw === 3 && sh === 1 && sw === 1
    && (kernel === 'columns' || (kernel === 'auto' && !engineDevice().info.isSoftware));
  return { n, c, h, w, o, ho, wo, groups, kh, kw, sh, sw, ph, pw, perSample, subgroupSize, columns };
}

function weightShapeOf(g: Geometry): number[] {
  const shared = [g.o, g.c / g.groups, g.kh, g.kw];
  return g.perSample ? [g.n, ...shared] : shared;
}

/** Dispatches `invocations` along x, `rows` workgroups along y and (sample, group) along z; what x
 * and y enumerate is each kernel's own (see kernels/conv.ts). */
function launch({ kernel, block }: { kernel: Kernel; block: ConvBlock }, buffers: GPUBuffer[], g: Geometry, blocks: number, invocations: number, rows: number): void {
  const groups: [number, number, number] = [Math.ceil(invocations / convWorkgroupSize(block)), rows, g.n * g.groups];
  const limit = engineDevice().info.limits.maxComputeWorkgroupsPerDimension;
  if (groups.some((v) => v > limit)) {
    throw new Error(`conv2d: ${shapeText([g.n, g.c, g.h, g.w])} -> ${g.o} channels needs workgroups [${groups.join(', ')}], over the device's ${limit} per dimension`);
  }
  const wBatch = g.perSample ? g.o * (g.c / g.groups) * g.kh * g.kw : 0;
  dispatch(kernel, buffers, convUniforms({ ...g, wBatch, blocks }), groups);
}

const blocksOf = (count: number, size: number) => Math.ceil(count / size);

/** What launch() needs of the column kernels: their workgroups are the plain kernels' (no subgroup
 * size). */
const COLUMN_LAUNCH: ConvBlock = { channels: 4, columns: 4, subgroupSize: null };

/** The column kernel's block on GPUs: 8 out-channels x 8 rows of one column per invocation. On an
 * H100 (Dawn Vulkan), GRAMHD256_FFHQ's forward took 104.6-108.9 ms with it against 127.7 ms with
 * the row-of-3 8 x 8 blocks, GRAMHD1024_FFHQ's 123.4 against 165.5 ms; 16 x 8 blocks (116.7 and
 * 150.1 ms) and out-channel blocks enumerated first along workgroup x (no change) did not help. */
const COLUMN_BLOCK = { channels: 8, rows: 8 };

/** The weight gradient's column kernel on GPUs: 8 out-channels x 2 in-channels x 9 taps per
 * workgroup. In GRAMHD256_FFHQ training on an H100 its 820 dispatches per D+G step took 682 ms,
 * against 1,872 ms for convWeightGradKernel's 8 x 8 blocks (a step 4.42 -> 3.22 s); blocks of
 * 16 x 1, 4 x 4 and 4 x 2 took 713, 744 and 858 ms. */
const WEIGHT_GRAD_COLUMN_BLOCK = { channels: 8, inChannels: 2 };

/** The whole-3x3 forward for subgroup adapters: 4 out-channels per lane (32 with llvmpipe's 8
 * lanes) by 8 columns, the best of 16 x 4 to 64 x 8 on the super-resolution shapes. Chosen where a
 * group has at least 3 x the subgroup size of out-channels, so that padding the last block wastes
 * little (the SR's 3-channel output conv keeps row-of-3 with 8-channel blocks). */
function square3Kernel(g: Geometry, bias: boolean, epilogue: ConvEpilogueSpec | undefined): { kernel: Kernel; block: ConvBlock } {
  const S = g.subgroupSize!;
  const block: ConvBlock = { channels: 4 * S, columns: 8, subgroupSize: S, bias, square3: true, epilogue };
  return { kernel: convForwardKernel(block), block };
}

/** The weights [(N,) O, C/groups, 3, 3] as the 3 x 3 forward kernel reads them:
 * [(N,) groups, out-channel blocks, C/groups, 9 taps, block], the out-channels padded with zeros
 * to whole blocks, so that one vec4 load gives a lane 4 out-channels of a tap. */
function packSquare3Weights(weight: Tensor, g: Geometry, block: number): Tensor {
  const og = g.o / g.groups;
  const cg = g.c / g.groups;
  const lead = (g.perSample ? g.n : 1) * g.groups;
  const blocks = Math.ceil(og / block);
  return noGrad(() => {
    const rows = reshape(weight, [lead, og, cg * 9]);
    const padded = blocks * block > og ? pad(rows, [0, blocks * block - og, 0, 0]) : rows;
    const packed = permute(reshape(padded, [lead, blocks, block, cg * 9]), [0, 1, 3, 2]);
    if (padded !== rows) padded.dispose();
    return packed;
  });
}

/** y = F(x, w) (+ bias [O] per out-channel, added by the kernel): [N, O, Ho, Wo]. With an
 * epilogue the kernel applies it too, and nothing is recorded (conv2d takes this path only when no
 * gradient is wanted). */
function convolve(x: Tensor, weight: Tensor, g: Geometry, bias: Tensor | null = null, epilogue?: ConvEpilogue): Tensor {
  const r = epilogue?.pixelShuffle;
  const y = Tensor.empty(outputShape(g, r));
  const spec = epilogue && { negativeSlope: epilogue.negativeSlope, scale: epilogue.scale, residual: epilogue.residual !== undefined, pixelShuffle: r };
  if (y.size > 0 && g.columns) {
    const block = { ...COLUMN_BLOCK, bias: bias !== null, epilogue: spec };
    const packed = packSquare3Weights(weight, g, block.channels);
    const rowBlocks = blocksOf(g.ho, block.rows);
    const buffers = [x.buffer, packed.buffer, y.buffer, ...(bias ? [bias.buffer] : []), ...(epilogue?.residual ? [epilogue.residual.buffer] : [])];
    launch({ kernel: convForwardColumnKernel(block), block: COLUMN_LAUNCH }, buffers, g, rowBlocks, g.wo * rowBlocks, blocksOf(g.o / g.groups, block.channels));
    packed.dispose();
  } else if (y.size > 0) {
    const square3 = g.subgroupSize !== null && g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1
      && g.o / g.groups >= 3 * g.subgroupSize;
    const rowOf3 = !square3 && g.kw === 3 && g.sw === 1;
    const chosen = square3 ? square3Kernel(g, bias !== null, spec) : kernelFor((b) => convForwardKernel({ ...b, bias: bias !== null, rowOf3, epilogue: spec }), g, g.o / g.groups, g.wo);
    const blocks = blocksOf(g.wo, chosen.block.columns);
    const packed = square3 ? packSquare3Weights(weight, g, chosen.block.channels) : null;
    const buffers = [x.buffer, (packed ?? weight).buffer, y.buffer, ...(bias ? [bias.buffer] : []), ...(epilogue?.residual ? [epilogue.residual.buffer] : [])];
    launch(chosen, buffers, g, blocks, g.ho * blocks, blocksOf(g.o / g.groups, chosen.block.channels));
    packed?.dispose();
  }
  if (epilogue) return y;
  return record(y, 'conv2d', bias ? [x, weight, bias] : [x, weight], (gy) => [
    x.requiresGrad ? transposeConvolve(gy, weight, g) : null,
    weight.requiresGrad ? weightGradient(x, gy, g) : null,
    ...(bias ? [bias.requiresGrad ? sum(gy, [0, 2, 3]) : null] : []),
  ]);
}

/** Whether T runs as a forward convolution: for 3 x 3 kernels at stride 1 with padding up to 2,
 * where the forward's kernel for the transposed shape is the column kernel (GPUs) or the whole-3x3
 * subgroup kernel (CPU adapters, at least 3 x the subgroup size of in-channels per group). On
 * lavapipe, input gradients of [4, 64, 64, 64] -> 64: 177-186 -> 147-149 ms; [4, 32, 64, 64] -> 64:
 * 79-92 -> 56-68 ms; [4, 160, 64, 64] -> 32: 168-214 -> 136-176 ms (interleaved runs). */
function transposesAsForward(g: Geometry): boolean {
  if (g.kh !== 3 || g.kw !== 3 || g.sh !== 1 || g.sw !== 1 || g.ph > 2 || g.pw > 2) return false;
  return g.columns || (g.subgroupSize !== null && g.c / g.groups >= 3 * g.subgroupSize);
}

/** gx = T(gy, w): [N, C, H, W]. */
function transposeConvolve(gy: Tensor, weight: Tensor, g: Geometry): Tensor {
  if (transposesAsForward(g)) {
    // at stride 1, T is the forward convolution of gy by the kernel with in- and out-channels
    // swapped and its taps reversed, padded by 2 - p
    const transposed: Geometry = { ...g, c: g.o, o: g.c, h: g.ho, w: g.wo, ho: g.h, wo: g.w, ph: 2 - g.ph, pw: 2 - g.pw };
    const gx = noGrad(() => {
      const lead = (g.perSample ? g.n : 1) * g.groups;
      const swapped = permute(reshape(weight, [lead, g.o / g.groups, g.c / g.groups, 9]), [0, 2, 1, 3]);
      const reversed = flip(swapped, 3);
      swapped.dispose();
      const w = reshape(reversed, weightShapeOf(transposed));
      const out = convolve(gy, w, transposed);
      reversed.dispose();
      return out;
    });
    return recordTranspose(gx, gy, weight, g);
  }
  const gx = Tensor.empty([g.n, g.c, g.h, g.w]);
  if (gx.size > 0) {
    const phaseColumns = Math.ceil(g.w / g.sw);
    const chosen = kernelFor(convInputGradKernel, g, g.c / g.groups, phaseColumns);
    const blocks = blocksOf(phaseColumns, chosen.block.columns);
    const cBlocks = blocksOf(g.c / g.groups, chosen.block.channels);
    const buffers = [gy.buffer, weight.buffer, gx.buffer];
    if (chosen.block.subgroupSize) launch(chosen, buffers, g, blocks, blocks, g.h * g.sw * cBlocks);
    else launch(chosen, buffers, g, blocks, g.h * g.sw * blocks, cBlocks);
  }
  return recordTranspose(gx, gy, weight, g);
}

function recordTranspose(gx: Tensor, gy: Tensor, weight: Tensor, g: Geometry): Tensor {
  return record(gx, 'conv2dTransposeInput', [gy, weight], (ggx) => [
    gy.requiresGrad ? convolve(ggx, weight, g) : null,
    weight.requiresGrad ? weightGradient(ggx, gy, g) : null,
  ]);
}

/** gw = G(x, gy): the weight's shape; a shared weight sums the per-sample kernel's result over
 * the batch, which keeps N times more invocations busy than a kernel that loops over samples. */
function weightGradient(x: Tensor, gy: Tensor, g: Geometry): Tensor {
  const perSampleShape = [g.n, ...weightShapeOf({ ...g, perSample: false })];
  const raw = Tensor.empty(perSampleShape);
  const subgroupSize = fixedSubgroupSize();
  if (raw.size > 0 && g.columns && subgroupSize !== null && convWorkgroupSize(COLUMN_LAUNCH) % subgroupSize === 0) {
    const block = { ...WEIGHT_GRAD_COLUMN_BLOCK, subgroupSize };
    const cBlocks = blocksOf(g.c / g.groups, block.inChannels);
    const wgs = blocksOf(g.o / g.groups, block.channels) * cBlocks;
    launch({ kernel: convWeightGradColumnKernel(block), block: COLUMN_LAUNCH }, [x.buffer, gy.buffer, raw.buffer], g, cBlocks, wgs * convWorkgroupSize(COLUMN_LAUNCH), 1);
  } else if (raw.size > 0) {
    const chosen = kernelFor(convWeightGradKernel, g, g.o / g.groups, g.c / g.groups, 32);
    const blocks = blocksOf(g.c / g.groups, chosen.block.columns);
    const oBlocks = blocksOf(g.o / g.groups, chosen.block.channels);
    const taps = g.kh * g.kw;
    const buffers = [x.buffer, gy.buffer, raw.buffer];
    if (chosen.block.subgroupSize) launch(chosen, buffers, g, blocks, blocks, taps * oBlocks);
    else launch(chosen, buffers, g, blocks, blocks * oBlocks, taps);
  }
  let gw = raw;
  if (!g.perSample) {
    gw = g.n === 1 ? raw.view(perSampleShape.slice(1)) : noGrad(() => sum(raw, 0));
    raw.dispose();
  }
  return record(gw, 'conv2dWeightGrad', [x, gy], (ggw) => [
    x.requiresGrad ? transposeConvolve(gy, ggw, g) : null,
    gy.requiresGrad ? convolve(x, ggw, g) : null,
  ]);
}

function checkBias(bias: Tensor, o: number, op: string): void {
  if (bias.rank !== 1 || bias.shape[0] !== o) throw new Error(`${op}: bias must be [${o}], got ${shapeText(bias.shape)}`);
  requireF32(op, bias);
}

function withBias(y: Tensor, bias: Tensor | null | undefined, op: string): Tensor {
  if (!bias) return y;
  const o = y.shape[1];
  checkBias(bias, o, op);
  return add(y, reshape(bias, [1, o, 1, 1]));
}

/** x [N, C, H, W] convolved with weight [O, C/groups, kh, kw] (or per sample
 * [N, O, C/groups, kh, kw]) -> [N, O, Ho, Wo], plus bias [O]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  requireF32('conv2d', x, weight);
  if (options.paddingMode === 'replicate') {
    const [ph, pw] = pair(options.padding ?? 0);
    if (x.rank !== 4) throw new Error(`conv2d: input must be [N, C, H, W], got ${shapeText(x.shape)}`);
    const padded = ph || pw ? pad(x, [ph, ph, pw, pw], 'replicate') : x;
    return conv2d(padded, weight, bias, { ...options, padding: 0, paddingMode: 'zeros' });
  }
  const g = geometry('conv2d', x.shape, weight.shape, options);
  if (bias) checkBias(bias, g.o, 'conv2d');
  const { epilogue } = options;
  if (!epilogue) return convolve(x, weight, g, bias ?? null);
  const { negativeSlope, scale, residual, pixelShuffle: r } = epilogue;
  if (r !== undefined && (!Number.isInteger(r) || r < 1 || g.o % (r * r) !== 0)) {
    throw new Error(`conv2d: pixelShuffle ${r} needs a positive integer whose square divides the ${g.o} output channels`);
  }
  const outShape = outputShape(g, r);
  if (residual && !sameShape(residual.shape, outShape)) {
    throw new Error(`conv2d: residual ${shapeText(residual.shape)} must be the output's shape ${shapeText(outShape)}`);
  }
  if (residual) requireF32('conv2d', residual);
  if (isGradEnabled() && [x, weight, bias, residual].some((t) => t?.requiresGrad)) {
    let y = convolve(x, weight, g, bias ?? null);
    if (negativeSlope !== undefined) y = leakyRelu(y, negativeSlope);
    if (scale !== undefined) y = mul(y, scale);
    if (r) y = pixelShuffle(y, r);
    return residual ? add(y, residual) : y;
  }
  return convolve(x, weight, g, bias ?? null, { negativeSlope, scale, residual, pixelShuffle: r });
}

/** [N, O, Ho, Wo], or [N, O / r^2, Ho r, Wo r] pixel-shuffled by r. */
const outputShape = (g: Geometry, r?: number) => (r ? [g.n, g.o / (r * r), g.ho * r, g.wo * r] : [g.n, g.o, g.ho, g.wo]);

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The gradient of conv2d (zeros padding) with respect to its input, as torch.nn.grad.conv2d_input:
 * a transposed convolution of gy [N, O, Ho, Wo] back to `inputShape` [N, C, H, W] (which stride > 1
 * leaves ambiguous, hence given). */
export function conv2dTransposeInput(gy: Tensor, weight: Tensor, inputShape: readonly number[], options: Omit<Conv2dOptions, 'paddingMode'> = {}): Tensor {
  requireF32('conv2dTransposeInput', gy, weight);
  const g = geometry('conv2dTransposeInput', inputShape, weight.shape, options);
  checkOutput('conv2dTransposeInput', gy, g);
  return transposeConvolve(gy, weight, g);
}

/** The gradient of conv2d (zeros padding) with respect to its weight, as
 * torch.nn.grad.conv2d_weight: `weightShape` [O, C/groups, kh, kw] sums over the batch, a
 * per-sample [N, O, C/groups, kh, kw] does not. */
export function conv2dWeightGrad(x: Tensor, gy: Tensor, weightShape: readonly number[], options: Omit<Conv2dOptions, 'paddingMode'> = {}): Tensor {
  requireF32('conv2dWeightGrad', x, gy);
  const g = geometry('conv2dWeightGrad', x.shape, weightShape, options);
  checkOutput('conv2dWeightGrad', gy, g);
  return weightGradient(x, gy, g);
}

function checkOutput(op: string, gy: Tensor, g: Geometry): void {
  const expected = [g.n, g.o, g.ho, g.wo];
  if (gy.rank !== 4 || gy.shape.some((s, d) => s !== expected[d])) {
    throw new Error(`${op}: output gradient ${shapeText(gy.shape)} is not the convolution's output shape ${shapeText(expected)}`);
  }
}

/** conv2d composed of pad, strided slices (one per kernel tap) and a matrix product, like im2col:
 * slow, but made only of other ops, so tests can hold the kernels (and their gradients of any
 * order) equal to it. */
export function conv2dReference(x: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  const g = geometry('conv2dReference', x.shape, weight.shape, options);
  const { groups } = g;
  const padded = g.ph || g.pw ? pad(x, [g.ph, g.ph, g.pw, g.pw], options.paddingMode ?? 'zeros') : x;
  const taps: Tensor[] = [];
  for (let a = 0; a < g.kh; a++) {
    for (let b = 0; b < g.kw; b++) {
      taps.push(slice(padded, { start: [0, 0, a, b], size: [g.n, g.c, g.ho, g.wo], step: [1, 1, g.sh, g.sw] }));
    }
  }
  const k = (g.c / groups) * g.kh * g.kw;
  const columns = reshape(stack(taps, 2), [g.n, groups, k, g.ho * g.wo]);
  const rows = reshape(weight, g.perSample ? [g.n, groups, g.o / groups, k] : [groups, g.o / groups, k]);
  return withBias(reshape(matmul(rows, columns), [g.n, g.o, g.ho, g.wo]), bias, 'conv2dReference');
}

export interface ModulatedConv2dOptions {
  /** Normalise each sample's output channels to unit weight norm (StyleGAN2); default true. */
  demodulate?: boolean;
  padding?: Pair;
  bias?: Tensor | null;
  epilogue?: ConvEpilogue;
}

/** StyleGAN2's modulated convolution: x [N, C, H, W], weight [O, C, k, k], style [N, C].
 * w' = weight * style (per sample, over in-channels); with demodulation
 * w'' = w' / sqrt(sum over (in, kh, kw) of w'^2 + 1e-8) per output channel; then each sample is
 * convolved with its own weight, and the bias added. */
export function modulatedConv2d(x: Tensor, weight: Tensor, style: Tensor, options: ModulatedConv2dOptions = {}): Tensor {
  const { demodulate = true, padding = 0, bias = null, epilogue } = options;
  if (weight.rank !== 4) throw new Error(`modulatedConv2d: weight must be [O, C, kh, kw], got ${shapeText(weight.shape)}`);
  const [o, c, kh, kw] = weight.shape;
  if (x.rank !== 4 || x.shape[1] !== c) throw new Error(`modulatedConv2d: input ${shapeText(x.shape)} must be [N, ${c}, H, W] for weight ${shapeText(weight.shape)}`);
  const n = x.shape[0];
  if (style.rank !== 2 || style.shape[0] !== n || style.shape[1] !== c) {
    throw new Error(`modulatedConv2d: style must be [${n}, ${c}] (batch, in-channels), got ${shapeText(style.shape)}`);
  }
  let w = mul(reshape(weight, [1, o, c, kh, kw]), reshape(style, [n, 1, c, 1, 1]));
  if (demodulate) w = mul(w, rsqrt(add(sum(square(w), [2, 3, 4], true), 1e-8)));
  return conv2d(x, w, bias, { padding, epilogue });
}
