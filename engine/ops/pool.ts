// Average pooling of the last two dimensions without padding (torch's avg_pool2d with its
// defaults: windows that do not fit are dropped). The gradient is the adjoint kernel, which spreads
// each output's gradient evenly over its window, and the adjoint's gradient is the pooling again.
import { avgPoolAdjointKernel, avgPoolKernel, POOL_WG, poolUniforms } from '../../kernels/pool.ts';
import { record } from '../autograd.ts';
import { dispatch, type Kernel } from '../runtime.ts';
import { Tensor } from '../tensor.ts';

type Pair = number | readonly [number, number];

interface Window {
  kh: number; kw: number; sh: number; sw: number;
  h: number; w: number; ho: number; wo: number;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

function windowOf(op: string, shape: readonly number[], kernel: Pair, stride: Pair): Window {
  if (shape.length < 2) throw new Error(`${op}: needs a tensor of rank >= 2, got [${shape.join(', ')}]`);
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(stride);
  if (![kh, kw, sh, sw].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`${op}: kernel [${kh}, ${kw}] and stride [${sh}, ${sw}] must be positive integers`);
  }
  const [h, w] = shape.slice(-2);
  if (kh > h || kw > w) throw new Error(`${op}: kernel ${kh} x ${kw} is larger than the ${h} x ${w} input`);
  return { kh, kw, sh, sw, h, w, ho: Math.floor((h - kh) / sh) + 1, wo: Math.floor((w - kw) / sw) + 1 };
}

function run(kernel: Kernel, src: Tensor, outShape: readonly number[], p: Window): Tensor {
  const out = Tensor.empty(outShape);
  if (out.size > 0) {
    const uniforms = new Uint8Array(poolUniforms(out.size, p.h, p.w, p.ho, p.wo, p.kh, p.kw, p.sh, p.sw));
    dispatch(kernel, [src.buffer, out.buffer], uniforms, Math.ceil(out.size / POOL_WG));
  }
  return out;
}

/** x [..., H, W] -> [..., floor((H - kh) / sh) + 1, floor((W - kw) / sw) + 1], window means. */
export function avgPool2d(x: Tensor, kernel: Pair, stride: Pair = kernel): Tensor {
  const p = windowOf('avgPool2d', x.shape, kernel, stride);
  const y = run(avgPoolKernel, x, [...x.shape.slice(0, -2), p.ho, p.wo], p);
  return record(y, 'avgPool2d', [x], (g) => [avgPool2dAdjoint(g, x.shape, kernel, stride)]);
}

/** The adjoint of avgPool2d: g [..., Ho, Wo] spread back onto `shape` [..., H, W]. */
export function avgPool2dAdjoint(g: Tensor, shape: readonly number[], kernel: Pair, stride: Pair = kernel): Tensor {
  const p = windowOf('avgPool2dAdjoint', shape, kernel, stride);
  const expected = [...shape.slice(0, -2), p.ho, p.wo];
  if (g.rank !== expected.length || g.shape.some((s, d) => s !== expected[d])) {
    throw new Error(`avgPool2dAdjoint: gradient [${g.shape.join(', ')}] is not the pooled shape [${expected.join(', ')}]`);
  }
  const gx = run(avgPoolAdjointKernel, g, shape, p);
  return record(gx, 'avgPool2dAdjoint', [g], (gg) => [avgPool2d(gg, kernel, stride)]);
}
