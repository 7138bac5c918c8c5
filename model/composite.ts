// Compositing the points of each ray front to back: sort them by distance from the camera, turn
// density into opacity, and accumulate with the transmittance T = prod(1 - alpha + 1e-10) of
// everything in front.
import { isGradEnabled, ops, Tensor } from '../engine/index.ts';
import { dispatch } from '../engine/runtime.ts';
import { MANIFOLD_COMPOSITE_MAX_POINTS, MANIFOLD_COMPOSITE_WG, manifoldCompositeKernel } from '../kernels/manifold-composite.ts';
import type { FusedImpl } from './fused-linear.ts';

/** Spacing used for every manifold's opacity; the background (and the farthest point) get 1e10. */
export const MANIFOLD_DELTA = 0.04;
export const FINAL_DELTA = 1e10;
/** Keeps the transmittance product away from zero (and its gradient finite). */
const TRANSMITTANCE_EPS = 1e-10;

/** |points - origin| per point: points [B, R, M, 3], origin [B, 3] -> [B, R, M, 1]. */
export function distancesFrom(points: Tensor, origin: Tensor): Tensor {
  const o = ops.reshape(origin, [origin.shape[0], 1, 1, 3]);
  return ops.sqrt(ops.sum(ops.square(ops.sub(points, o)), -1, true));
}

/** idx [B, R, M, 1] (int32) repeated to [B, R, M, size]. */
function repeatIndex(idx: Tensor, size: number): Tensor {
  return size === 1 ? idx : ops.mapElements('copy', 'a', [idx], 'i32', 0, 0, [...idx.shape.slice(0, -1), size]);
}

export interface SortedPoints {
  /** [B, R, M, 1] ascending. */
  distances: Tensor;
  /** For each sorted position, the point's index before sorting, [B, R, M, 1] int32. */
  order: Tensor;
  /** The given per-point tensors [B, R, M, C] in the sorted order. */
  values: Tensor[];
}

/** Sorts the M points of each ray by distance (stable; the reference's torch.sort is not, which
 * only reorders invalid levels collapsed onto one point, whose opacity is 0). */
export function sortByDistance(distances: Tensor, values: readonly Tensor[]): SortedPoints {
  const order = ops.argsort(distances, 2);
  return {
    distances: ops.gather(distances, 2, order),
    order,
    values: values.map((v) => ops.gather(v, 2, repeatIndex(order, v.shape[3]))),
  };
}

/**
 * Front-to-back alpha compositing of sorted points: alpha [B, R, M, 1] -> weights = alpha * T with
 * T the exclusive cumulative product of (1 - alpha + 1e-10), and sum_m weights * values for each
 * values [B, R, M, C] -> [B, R, C].
 */
export function alphaComposite(alpha: Tensor, values: readonly Tensor[]): { weights: Tensor; sums: Tensor[] } {
  const [b, r, m] = alpha.shape;
  const through = ops.add(ops.rsub(1, alpha), TRANSMITTANCE_EPS);
  const shifted = ops.concat([ops.ones([b, r, 1, 1]), ops.narrow(through, 2, 0, m - 1)], 2);
  const weights = ops.mul(alpha, ops.cumprod(shifted, 2));
  return { weights, sums: values.map((v) => ops.sum(ops.mul(weights, v), 2)) };
}

export interface Composited {
  /** [B, R, 3] in the radiance network's widened [0, 1] range. */
  rgb: Tensor;
  /** [B, R, 1] expected distance. */
  depth: Tensor;
}

/**
 * GRAM's compositing of the M points of each ray (the L manifold intersections, then the
 * background point at index M-1): rgbSigma [B, R, M, 4], distances and isValid [B, R, M, 1].
 * delta is 0.04 except for the background and the farthest point (1e10);
 * alpha = (1 - exp(-delta sigma)) * isValid. Distances carry no gradient (the reference computes
 * them under no_grad). Renders that record no gradient run it as one kernel (compositeFused);
 * `impl: 'reference'` forces the op-level path, which training differentiates.
 */
export function compositeManifolds(rgbSigma: Tensor, distances: Tensor, isValid: Tensor, impl: FusedImpl = 'fused'): Composited {
  const m = rgbSigma.shape[2];
  const recording = isGradEnabled() && [rgbSigma, distances, isValid].some((t) => t.requiresGrad);
  if (impl === 'fused' && !recording && m <= MANIFOLD_COMPOSITE_MAX_POINTS) return compositeFused(rgbSigma, distances, isValid);
  const sorted = sortByDistance(distances, [rgbSigma, isValid]);
  const [raw, valid] = sorted.values;
  const isBackground = ops.eq(ops.toF32(sorted.order), m - 1);
  const isLast = Tensor.fromData(Float32Array.from({ length: m }, (_, i) => (i === m - 1 ? 1 : 0)), [m, 1]);
  const delta = ops.where(ops.maximum(isBackground, isLast), FINAL_DELTA, MANIFOLD_DELTA);
  const sigma = ops.narrow(raw, 3, 3, 1);
  const alpha = ops.mul(ops.rsub(1, ops.exp(ops.neg(ops.mul(delta, sigma)))), valid);
  const { sums: [rgb, depth] } = alphaComposite(alpha, [ops.narrow(raw, 3, 0, 3), sorted.distances]);
  return { rgb, depth };
}

/** compositeManifolds in one kernel (kernels/manifold-composite.ts), for renders nothing is
 * differentiated through: what inference runs. */
function compositeFused(rgbSigma: Tensor, distances: Tensor, isValid: Tensor): Composited {
  const [b, r, m] = rgbSigma.shape;
  const rgb = Tensor.empty([b, r, 3]);
  const depth = Tensor.empty([b, r, 1]);
  if (b * r > 0) {
    dispatch(manifoldCompositeKernel, [rgbSigma.buffer, distances.buffer, isValid.buffer, rgb.buffer, depth.buffer],
      new Uint32Array([b * r, m, 0, 0]), Math.ceil((b * r) / MANIFOLD_COMPOSITE_WG));
  }
  return { rgb, depth };
}
