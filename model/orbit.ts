// Real-time orbit. With locked view dependence GRAM-HD's super-resolved textures do not depend on
// the camera: the gridding rays are parallel and fixed and every view direction is (0, 0, -1). A
// bake runs the camera-independent part of the forward once per latent (mapping, gridding, feature
// radiance, StyleRRDBNet, RRDBNet: GramHDGenerator.superResolve); a view is the rest
// (model/gramhd-view.ts, the code the full forward renders through), so view(bake(z), camera)
// equals forward(z, camera, { lockViewDependence: true }).
import { noGrad, ops, Tensor, tidy, tidyAsync } from '../engine/index.ts';
import type { Camera } from './camera.ts';
import type { GramHDConfig } from './config.ts';
import { renderManifoldsSparse, type GramGenerator, type RenderOutput, type StageProfiler } from './gram.ts';
import type { GramHDGenerator } from './gramhd.ts';
import { renderGramHDViews, type ViewOutput, type ViewTextures } from './gramhd-view.ts';
import type { FusedImpl } from './fused-linear.ts';
import type { FilmCodes } from './mapping.ts';

/** One latent's camera-independent state, on the GPU until dispose(). */
export interface GramHDBake {
  readonly generator: GramHDGenerator;
  /** [1, codeDim] each: the truncated FiLM codes (only the low-res image of a view uses them). */
  readonly codes: FilmCodes;
  /** The L SR manifold textures [n, 4, H, H] (pieces along dim 0) and the SR background [1, 3, H, H], float32. */
  readonly textures: ViewTextures;
  dispose(): void;
}

export interface BakeOptions {
  /** lerp towards the truncation averages (FiLM codes and SR style); default 1. */
  truncationPsi?: number;
  chunkRays?: number;
  chunkManifolds?: number;
  profile?: StageProfiler;
}

export interface OrbitViewOptions {
  /** Also render the low-res image (the radiance network at the low-res intersections); default false. */
  lowRes?: boolean;
  chunkRays?: number;
  chunkPixels?: number;
  profile?: StageProfiler;
  /** The high-res rendering: fused kernel or op-level reference (default fused). */
  impl?: FusedImpl;
}

function makeBake(generator: GramHDGenerator, codes: FilmCodes, textures: ViewTextures): GramHDBake {
  const tensors = [codes.frequencies, codes.phase_shifts, ...textures.manifolds, textures.background];
  for (const t of tensors) t.keep();
  return { generator, codes, textures, dispose: () => { for (const t of tensors) t.dispose(); } };
}

/** z [1, z_dim] -> its textures: the forward's steps 2-5 with locked view dependence. */
export function bake(generator: GramHDGenerator, z: Tensor, options: BakeOptions = {}): GramHDBake {
  if (z.rank !== 2 || z.shape[0] !== 1 || z.shape[1] !== generator.config.z_dim) {
    throw new Error(`bake: z [${z.shape.join(', ')}] must be one latent [1, ${generator.config.z_dim}]`);
  }
  const profile = options.profile ?? ((_stage, fn) => fn());
  const { codes, textures } = tidy(() => noGrad(() => {
    const { used, usedStyle } = profile('mapping', () => generator.mapLatents(z, options.truncationPsi ?? 1));
    const sr = generator.superResolve(used, usedStyle, null, { chunkRays: options.chunkRays, chunkManifolds: options.chunkManifolds, profile });
    return { codes: used, textures: { manifolds: sr.textures[0], background: sr.srBgOut } };
  }));
  return makeBake(generator, codes, textures);
}

/** `count` copies of a [1, ...] tensor along dim 0. */
function repeat(t: Tensor, count: number): Tensor {
  return count === 1 ? t : ops.concat(Array<Tensor>(count).fill(t), 0);
}

/** The views of a bake from `cameras` [B]: image [B, 3, H, H], depth [B, H, H, 1] (and the low-res render when asked for). */
export function view(baked: GramHDBake, cameras: readonly Camera[], options: OrbitViewOptions = {}): ViewOutput {
  const n = cameras.length;
  const codes = options.lowRes ? { frequencies: repeat(baked.codes.frequencies, n), phase_shifts: repeat(baked.codes.phase_shifts, n) } : null;
  return noGrad(() => renderGramHDViews(baked.generator, codes, Array<ViewTextures>(n).fill(baked.textures), cameras, {
    lockViewDependence: true, chunkRays: options.chunkRays, chunkPixels: options.chunkPixels, profile: options.profile, impl: options.impl,
  }));
}

/** float32 -> the nearest float16 (ties to even), still float32: the mantissa cut to 10 bits with
 * integer arithmetic, and below float16's smallest normal (2^-14) a multiple of 2^-24. Overflow
 * (|a| > 65504) is not modelled; texture values are far from it. (Mesa folds
 * unpack2x16float(pack2x16float(a)) away, so the built-ins cannot do this.) */
const F16_ROUND = 'select(bitcast<f32>((bitcast<u32>(a) + 0xFFFu + ((bitcast<u32>(a) >> 13u) & 1u)) & 0xFFFFE000u), ' +
  'round(a * 16777216.0) / 16777216.0, abs(a) < 6.103515625e-5)';

/** The bake with every texture value rounded to float16, as an rgba16float texture would store
 * it, for measuring what half-precision textures cost (the buffers stay float32). */
export function roundedToF16(baked: GramHDBake): GramHDBake {
  const round = (t: Tensor) => ops.mapElements('round-f16', F16_ROUND, [t]);
  const textures = tidy(() => ({ manifolds: baked.textures.manifolds.map(round), background: round(baked.textures.background) }));
  const codes = tidy(() => ({ frequencies: ops.clone(baked.codes.frequencies), phase_shifts: ops.clone(baked.codes.phase_shifts) }));
  return makeBake(baked.generator, codes, textures);
}

/** Texture bytes per baked latent: float32 as kept here (L x 4 + 3 channels), and as rgba16float
 * textures (L + 1 four-channel layers of 2-byte halves), at the configuration's img_size. */
export function bakeBytes(config: GramHDConfig): { float32: number; rgba16float: number } {
  const l = config.renderer.num_manifolds - 1;
  const area = config.img_size ** 2;
  return { float32: (4 * l + 3) * area * 4, rgba16float: (l + 1) * 4 * area * 2 };
}

/** GRAM (stage one) has nothing camera-independent to bake but its truncated FiLM codes [1, codeDim]. */
export interface GramBake {
  readonly generator: GramGenerator;
  readonly codes: FilmCodes;
  dispose(): void;
}

/** z [1, z_dim] -> its truncated codes, kept until dispose(). */
export function bakeGram(generator: GramGenerator, z: Tensor, truncationPsi = 1): GramBake {
  const codes = tidy(() => noGrad(() => {
    const { used } = generator.codes(z, truncationPsi);
    return { frequencies: ops.clone(used.frequencies), phase_shifts: ops.clone(used.phase_shifts) };
  }));
  codes.frequencies.keep();
  codes.phase_shifts.keep();
  return { generator, codes, dispose: () => { codes.frequencies.dispose(); codes.phase_shifts.dispose(); } };
}

/** GRAM's views of one latent with locked view dependence: the same render as its forward (at
 * `imgSize`, default the configuration's: the radiance field renders at any size), shading only
 * the visible points (renderManifoldsSparse). */
export async function viewGram(baked: GramBake, cameras: readonly Camera[], imgSize?: number): Promise<RenderOutput> {
  const { config } = baked.generator;
  const n = cameras.length;
  return tidyAsync(async () => {
    const codes = noGrad(() => ({ frequencies: repeat(baked.codes.frequencies, n), phase_shifts: repeat(baked.codes.phase_shifts, n) }));
    return renderManifoldsSparse(baked.generator.representation, codes, cameras,
      { camera: config.camera, renderer: config.renderer, imgSize: imgSize ?? config.img_size }, { lockViewDependence: true });
  });
}
