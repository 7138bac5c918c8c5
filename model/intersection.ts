// Ray-manifold intersection: where each ray first crosses each level of the scalar field s, from the
// field sampled at S points along it. Differentiable in s (GRAM trains its sample network through
// the interpolated intersection points).
import { isGradEnabled, ops, Tensor } from '../engine/index.ts';
import { dispatch } from '../engine/runtime.ts';
import { MANIFOLD_INTERSECTION_WG, manifoldIntersectionKernel } from '../kernels/manifold-intersection.ts';
import type { FusedImpl } from './fused-linear.ts';
import { linspace } from './camera.ts';
import type { RendererConfig } from './config.ts';

/** Segments whose field changes by less than this are not interpolated (their far end is used). */
const MIN_INTERPOLATION_STEP = 0.05;

/** The L = num_manifolds - 1 levels, linspace(levels_start, levels_end). */
export function manifoldLevels(renderer: RendererConfig): Float64Array {
  return linspace(renderer.levels_start, renderer.levels_end, renderer.num_manifolds - 1);
}

export interface Intersections {
  /** [B, R, L, 3] */
  points: Tensor;
  /** [B, R, L, 1], 1 where the ray crosses the level. */
  isValid: Tensor;
}

/** idx [..., 1] (int32) repeated along a last dimension of `size`. */
function repeatIndex(idx: Tensor, size: number): Tensor {
  return ops.mapElements('copy', 'a', [idx], 'i32', 0, 0, [...idx.shape.slice(0, -1), size]);
}

/**
 * points [B, R, S, 3] along each ray from near to far, s [B, R, S, 1] the field there, levels [L].
 *
 * Segment i = (x_i, x_i+1) crosses level l when s_i+1 <= l <= s_i. Per ray and level the reference
 * scores segment i as +c_i if it crosses and -c_i if not, with c = linspace(S-1, 0, S-1), and takes
 * the argmax: the nearest crossing segment, or the last one (score 0) when none crosses. The point
 * is (x_l (s_h - l) + x_h (l - s_l)) / (s_h - s_l) on a crossing segment whose field changes by more
 * than 0.05, else x_h; validity is whether the chosen segment crosses. Renders that record no
 * gradient run it as one kernel (intersectFused); `impl: 'reference'` forces the op-level path.
 */
export function intersectManifolds(points: Tensor, s: Tensor, levels: Tensor, impl: FusedImpl = 'fused'): Intersections {
  const [b, r, samples] = points.shape;
  const l = levels.size;
  if (points.rank !== 4 || points.shape[3] !== 3) throw new Error(`intersection: points must be [B, R, S, 3], got [${points.shape.join(', ')}]`);
  if (s.shape.join() !== `${b},${r},${samples},1`) throw new Error(`intersection: s must be [${b}, ${r}, ${samples}, 1], got [${s.shape.join(', ')}]`);
  if (samples < 2) throw new Error(`intersection: needs at least 2 samples per ray, got ${samples}`);
  const recording = isGradEnabled() && (points.requiresGrad || s.requiresGrad);
  if (impl === 'fused' && !recording) return intersectFused(points, s, levels);
  const lower = ops.narrow(s, 2, 0, samples - 1);
  const upper = ops.narrow(s, 2, 1, samples - 1);
  // [B, R, S-1, L]
  const crossing = ops.mul(ops.le(upper, levels), ops.ge(lower, levels));
  const cost = Tensor.fromData(Float32Array.from(linspace(samples - 1, 0, samples - 1)), [samples - 1, 1]);
  const score = ops.where(crossing, cost, ops.neg(cost));
  // [B, R, 1, L] -> [B, R, L, 1]: the segment's first sample; the next sample ends it
  const first = ops.reshape(ops.argmax(score, 2, true), [b, r, l, 1]);
  const next = ops.mapElements('next', 'a + 1.0', [first], 'i32');

  const xl = ops.gather(points, 2, repeatIndex(first, 3));
  const xh = ops.gather(points, 2, repeatIndex(next, 3));
  const sl = ops.gather(s, 2, first);
  const sh = ops.gather(s, 2, next);
  const level = ops.reshape(levels, [l, 1]);
  const isValid = ops.mul(ops.le(sh, level), ops.ge(sl, level));
  const change = ops.sub(sh, sl);
  const steep = ops.gt(ops.abs(change), MIN_INTERPOLATION_STEP);
  const scale = ops.where(steep, change, MIN_INTERPOLATION_STEP);
  const interpolated = ops.div(ops.add(ops.mul(ops.sub(sh, level), xl), ops.mul(ops.sub(level, sl), xh)), scale);
  return { points: ops.where(ops.mul(isValid, steep), interpolated, xh), isValid };
}

/** intersectManifolds in one kernel (kernels/manifold-intersection.ts), for renders nothing is
 * differentiated through; training keeps the op-level path, which carries the field's gradient. */
function intersectFused(points: Tensor, s: Tensor, levels: Tensor): Intersections {
  const [b, r, samples] = points.shape;
  const l = levels.size;
  const hits = Tensor.empty([b, r, l, 3]);
  const isValid = Tensor.empty([b, r, l, 1]);
  const n = b * r * l;
  if (n > 0) {
    const uniforms = new ArrayBuffer(16);
    new Uint32Array(uniforms, 0, 3).set([b * r, samples, l]);
    new Float32Array(uniforms, 12, 1)[0] = MIN_INTERPOLATION_STEP;
    dispatch(manifoldIntersectionKernel, [points.buffer, s.buffer, levels.buffer, hits.buffer, isValid.buffer], new Uint8Array(uniforms),
      Math.ceil(n / MANIFOLD_INTERSECTION_WG));
  }
  return { points: hits, isValid };
}
