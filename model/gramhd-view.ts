// The per-view part of a GRAM-HD render: the low-res render (or only its geometry) for each camera,
// then the high-res image along that geometry, upsampled, looking up the super-resolved textures and
// compositing them by alpha. GramHDGenerator.forward renders through here after super-resolving; a
// bake (model/orbit.ts) renders any number of views of its textures through the same code.
import { noGrad, ops, Tensor } from '../engine/index.ts';
import { planeIntersections, worldRays, type Camera } from './camera.ts';
import { manifoldIntersections, renderManifolds, type StageProfiler } from './gram.ts';
import type { GramHDGenerator } from './gramhd.ts';
import type { FilmCodes } from './mapping.ts';
import type { FusedImpl } from './fused-linear.ts';
import { canComposite, compositeView } from './view-composite.ts';

/** The super-resolved textures one view looks up. */
export interface ViewTextures {
  /** The L manifold textures [n, 4, H, H] in pieces along dim 0 (rgb, alpha after its sigmoid). */
  manifolds: readonly Tensor[];
  /** [1, 3, H, H] the background plane's rgb. */
  background: Tensor;
}

export interface ViewOptions {
  /** View direction (0, 0, -1) for the low-res render's radiance (only used with codes). */
  lockViewDependence?: boolean;
  /** Rays per pass of the low-res render. */
  chunkRays?: number;
  /** High-res pixels composited per pass. */
  chunkPixels?: number;
  profile?: StageProfiler;
  /** The high-res rendering: the fused kernel (model/view-composite.ts) where it applies (nothing
   * to differentiate, the textures in one buffer), or the op-level reference; default fused. */
  impl?: FusedImpl;
}

export interface ViewOutput {
  /** [B, 3, H, H], nominally in [-1, 1]. */
  image: Tensor;
  /** [B, H, H, 1] */
  depth: Tensor;
  /** [B, 3, HL, HL] and [B, HL, HL, 1]: the low-res render, null when rendered without codes. */
  lrImage: Tensor | null;
  lrDepth: Tensor | null;
}

/**
 * One view per camera: element e looks up textures[e]. With FiLM codes ([B, codeDim], truncated)
 * the low-res image is rendered too; with null only its intersection geometry is traced (the
 * sample network; no radiance), which is all the high-res image needs.
 */
export function renderGramHDViews(generator: GramHDGenerator, codes: FilmCodes | null, textures: readonly ViewTextures[], cameras: readonly Camera[], options: ViewOptions = {}): ViewOutput {
  const { config } = generator;
  const b = cameras.length;
  const hl = config.lr_img_size;
  const h = config.img_size;
  if (textures.length !== b) throw new Error(`GRAM-HD view: ${textures.length} sets of textures for ${b} cameras`);
  const profile = options.profile ?? ((_stage, fn) => fn());
  const settings = { camera: config.camera, renderer: config.renderer, imgSize: hl };
  const trace = { lockViewDependence: options.lockViewDependence ?? false, chunkRays: options.chunkRays, profile };

  // the low-res render, keeping the geometry the high-res pass reuses
  let lrImage: Tensor | null = null;
  let lrDepth: Tensor | null = null;
  let hits: { points: Tensor; isValid: Tensor };
  if (codes) {
    const lr = noGrad(() => renderManifolds(generator.representation, codes, cameras, settings, { ...trace, intermediates: true }));
    ({ image: lrImage, depth: lrDepth } = lr);
    hits = { points: lr.intermediates!.intersections, isValid: lr.intermediates!.isValid };
  } else {
    hits = noGrad(() => manifoldIntersections(generator.representation, cameras, settings, trace));
  }

  return profile('high-res sampling + compositing', () => {
    const images: Tensor[] = [];
    const depths: Tensor[] = [];
    cameras.forEach((camera, e) => {
      const geometry = noGrad(() => lowResGeometry(hits.points, hits.isValid, camera, e, hl, config.camera.fov));
      const { manifolds, background } = textures[e];
      const fused = (options.impl ?? 'fused') === 'fused' && canComposite(manifolds, background, config.renderer.num_manifolds - 1);
      const out = fused
        ? compositeView(geometry, manifolds, background, camera, config.camera.fov)
        : generator.renderHighRes(geometry, manifolds as Tensor[], background, camera, options.chunkPixels);
      images.push(out.rgb);
      depths.push(out.depth);
    });
    const image = ops.sub(ops.mul(ops.permute(ops.reshape(ops.concat(images, 0), [b, h, h, 3]), [0, 3, 1, 2]), 2), 1);
    const depth = ops.reshape(ops.concat(depths, 0), [b, h, h, 1]);
    return { image, depth, lrImage, lrDepth };
  });
}

/**
 * The low-res geometry of element `e` as an image [1, 4L + 3, HL, HL]: channels l*3 + k hold the
 * intersection with level l (k = x, y, z), then the L validities, then where the pixel's ray meets
 * the background plane (float64 on the CPU, as the truth).
 */
function lowResGeometry(intersections: Tensor, isValid: Tensor, camera: Camera, e: number, hl: number, fov: number): Tensor {
  const [, rays, l] = intersections.shape;
  const background = planeIntersections(worldRays(camera, hl, hl, fov));
  const perPixel = ops.concat([
    ops.reshape(ops.narrow(intersections, 0, e, 1), [rays, 3 * l]),
    ops.reshape(ops.narrow(isValid, 0, e, 1), [rays, l]),
    Tensor.fromData(Float32Array.from(background), [rays, 3]),
  ], 1);
  return ops.reshape(ops.permute(ops.reshape(perPixel, [hl, hl, 4 * l + 3]), [2, 0, 1]), [1, 4 * l + 3, hl, hl]);
}
