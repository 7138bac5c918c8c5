// Resampling of NCHW images with torch's semantics: interpolate (bilinear, bicubic), the GRAM-HD
// consistency-loss bicubic downsampler, pixel shuffle and bilinear grid sampling.
//
// interpolate and bicubicDownsample are separable linear maps: one kernel pass per axis, whose
// gradient is the adjoint pass and vice versa (kernels/resample.ts), so gradients of any order work.
// gridSample is a composition: source coordinates and bilinear corner weights from the grid with
// elementwise ops, then one fused footprint kernel that weights and sums the 2x2 texels; the
// footprint's sample / spread / correlate kernels are each other's gradients.
import {
  footprintCorrelateKernel, footprintSampleKernel, footprintSpreadKernel, footprintUniforms,
  RESAMPLE_WG, resampleAxisKernel, resampleAxisUniforms, type ResampleFilter,
} from '../../kernels/resample.ts';
import { record } from '../autograd.ts';
import { dispatch, type Kernel } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { full, mapElements, mul, rsub, sub } from './elementwise.ts';
import { concat, narrow, permute, reshape, unsqueeze } from './shape.ts';

/** One axis of a separable resampling map (kernels/resample.ts describes the filters). */
interface AxisMap {
  filter: ResampleFilter;
  inSize: number;
  outSize: number;
  /** Source step per output step (torch's scale). */
  ratio: number;
  alignCorners: boolean;
  /** Downsampling factor and replicate padding of the keys filter. */
  factor: number;
  pad: number;
}

/** Applies `map` along `dim` (adjoint: its transpose, outSize -> inSize). */
function resampleAxis(x: Tensor, dim: number, map: AxisMap, adjoint: boolean): Tensor {
  const from = adjoint ? map.outSize : map.inSize;
  const to = adjoint ? map.inSize : map.outSize;
  if (x.shape[dim] !== from) throw new Error(`resample: dimension ${dim} of [${x.shape.join(', ')}] should be ${from}`);
  const outer = x.shape.slice(0, dim).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const y = Tensor.empty(x.shape.map((s, d) => (d === dim ? to : s)));
  if (y.size > 0) {
    const uniforms = new Uint8Array(resampleAxisUniforms({ ...map, outer, inner }));
    dispatch(resampleAxisKernel(map.filter, adjoint), [x.buffer, y.buffer], uniforms, Math.ceil(y.size / RESAMPLE_WG));
  }
  return record(y, adjoint ? 'resampleAdjoint' : 'resample', [x], (g) => [resampleAxis(g, dim, map, !adjoint)]);
}

function checkImage(op: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${op}: expects an image batch [N, C, H, W], got [${x.shape.join(', ')}]`);
  return x.shape as [number, number, number, number];
}

export type InterpolateMode = 'bilinear' | 'bicubic';
/** An output size [h, w], or a scale factor (output floor(size * scale), as torch). */
export type InterpolateTarget = { size: readonly [number, number] } | { scale: number };

/**
 * torch.nn.functional.interpolate(x, size | scale_factor, mode, align_corners) for x [N, C, H, W]
 * (recompute_scale_factor off: a given scale factor sets the source step 1/scale).
 */
export function interpolate(x: Tensor, target: InterpolateTarget, mode: InterpolateMode, alignCorners = false): Tensor {
  const [, , h, w] = checkImage('interpolate', x);
  const axis = (inSize: number, d: 0 | 1): AxisMap => {
    const outSize = 'size' in target ? target.size[d] : Math.floor(inSize * target.scale);
    if (!Number.isInteger(outSize) || outSize < 1) throw new Error(`interpolate: output size ${outSize} for an input of ${inSize}`);
    // torch's area_pixel_compute_scale
    const ratio = alignCorners
      ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0)
      : ('scale' in target ? 1 / target.scale : inSize / outSize);
    return { filter: mode === 'bilinear' ? 'linear' : 'cubic', inSize, outSize, ratio, alignCorners, factor: 1, pad: 0 };
  };
  return resampleAxis(resampleAxis(x, 3, axis(w, 1), false), 2, axis(h, 0), false);
}

/**
 * The GRAM-HD consistency downsampler (torch_utils/interpolate.py bicubic_downsample): replicate-pad
 * by floor(1.5 * factor), convolve with the separable 4*factor-tap Keys (a = -0.5) kernel
 * k((i - 2 factor + 0.5) / factor) / factor, stride factor. [N, C, H, W] ->
 * [N, C, floor((H + 2 pad - 4 factor) / factor) + 1, likewise for W].
 */
export function bicubicDownsample(x: Tensor, factor: number): Tensor {
  const [, , h, w] = checkImage('bicubicDownsample', x);
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`bicubicDownsample: factor ${factor} is not a positive integer`);
  const pad = Math.floor(1.5 * factor);
  const axis = (inSize: number): AxisMap => {
    const outSize = Math.floor((inSize + 2 * pad - 4 * factor) / factor) + 1;
    if (outSize < 1) throw new Error(`bicubicDownsample: a size of ${inSize} is too small for factor ${factor}`);
    return { filter: 'keys', inSize, outSize, ratio: 0, alignCorners: false, factor, pad };
  };
  return resampleAxis(resampleAxis(x, 3, axis(w), false), 2, axis(h), false);
}

/** torch.nn.functional.pixel_shuffle: [N, C r^2, H, W] -> [N, C, H r, W r]. */
export function pixelShuffle(x: Tensor, r: number): Tensor {
  const [n, cr, h, w] = checkImage('pixelShuffle', x);
  if (cr % (r * r) !== 0) throw new Error(`pixelShuffle: ${cr} channels are not a multiple of ${r}^2`);
  const c = cr / (r * r);
  const blocks = permute(reshape(x, [n, c, r, r, h, w]), [0, 1, 4, 2, 5, 3]);
  return reshape(blocks, [n, c, h * r, w * r]);
}

// ---- bilinear footprints: points [N, Q] with weights [N, Q, 4] over the texels base + (k & 1, k >> 1)

function runFootprint(kernel: Kernel, out: Tensor, buffers: GPUBuffer[], dims: number[], threads: number): Tensor {
  if (threads > 0) {
    const [n, c, h, w, q] = dims;
    dispatch(kernel, [...buffers, out.buffer], footprintUniforms(n, c, h, w, q), Math.ceil(threads / RESAMPLE_WG));
  }
  return out;
}

/** [N, C, Q]: the weighted 2x2 texels of image [N, C, H, W] around each point. */
function sampleFootprint(image: Tensor, weights: Tensor, base: Tensor): Tensor {
  const [n, c, h, w] = image.shape;
  const q = weights.shape[1];
  const y = runFootprint(footprintSampleKernel, Tensor.empty([n, c, q]), [image.buffer, weights.buffer, base.buffer], [n, c, h, w, q], n * c * q);
  return record(y, 'sampleFootprint', [image, weights], (g) => [
    image.requiresGrad ? spreadFootprint(g, weights, base, [h, w]) : null,
    weights.requiresGrad ? correlateFootprint(g, image, base) : null,
  ]);
}

/** The adjoint of sampleFootprint in the image: g [N, C, Q] spread onto [N, C, H, W]. */
function spreadFootprint(g: Tensor, weights: Tensor, base: Tensor, [h, w]: readonly number[]): Tensor {
  const [n, c, q] = g.shape;
  const image = runFootprint(footprintSpreadKernel, full([n, c, h, w], 0), [g.buffer, weights.buffer, base.buffer], [n, c, h, w, q], n * c * q);
  return record(image, 'spreadFootprint', [g, weights], (gImage) => [
    g.requiresGrad ? sampleFootprint(gImage, weights, base) : null,
    weights.requiresGrad ? correlateFootprint(g, gImage, base) : null,
  ]);
}

/** [N, Q, 4]: sum over channels of g [N, C, Q] times each corner texel (d sample / d weights). */
function correlateFootprint(g: Tensor, image: Tensor, base: Tensor): Tensor {
  const [n, c, h, w] = image.shape;
  const q = g.shape[2];
  const d = runFootprint(footprintCorrelateKernel, Tensor.empty([n, q, 4]), [g.buffer, image.buffer, base.buffer], [n, c, h, w, q], n * q);
  return record(d, 'correlateFootprint', [g, image], (gd) => [
    g.requiresGrad ? sampleFootprint(image, gd, base) : null,
    image.requiresGrad ? spreadFootprint(g, gd, base, [h, w]) : null,
  ]);
}

export type GridPadding = 'zeros' | 'reflection';

// Grid value a -> source pixel coordinate for a size p0, align_corners=False: unnormalise
// ((a + 1) p0 - 1) / 2; reflection padding then reflects about -0.5 and p0 - 0.5 (torch's
// reflect_coordinates(., -1, 2 p0 - 1)) and clips to [0, p0 - 1]. The slope is d coordinate / d a,
// piecewise constant, with torch's choices at the kinks (clip: 0 on the border).
const DISTANCE = 'abs((a + 1.0) * p0 * 0.5)'; // from the mirror at -0.5
const FLIPS = `floor(${DISTANCE} / p0)`;
const EXTRA = `(${DISTANCE} - ${FLIPS} * p0)`;
const EVEN = `(fract(${FLIPS} * 0.5) == 0.0)`;
const REFLECTED = `(select(p0 - ${EXTRA}, ${EXTRA}, ${EVEN}) - 0.5)`;
const SOURCE_COORDINATE: Record<GridPadding, { value: string; slope: string }> = {
  zeros: { value: '((a + 1.0) * p0 - 1.0) * 0.5', slope: 'p0 * 0.5' },
  reflection: {
    value: `clamp(${REFLECTED}, 0.0, p0 - 1.0)`,
    slope: `select(0.0, p0 * 0.5 * select(-1.0, 1.0, a + 1.0 >= 0.0) * select(-1.0, 1.0, ${EVEN}), ${REFLECTED} > 0.0 && ${REFLECTED} < p0 - 1.0)`,
  },
};

function sourceCoordinate(a: Tensor, size: number, padding: GridPadding): Tensor {
  const { value, slope } = SOURCE_COORDINATE[padding];
  const p = mapElements(`grid-source-${padding}`, value, [a], 'f32', size);
  return record(p, 'gridSourceCoordinate', [a], (g) => [mul(g, mapElements(`grid-slope-${padding}`, slope, [a], 'f32', size))]);
}

export interface GridSampleOptions {
  padding?: GridPadding;
  /** Only torch's align_corners=False is implemented (all GRAM-HD uses). */
  alignCorners?: false;
}

/**
 * torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode, align_corners=False):
 * x [N, C, H, W], grid [N, Ho, Wo, 2] with grid[..., 0] indexing the width and grid[..., 1] the
 * height in [-1, 1] -> [N, C, Ho, Wo]. Differentiable in x and grid, to any order.
 */
export function gridSample(x: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const [n, c, h, w] = checkImage('gridSample', x);
  if (grid.rank !== 4 || grid.shape[0] !== n || grid.shape[3] !== 2) {
    throw new Error(`gridSample: grid [${grid.shape.join(', ')}] should be [${n}, Ho, Wo, 2] for input [${x.shape.join(', ')}]`);
  }
  if (options.alignCorners) throw new Error('gridSample: align_corners=True is not implemented');
  const padding = options.padding ?? 'zeros';
  const [, ho, wo] = grid.shape;
  const points = reshape(grid, [n, ho * wo, 2]);
  const px = sourceCoordinate(narrow(points, 2, 0, 1), w, padding);
  const py = sourceCoordinate(narrow(points, 2, 1, 1), h, padding);
  // the base texel is piecewise constant in the grid: no gradient flows through it
  const x0 = mapElements('floor', 'floor(a)', [px]);
  const y0 = mapElements('floor', 'floor(a)', [py]);
  const fx = sub(px, x0);
  const fy = sub(py, y0);
  const wx = concat([rsub(1, fx), fx], 2);
  const wy = concat([rsub(1, fy), fy], 2);
  const weights = reshape(mul(unsqueeze(wy, 3), unsqueeze(wx, 2)), [n, ho * wo, 4]);
  const y = sampleFootprint(x, weights, concat([x0, y0], 2));
  return reshape(y, [n, c, ho, wo]);
}
