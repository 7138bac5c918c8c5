// Padding of the last two dimensions by zeros, the edge value (replicate) or the mirror image
// without the edge (reflect), as torch.nn.functional.pad. The gradient is the adjoint kernel (which
// sums every padded pixel back onto the pixel it came from), and the adjoint's gradient is pad
// again, so gradients of any order work.
import { PAD_WG, padAdjointKernel, padKernel, padUniforms, type PadMode } from '../../kernels/pad.ts';
import { record } from '../autograd.ts';
import { dispatch, type Kernel } from '../runtime.ts';
import { Tensor } from '../tensor.ts';

export type { PadMode };

/** Pad widths [top, bottom, left, right] of the last two dimensions. */
export type Pads = readonly [number, number, number, number];

function checkPads(op: string, shape: readonly number[], pads: Pads, mode: PadMode): void {
  if (shape.length < 2) throw new Error(`${op}: needs a tensor of rank >= 2, got [${shape.join(', ')}]`);
  if (pads.length !== 4 || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`${op}: pads must be four non-negative integers [top, bottom, left, right], got [${pads.join(', ')}]`);
  }
  const [h, w] = shape.slice(-2);
  if (mode === 'reflect' && (Math.max(pads[0], pads[1]) >= h || Math.max(pads[2], pads[3]) >= w)) {
    throw new Error(`${op}: reflect pads [${pads.join(', ')}] must be smaller than the padded dimensions ${h} x ${w}`);
  }
  if (mode === 'replicate' && (h === 0 || w === 0) && pads.some((p) => p > 0)) {
    throw new Error(`${op}: cannot replicate the edge of an empty ${h} x ${w} image`);
  }
}

function run(kernel: Kernel, src: Tensor, outShape: number[], h: number, w: number, pads: Pads): Tensor {
  const out = Tensor.empty(outShape);
  const [hOut, wOut] = [h + pads[0] + pads[1], w + pads[2] + pads[3]];
  if (out.size > 0) dispatch(kernel, [src.buffer, out.buffer], padUniforms(out.size, h, w, hOut, wOut, pads[0], pads[2]), Math.ceil(out.size / PAD_WG));
  return out;
}

/** x [..., H, W] -> [..., H + top + bottom, W + left + right]. */
export function pad(x: Tensor, pads: Pads, mode: PadMode = 'zeros'): Tensor {
  checkPads('pad', x.shape, pads, mode);
  const [h, w] = x.shape.slice(-2);
  const outShape = [...x.shape.slice(0, -2), h + pads[0] + pads[1], w + pads[2] + pads[3]];
  const y = run(padKernel(mode), x, outShape, h, w, pads);
  return record(y, `pad-${mode}`, [x], (g) => [padAdjoint(g, x.shape, pads, mode)]);
}

/** The adjoint of pad: g [..., H + top + bottom, W + left + right] summed back onto `shape`
 * [..., H, W]. */
export function padAdjoint(g: Tensor, shape: readonly number[], pads: Pads, mode: PadMode): Tensor {
  checkPads('padAdjoint', shape, pads, mode);
  const [h, w] = shape.slice(-2);
  const expected = [...shape.slice(0, -2), h + pads[0] + pads[1], w + pads[2] + pads[3]];
  if (g.rank !== expected.length || g.shape.some((s, d) => s !== expected[d])) {
    throw new Error(`padAdjoint: gradient [${g.shape.join(', ')}] is not the padded shape [${expected.join(', ')}]`);
  }
  const gx = run(padAdjointKernel(mode), g, [...shape], h, w, pads);
  return record(gx, `pad-${mode}-adjoint`, [g], (gg) => [pad(gg, pads, mode)]);
}
