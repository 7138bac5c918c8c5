// torch-fidelity's InceptionV3 feature extractor ("inception-v3-compat"), the network FID and KID
// are defined on: TensorFlow 1.x's bilinear resize to 299 x 299, (x - 128) / 128, the conv stem,
// the InceptionA-E blocks with the TensorFlow graph's quirks (average pools that leave the padding
// out of the mean, a max pool in the last block), global average pooling and the 1008-way fc.
// Every BatchNorm (eps 0.001) is folded into its convolution at load time, in float64:
//   w' = w * gamma / sqrt(var + eps),  b' = beta - mean * gamma / sqrt(var + eps).
import { ops, Tensor, tidy } from '../engine/index.ts';
import { parseTorchPt } from '../engine/io/torch-pt.ts';
import { toFloat32 } from '../engine/io/host-tensor.ts';

export const INCEPTION_INPUT_SIZE = 299;
const BN_EPS = 0.001;

/** The feature layers, by torch-fidelity's names. */
export const INCEPTION_FEATURES = ['64', '192', '768', '2048', 'logits_unbiased', 'logits'] as const;
export type InceptionFeature = typeof INCEPTION_FEATURES[number];
/** Every feature layer for a batch: [N, 64], [N, 192], [N, 768], [N, 2048], [N, 1008], [N, 1008]. */
export type InceptionFeatures = Record<InceptionFeature, Tensor>;

/** A state-dict value on the host (float64 or float32 values, row-major). */
export interface InceptionStateValue {
  shape: readonly number[];
  data: ArrayLike<number>;
}
export type InceptionState = ReadonlyMap<string, InceptionStateValue>;

type Pair = readonly [number, number];

/** One BasicConv2d (conv without bias, BatchNorm, ReLU) by its state-dict prefix. */
interface ConvSpec {
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: Pair;
  stride: number;
  padding: Pair;
}

function conv(name: string, inChannels: number, outChannels: number, kernel: number | Pair, options: { stride?: number; padding?: number | Pair } = {}): ConvSpec {
  const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);
  return { name, inChannels, outChannels, kernel: pair(kernel), stride: options.stride ?? 1, padding: pair(options.padding ?? 0) };
}

// The blocks' convolutions in torch's registration (= state_dict) order.
const blockA = (p: string, c: number, pool: number) => [
  conv(`${p}.branch1x1`, c, 64, 1),
  conv(`${p}.branch5x5_1`, c, 48, 1), conv(`${p}.branch5x5_2`, 48, 64, 5, { padding: 2 }),
  conv(`${p}.branch3x3dbl_1`, c, 64, 1), conv(`${p}.branch3x3dbl_2`, 64, 96, 3, { padding: 1 }),
  conv(`${p}.branch3x3dbl_3`, 96, 96, 3, { padding: 1 }),
  conv(`${p}.branch_pool`, c, pool, 1),
];
const blockB = (p: string, c: number) => [
  conv(`${p}.branch3x3`, c, 384, 3, { stride: 2 }),
  conv(`${p}.branch3x3dbl_1`, c, 64, 1), conv(`${p}.branch3x3dbl_2`, 64, 96, 3, { padding: 1 }),
  conv(`${p}.branch3x3dbl_3`, 96, 96, 3, { stride: 2 }),
];
const row7 = { padding: [0, 3] as Pair };
const col7 = { padding: [3, 0] as Pair };
const blockC = (p: string, c: number, c7: number) => [
  conv(`${p}.branch1x1`, c, 192, 1),
  conv(`${p}.branch7x7_1`, c, c7, 1), conv(`${p}.branch7x7_2`, c7, c7, [1, 7], row7), conv(`${p}.branch7x7_3`, c7, 192, [7, 1], col7),
  conv(`${p}.branch7x7dbl_1`, c, c7, 1), conv(`${p}.branch7x7dbl_2`, c7, c7, [7, 1], col7),
  conv(`${p}.branch7x7dbl_3`, c7, c7, [1, 7], row7), conv(`${p}.branch7x7dbl_4`, c7, c7, [7, 1], col7),
  conv(`${p}.branch7x7dbl_5`, c7, 192, [1, 7], row7),
  conv(`${p}.branch_pool`, c, 192, 1),
];
const blockD = (p: string, c: number) => [
  conv(`${p}.branch3x3_1`, c, 192, 1), conv(`${p}.branch3x3_2`, 192, 320, 3, { stride: 2 }),
  conv(`${p}.branch7x7x3_1`, c, 192, 1), conv(`${p}.branch7x7x3_2`, 192, 192, [1, 7], row7),
  conv(`${p}.branch7x7x3_3`, 192, 192, [7, 1], col7), conv(`${p}.branch7x7x3_4`, 192, 192, 3, { stride: 2 }),
];
const blockE = (p: string, c: number) => [
  conv(`${p}.branch1x1`, c, 320, 1),
  conv(`${p}.branch3x3_1`, c, 384, 1), conv(`${p}.branch3x3_2a`, 384, 384, [1, 3], { padding: [0, 1] }),
  conv(`${p}.branch3x3_2b`, 384, 384, [3, 1], { padding: [1, 0] }),
  conv(`${p}.branch3x3dbl_1`, c, 448, 1), conv(`${p}.branch3x3dbl_2`, 448, 384, 3, { padding: 1 }),
  conv(`${p}.branch3x3dbl_3a`, 384, 384, [1, 3], { padding: [0, 1] }),
  conv(`${p}.branch3x3dbl_3b`, 384, 384, [3, 1], { padding: [1, 0] }),
  conv(`${p}.branch_pool`, c, 192, 1),
];

const CONVS: readonly ConvSpec[] = [
  conv('Conv2d_1a_3x3', 3, 32, 3, { stride: 2 }),
  conv('Conv2d_2a_3x3', 32, 32, 3),
  conv('Conv2d_2b_3x3', 32, 64, 3, { padding: 1 }),
  conv('Conv2d_3b_1x1', 64, 80, 1),
  conv('Conv2d_4a_3x3', 80, 192, 3),
  ...blockA('Mixed_5b', 192, 32), ...blockA('Mixed_5c', 256, 64), ...blockA('Mixed_5d', 288, 64),
  ...blockB('Mixed_6a', 288),
  ...blockC('Mixed_6b', 768, 128), ...blockC('Mixed_6c', 768, 160), ...blockC('Mixed_6d', 768, 160), ...blockC('Mixed_6e', 768, 192),
  ...blockD('Mixed_7a', 768),
  ...blockE('Mixed_7b', 1280), ...blockE('Mixed_7c', 2048),
];
const FC_IN = 2048;
const FC_OUT = 1008;

/** The extractor's state_dict keys and shapes, in torch's order (as the weights file stores them). */
export function inceptionStateShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const c of CONVS) {
    shapes.set(`${c.name}.conv.weight`, [c.outChannels, c.inChannels, ...c.kernel]);
    for (const k of ['weight', 'bias', 'running_mean', 'running_var']) shapes.set(`${c.name}.bn.${k}`, [c.outChannels]);
    shapes.set(`${c.name}.bn.num_batches_tracked`, []);
  }
  shapes.set('fc.weight', [FC_OUT, FC_IN]);
  shapes.set('fc.bias', [FC_OUT]);
  return shapes;
}

/**
 * TensorFlow 1.x's bilinear resize (align_corners false) along one axis, as torch-fidelity's
 * interpolate_bilinear_2d_like_tensorflow1x computes it: output i samples the input at
 * i * float32(in / out) (no half-pixel offset), between floor and floor + 1 clamped to the last
 * pixel. Returns the [out, in] row-major matrix of the weights (each row sums to 1).
 */
export function tf1ResizeMatrix(inSize: number, outSize: number): Float64Array {
  const scale = Math.fround(inSize / outSize);
  const m = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const src = i * scale;
    const lo = Math.floor(src);
    const hi = Math.min(lo + 1, inSize - 1);
    const frac = src - lo;
    m[i * inSize + lo] += 1 - frac;
    m[i * inSize + hi] += frac;
  }
  return m;
}

/** x [N, C, H, W] -> [N, C, size, size] by TensorFlow 1.x's bilinear resize: the separable map as
 * two matrix products (rows = M_h x M_w^T), so it is differentiable and needs no kernel of its own. */
export function resizeBilinearTf1(x: Tensor, size: readonly [number, number]): Tensor {
  if (x.rank !== 4) throw new Error(`resizeBilinearTf1: expects [N, C, H, W], got [${x.shape.join(', ')}]`);
  const [n, c, h, w] = x.shape;
  const [ho, wo] = size;
  return tidy(() => {
    const mw = Tensor.fromData(Float32Array.from(tf1ResizeMatrix(w, wo)), [1, wo, w]);
    const mh = Tensor.fromData(Float32Array.from(tf1ResizeMatrix(h, ho)), [1, ho, h]);
    const cols = ops.matmul(ops.reshape(x, [1, n * c * h, w]), mw, { transB: true });
    return ops.reshape(ops.matmul(mh, ops.reshape(cols, [n * c, h, wo])), [n, c, ho, wo]);
  });
}

/** A BasicConv2d with its BatchNorm folded in: relu(conv(x, w') + b'). */
class FoldedConv {
  constructor(readonly spec: ConvSpec, readonly weight: Tensor, readonly bias: Tensor) {}

  forward(x: Tensor): Tensor {
    const { stride, padding } = this.spec;
    return ops.relu(ops.conv2d(x, this.weight, this.bias, { stride, padding }));
  }
}

function stateValue(state: InceptionState, key: string, shape: readonly number[]): ArrayLike<number> {
  const v = state.get(key);
  if (!v) throw new Error(`inception weights: missing '${key}'`);
  if (v.shape.length !== shape.length || v.shape.some((s, d) => s !== shape[d])) {
    throw new Error(`inception weights: '${key}' has shape [${v.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return v.data;
}

/** The extractor with its weights on the GPU. */
export class InceptionV3 {
  private constructor(private readonly convs: Map<string, FoldedConv>, private readonly fcWeight: Tensor, private readonly fcBias: Tensor) {}

  /** Builds the extractor from a state dict with torch-fidelity's keys (every key is checked; extra
   * keys are an error), folding each BatchNorm into its convolution in float64. */
  static fromStateDict(state: InceptionState): InceptionV3 {
    const expected = inceptionStateShapes();
    const unexpected = [...state.keys()].filter((k) => !expected.has(k));
    if (unexpected.length) throw new Error(`inception weights: unexpected keys ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}`);
    const convs = new Map<string, FoldedConv>();
    for (const spec of CONVS) {
      const wShape = expected.get(`${spec.name}.conv.weight`)!;
      const w = stateValue(state, `${spec.name}.conv.weight`, wShape);
      const bn = (k: string) => stateValue(state, `${spec.name}.bn.${k}`, [spec.outChannels]);
      const [gamma, beta, mean, variance] = [bn('weight'), bn('bias'), bn('running_mean'), bn('running_var')];
      const perOut = w.length / spec.outChannels;
      const folded = new Float32Array(w.length);
      const bias = new Float32Array(spec.outChannels);
      for (let o = 0; o < spec.outChannels; o++) {
        const s = gamma[o] / Math.sqrt(variance[o] + BN_EPS);
        for (let j = 0; j < perOut; j++) folded[o * perOut + j] = w[o * perOut + j] * s;
        bias[o] = beta[o] - mean[o] * s;
      }
      convs.set(spec.name, new FoldedConv(spec, Tensor.fromData(folded, wShape).keep(), Tensor.fromData(bias, [spec.outChannels]).keep()));
    }
    const fcWeight = Tensor.fromData(Float32Array.from(stateValue(state, 'fc.weight', [FC_OUT, FC_IN])), [FC_OUT, FC_IN]).keep();
    const fcBias = Tensor.fromData(Float32Array.from(stateValue(state, 'fc.bias', [FC_OUT])), [FC_OUT]).keep();
    return new InceptionV3(convs, fcWeight, fcBias);
  }

  /** From torch-fidelity's weights file (weights-inception-2015-12-05-6726825d.pth). */
  static fromTorchPt(bytes: Uint8Array, fileName: string): InceptionV3 {
    const state = new Map<string, InceptionStateValue>();
    for (const [key, t] of parseTorchPt(bytes, fileName)) state.set(key, { shape: t.shape, data: toFloat32(t, `${fileName}: ${key}`) });
    return InceptionV3.fromStateDict(state);
  }

  private c(name: string, x: Tensor): Tensor {
    return this.convs.get(name)!.forward(x);
  }

  /** Chains the named convolutions of one branch. */
  private chain(x: Tensor, ...names: string[]): Tensor {
    return names.reduce((y, name) => this.c(name, y), x);
  }

  private blockA(p: string, x: Tensor): Tensor {
    return tidy(() => ops.concat([
      this.c(`${p}.branch1x1`, x),
      this.chain(x, `${p}.branch5x5_1`, `${p}.branch5x5_2`),
      this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`, `${p}.branch3x3dbl_3`),
      // TensorFlow's average pool leaves the padding out of the mean
      this.c(`${p}.branch_pool`, ops.avgPool2dPadded(x, 3, { stride: 1, padding: 1, countIncludePad: false })),
    ], 1));
  }

  private blockB(p: string, x: Tensor): Tensor {
    return tidy(() => ops.concat([
      this.c(`${p}.branch3x3`, x),
      this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`, `${p}.branch3x3dbl_3`),
      ops.maxPool2d(x, 3, { stride: 2 }),
    ], 1));
  }

  private blockC(p: string, x: Tensor): Tensor {
    return tidy(() => ops.concat([
      this.c(`${p}.branch1x1`, x),
      this.chain(x, `${p}.branch7x7_1`, `${p}.branch7x7_2`, `${p}.branch7x7_3`),
      this.chain(x, ...[1, 2, 3, 4, 5].map((i) => `${p}.branch7x7dbl_${i}`)),
      this.c(`${p}.branch_pool`, ops.avgPool2dPadded(x, 3, { stride: 1, padding: 1, countIncludePad: false })),
    ], 1));
  }

  private blockD(p: string, x: Tensor): Tensor {
    return tidy(() => ops.concat([
      this.chain(x, `${p}.branch3x3_1`, `${p}.branch3x3_2`),
      this.chain(x, ...[1, 2, 3, 4].map((i) => `${p}.branch7x7x3_${i}`)),
      ops.maxPool2d(x, 3, { stride: 2 }),
    ], 1));
  }

  /** InceptionE; the last one (Mixed_7c) max-pools its pool branch, as the TensorFlow graph does. */
  private blockE(p: string, x: Tensor, maxPoolBranch: boolean): Tensor {
    return tidy(() => {
      const b3 = this.c(`${p}.branch3x3_1`, x);
      const d3 = this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`);
      const pooled = maxPoolBranch
        ? ops.maxPool2d(x, 3, { stride: 1, padding: 1 })
        : ops.avgPool2dPadded(x, 3, { stride: 1, padding: 1, countIncludePad: false });
      return ops.concat([
        this.c(`${p}.branch1x1`, x),
        this.c(`${p}.branch3x3_2a`, b3), this.c(`${p}.branch3x3_2b`, b3),
        this.c(`${p}.branch3x3dbl_3a`, d3), this.c(`${p}.branch3x3dbl_3b`, d3),
        this.c(`${p}.branch_pool`, pooled),
      ], 1);
    });
  }

  /** images [N, 3, H, W] holding uint8 values 0..255 (as f32) -> every feature layer. */
  forward(images: Tensor): InceptionFeatures {
    if (images.rank !== 4 || images.shape[1] !== 3) throw new Error(`InceptionV3: expects images [N, 3, H, W], got [${images.shape.join(', ')}]`);
    return tidy(() => {
      const step = (fn: (x: Tensor) => Tensor) => (x: Tensor) => tidy(() => fn(x));
      let x = step((im) => ops.div(ops.sub(resizeBilinearTf1(im, [INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE]), 128), 128))(images);
      x = step((y) => ops.maxPool2d(this.chain(y, 'Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'), 3, { stride: 2 }))(x);
      const f64 = ops.mean(x, [2, 3]);
      x = step((y) => ops.maxPool2d(this.chain(y, 'Conv2d_3b_1x1', 'Conv2d_4a_3x3'), 3, { stride: 2 }))(x);
      const f192 = ops.mean(x, [2, 3]);
      x = this.blockA('Mixed_5b', x);
      x = this.blockA('Mixed_5c', x);
      x = this.blockA('Mixed_5d', x);
      x = this.blockB('Mixed_6a', x);
      for (const p of ['Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e']) x = this.blockC(p, x);
      const f768 = ops.mean(x, [2, 3]);
      x = this.blockD('Mixed_7a', x);
      x = this.blockE('Mixed_7b', x, false);
      x = this.blockE('Mixed_7c', x, true);
      const f2048 = ops.mean(x, [2, 3]);
      const unbiased = ops.matmul(f2048, this.fcWeight, { transB: true });
      return { '64': f64, '192': f192, '768': f768, '2048': f2048, logits_unbiased: unbiased, logits: ops.add(unbiased, this.fcBias) };
    });
  }

  dispose(): void {
    for (const c of this.convs.values()) {
      c.weight.dispose();
      c.bias.dispose();
    }
    this.fcWeight.dispose();
    this.fcBias.dispose();
  }
}
