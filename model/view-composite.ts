// The fused high-res rendering of one view (kernels/view-composite.ts): the low-res geometry, one
// set of textures and the background in, rgb and depth per pixel out. It records no gradient; the
// op-level path (GramHDGenerator.renderHighRes) stays the reference, and what training runs.
import { isGradEnabled, Tensor } from '../engine/index.ts';
import { dispatch } from '../engine/runtime.ts';
import { VIEW_COMPOSITE_MAX_PIECES, VIEW_COMPOSITE_MAX_POINTS, VIEW_COMPOSITE_WG, viewCompositeKernel, viewCompositeUniforms } from '../kernels/view-composite.ts';
import type { Camera } from './camera.ts';

/** Whether the fused kernel can render these inputs: nothing to differentiate, the textures in at
 * most VIEW_COMPOSITE_MAX_PIECES equal pieces (the last may be shorter) and few enough points per
 * ray for its registers. */
export function canComposite(textures: readonly Tensor[], background: Tensor, levels: number): boolean {
  const recording = isGradEnabled() && (textures.some((t) => t.requiresGrad) || background.requiresGrad);
  const perPiece = textures[0]?.shape[0] ?? 0;
  const pieces = textures.length >= 1 && textures.length <= VIEW_COMPOSITE_MAX_PIECES &&
    textures.every((t, i) => (i < textures.length - 1 ? t.shape[0] === perPiece : t.shape[0] <= perPiece));
  return !recording && pieces && levels + 1 <= VIEW_COMPOSITE_MAX_POINTS;
}

/** The upsampling grid's coordinate per output index: bilinear align_corners=True from `low` to
 * `high` as a grid_sample (align_corners=False) grid, exactly as the reference builds it. */
function upsampleCoordinates(low: number, high: number): Float32Array {
  const ratio = high > 1 ? (low - 1) / (high - 1) : 0;
  return Float32Array.from({ length: high }, (_, i) => (2 * i * ratio + 1) / low - 1);
}

/**
 * geometry [1, 4L + 3, HL, HL] (intersections, validities, background points as channels), textures
 * [L, 4, H, H] in pieces along dim 0 (alpha after its sigmoid; see canComposite), background
 * [1, 3, H, H] -> rgb [1, H*H, 3] (widened [0, 1]) and depth [1, H*H, 1], as
 * GramHDGenerator.renderHighRes computes them.
 */
export function compositeView(geometry: Tensor, textures: readonly Tensor[], background: Tensor, camera: Camera, fov: number): { rgb: Tensor; depth: Tensor } {
  const [, channels, low] = geometry.shape;
  const levels = textures.reduce((n, t) => n + t.shape[0], 0);
  const size = textures[0].shape[2];
  if (channels !== 4 * levels + 3 || background.shape.join() !== `1,3,${size},${size}`) {
    throw new Error(`compositeView: geometry [${geometry.shape.join(', ')}], ${levels} texture levels and background [${background.shape.join(', ')}] do not fit`);
  }
  const grid = Tensor.fromData(upsampleCoordinates(low, size), [size]);
  const rgb = Tensor.empty([1, size * size, 3]);
  const depth = Tensor.empty([1, size * size, 1]);
  const uniforms = viewCompositeUniforms({ levels, lowSize: low, size, origin: camera.origin, textureScale: 100 / fov, levelsPerPiece: textures[0].shape[0] });
  const pieces = Array.from({ length: VIEW_COMPOSITE_MAX_PIECES }, (_, i) => (textures[i] ?? textures[0]).buffer);
  dispatch(viewCompositeKernel, [geometry.buffer, background.buffer, grid.buffer, rgb.buffer, depth.buffer, ...pieces], uniforms, Math.ceil((size * size) / VIEW_COMPOSITE_WG));
  grid.dispose();
  return { rgb, depth };
}
