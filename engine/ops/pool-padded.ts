// Pooling with padding, as InceptionV3 (TensorFlow's graph, hence torch-fidelity) uses it:
//   maxPool2d             torch's max_pool2d: padded taps never win (implicit -inf padding). One
//                         WGSL kernel (kernels/pool-padded.ts); forward only, its gradient throws.
//   avgPool2dPadded       torch's avg_pool2d with zero padding, and count_include_pad=false (the
//                         TensorFlow behaviour: the mean over the taps inside the image). Composed of
//                         pad and the unpadded avgPool2d, so its gradients of any order come free.
import { maxPoolKernel, maxPoolUniforms, POOL_PADDED_WG } from '../../kernels/pool-padded.ts';
import { record } from '../autograd.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { div, ones } from './elementwise.ts';
import { pad } from './pad.ts';
import { avgPool2d } from './pool.ts';

type Pair = number | readonly [number, number];

export interface PaddedPoolOptions {
  /** Default: the kernel size. */
  stride?: Pair;
  /** Pixels added on each side of the height and the width (default 0). */
  padding?: Pair;
}

interface PaddedWindow {
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  h: number; w: number; ho: number; wo: number;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

function paddedWindow(op: string, shape: readonly number[], kernel: Pair, options: PaddedPoolOptions): PaddedWindow {
  if (shape.length < 2) throw new Error(`${op}: needs a tensor of rank >= 2, got [${shape.join(', ')}]`);
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(options.stride ?? kernel);
  const [ph, pw] = pair(options.padding ?? 0);
  if (![kh, kw, sh, sw].every((v) => Number.isInteger(v) && v >= 1) || ![ph, pw].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new Error(`${op}: kernel [${kh}, ${kw}] and stride [${sh}, ${sw}] must be positive integers, padding [${ph}, ${pw}] non-negative`);
  }
  // torch requires the padding to be at most half the kernel, so every window holds a real tap
  if (2 * ph > kh || 2 * pw > kw) throw new Error(`${op}: padding [${ph}, ${pw}] must be at most half the kernel [${kh}, ${kw}]`);
  const [h, w] = shape.slice(-2);
  if (kh > h + 2 * ph || kw > w + 2 * pw) throw new Error(`${op}: kernel ${kh} x ${kw} is larger than the ${h} x ${w} input padded by [${ph}, ${pw}]`);
  return { kh, kw, sh, sw, ph, pw, h, w, ho: Math.floor((h + 2 * ph - kh) / sh) + 1, wo: Math.floor((w + 2 * pw - kw) / sw) + 1 };
}

/** x [..., H, W] -> [..., floor((H + 2 ph - kh) / sh) + 1, likewise for W], window maxima
 * (torch.nn.functional.max_pool2d with ceil_mode off, dilation 1). */
export function maxPool2d(x: Tensor, kernel: Pair, options: PaddedPoolOptions = {}): Tensor {
  if (x.dtype !== 'f32') throw new Error(`maxPool2d: needs an f32 tensor, got ${x}`);
  const p = paddedWindow('maxPool2d', x.shape, kernel, options);
  const y = Tensor.empty([...x.shape.slice(0, -2), p.ho, p.wo]);
  if (y.size > 0) {
    dispatch(maxPoolKernel, [x.buffer, y.buffer], maxPoolUniforms(y.size, p.h, p.w, p.ho, p.wo, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw), Math.ceil(y.size / POOL_PADDED_WG));
  }
  return record(y, 'maxPool2d', [x], () => {
    throw new Error('maxPool2d: has no gradient rule (it serves evaluation only)');
  });
}

/** x [..., H, W] average-pooled with zero padding: count_include_pad true divides every window by
 * kh * kw (torch's default), false by the number of taps inside the image (TensorFlow). */
export function avgPool2dPadded(x: Tensor, kernel: Pair, options: PaddedPoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  const p = paddedWindow('avgPool2dPadded', x.shape, kernel, options);
  const stride: [number, number] = [p.sh, p.sw];
  const pads = [p.ph, p.ph, p.pw, p.pw] as const;
  const padded = p.ph || p.pw ? pad(x, pads) : x;
  const means = avgPool2d(padded, [p.kh, p.kw], stride);
  if (options.countIncludePad ?? true) return means;
  if (!p.ph && !p.pw) return means;
  // the fraction of each window that lies inside the image, from a pooled plane of ones
  const inside = avgPool2d(pad(ones([p.h, p.w]), pads), [p.kh, p.kw], stride);
  return div(means, inside);
}
