// GRAM-HD (stage two): the GRAM renderer at lr_img_size, then 3D-consistent super-resolution of
// the radiance manifolds themselves (generators/renderers/manifold_sr_renderer.py). Each manifold is
// gridded into an HL x HL image of rgb, alpha and features seen from the front, StyleRRDBNet turns
// those into high-res textures (RRDBNet does the background plane), and the high-res image is the
// low-res intersection geometry, upsampled, looking the textures up and compositing them by alpha.
import { engineDevice, noGrad, ops, Tensor, tidy } from '../engine/index.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import { BACKGROUND_PLANE_Z, linspace, type Camera } from './camera.ts';
import { alphaComposite, MANIFOLD_DELTA, sortByDistance } from './composite.ts';
import { isGramHD, type GeneratorConfig, type GramHDConfig } from './config.ts';
import { GRAM_STAGES, GramGenerator, type StageProfiler, type VisibleRenderOptions } from './gram.ts';
import { renderGramHDViews } from './gramhd-view.ts';
import { intersectManifolds, manifoldLevels } from './intersection.ts';
import type { FilmCodes } from './mapping.ts';
import { release, step } from './scope.ts';
import { RRDBNet } from './sr/rrdbnet.ts';
import { StyleRRDBNet, withAlphaSigmoid } from './sr/style-rrdbnet.ts';

export interface GramHDRenderOptions {
  /** View direction (0, 0, -1) for every point, as for videos and multi-view grids. */
  lockViewDependence?: boolean;
  /** lerp towards the truncation averages (representation codes and SR style); default 1. */
  truncationPsi?: number;
  /** Also return the intermediates the golden case checks. */
  intermediates?: boolean;
  /** Rays per pass of the low-res render and the gridding; default: what one storage binding holds. */
  chunkRays?: number;
  /** High-res pixels composited per pass; default: what one storage binding holds. */
  chunkPixels?: number;
  /** Manifold images per StyleRRDBNet pass (the output of one pass stays one tensor). */
  chunkManifolds?: number;
  /** Wraps each stage of the forward (see GRAMHD_STAGES) so a profiler can time it
   * (cli/bench/model.ts); default: runs it, adding no synchronisation. */
  profile?: StageProfiler;
}

/** GRAM-HD's forward stages, in order, as passed to GramHDRenderOptions.profile: GRAM's (the
 * low-res render) then the super-resolution ones. */
export const GRAMHD_STAGES = [
  ...GRAM_STAGES,
  'gridding + feature radiance',
  'SR (StyleRRDBNet)',
  'SR background (RRDBNet)',
  'high-res sampling + compositing',
] as const;

export interface GramHDIntermediates {
  /** [B*L, 4 + feature_dim, HL, HL] the StyleRRDBNet input, manifolds of element 0 first. */
  lrFeatures: Tensor;
  /** [B*L, 4, H, H] raw StyleRRDBNet output (before the alpha sigmoid); null when too large for one buffer. */
  srOut: Tensor | null;
  /** [B, 3, HL, HL] the background plane's rgb, RRDBNet's input. */
  srBgIn: Tensor;
  /** [B, 3, H, H] */
  srBgOut: Tensor;
}

export interface GramHDOutput extends FilmCodes {
  /** [B, 3, H, H], nominally in [-1, 1] (the SR rgb has no activation). */
  image: Tensor;
  /** [B, H, H, 1] expected distance of the high-res composite. */
  depth: Tensor;
  /** [B, 3, HL, HL] the GRAM render, in [-1, 1]. */
  lrImage: Tensor;
  /** [B, HL, HL, 1] */
  lrDepth: Tensor;
  /** [B*(L + 1), 4, H, H] high-res textures: per element its L manifolds, then its background
   * (alpha 0); null when it would not fit one storage buffer (see hrRgbaParts). */
  hrRgba: Tensor | null;
  /** The same textures as pieces along dim 0, in order, each within one buffer. */
  hrRgbaParts: Tensor[];
  /** [B*(L + 1), 4, HL, HL] the low-res counterparts, same order (rgb, alpha of the gridded
   * manifolds; the background's rgb with alpha 0). */
  lrRgba: Tensor;
  /** The SR style per element [B, styleDim], before truncation. */
  style: Tensor;
  /** The super-resolution intermediates, when asked for. */
  superResolution?: GramHDIntermediates;
}

/** Largest number of float32 values one tensor may hold. */
function maxTensorValues(): number {
  return Math.floor(Math.min(engineDevice().info.limits.maxStorageBufferBindingSize, 2 ** 28) / 4);
}

const upload = (values: ArrayLike<number>, shape: number[]) => Tensor.fromData(Float32Array.from(values), shape);

/** bg_map: [-1, 1] grid coordinates -> background plane coordinates, linear in the middle and
 * tan-stretched beyond +-0.5 so the plane extends far enough for side views. */
export function bgMap(t: number): number {
  if (t < -0.5) return 0.24 * Math.tan(t + 0.5) - 0.12;
  if (t > 0.5) return 0.24 * Math.tan(t - 0.5) + 0.12;
  return 0.24 * t;
}

/** bg_invmap, elementwise on the GPU: plane coordinates -> grid coordinates. */
function bgInvMap(x: Tensor): Tensor {
  return ops.mapElements('bg-invmap', 'select(select(a / 0.24, atan((a - 0.12) / 0.24) + 0.5, a > 0.12), atan((a + 0.12) / 0.24) - 0.5, a < -0.12)', [x]);
}

/**
 * grid_sample coordinates (align_corners=False) that reproduce a bilinear align_corners=True
 * upsampling from `lowSize` to `highSize`: output index i reads source i (low-1)/(high-1), i.e. the
 * grid value (2 source + 1) / low - 1. Rows `row0 .. row0 + rows` of the output: [1, rows, high, 2].
 */
function upsampleGrid(lowSize: number, highSize: number, row0: number, rows: number): Tensor {
  const ratio = highSize > 1 ? (lowSize - 1) / (highSize - 1) : 0;
  const coord = (i: number) => (2 * i * ratio + 1) / lowSize - 1;
  const data = new Float32Array(rows * highSize * 2);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < highSize; c++) {
      data[2 * (r * highSize + c)] = coord(c);
      data[2 * (r * highSize + c) + 1] = coord(row0 + r);
    }
  }
  return Tensor.fromData(data, [1, rows, highSize, 2]);
}

/** The manifolds gridded once for all elements (they depend on neither z nor the camera). */
interface ManifoldGrid {
  /** [1, G, L, 3] intersections of the parallel rays, G = HL*HL row-major (row = y). */
  points: Tensor;
  /** [1, G, L, 1] */
  isValid: Tensor;
  /** [1, G, 1, 3] the background grid on the plane z = -0.12. */
  background: Tensor;
}

/** Steps 2-5 of the forward (GramHDGenerator.superResolve), per element where listed. */
export interface SuperResolved {
  /** [B*L, 4 + feature_dim, HL, HL] */
  lrFeatures: Tensor;
  /** [B, 3, HL, HL] */
  srBgIn: Tensor;
  /** Per element, the raw StyleRRDBNet output in pieces (released unless intermediates were asked for). */
  rawParts: Tensor[][];
  /** Per element, its L textures [n, 4, H, H] in pieces along dim 0, alpha through the sigmoid. */
  textures: Tensor[][];
  /** [B, 3, H, H] */
  srBgOut: Tensor;
}

/** The GRAM-HD generator: GRAM's representation (frozen but for the feature heads) and the two SR
 * networks, under the authors' state_dict names. */
export class GramHDGenerator extends GramGenerator {
  super_resolution: StyleRRDBNet;
  super_resolution_bg: RRDBNet;
  declare readonly config: GramHDConfig;

  constructor(config: GeneratorConfig, rng: Random = defaultRandom()) {
    if (!isGramHD(config)) throw new Error(`GramHDGenerator: configuration '${config.name ?? config.generator}' is not a GRAM-HD one`);
    super(config, rng);
    const scaleFactor = config.img_size / config.lr_img_size;
    const { fg, bg } = config.super_resolution;
    this.super_resolution = new StyleRRDBNet(4 + config.feature_dim, 4, fg, { scaleFactor, rng });
    this.super_resolution_bg = new RRDBNet(3, 3, bg, { scaleFactor, rng });
  }

  get scaleFactor(): number {
    return this.config.img_size / this.config.lr_img_size;
  }

  override dispose(): void {
    super.dispose();
    this.super_resolution.setAvgStyle(null);
  }

  /**
   * get_avg_w for both mapping networks from the same latents: z [count, z_dim], or `count`
   * normals drawn from `rng`. Sets the FiLM code averages and the SR avg_style.
   */
  override computeTruncationAverage(z: Tensor | Random = defaultRandom(), count = 10000): FilmCodes {
    const latents = z instanceof Tensor ? z : Tensor.fromData(z.normalArray(count * this.config.z_dim), [count, this.config.z_dim]);
    try {
      const codes = super.computeTruncationAverage(latents);
      this.super_resolution.computeAvgStyle(latents);
      return codes;
    } finally {
      if (latents !== z) latents.dispose();
    }
  }

  /** Sets all three truncation averages from stored values ([1, codeDim], [1, codeDim], [1, styleDim]). */
  setTruncationAverages(average: FilmCodes, avgStyle: Tensor): void {
    this.setTruncationAverage(average);
    this.super_resolution.setAvgStyle(avgStyle);
  }

  /**
   * forward's high-res image, depth and low-res image where nothing is differentiated (render,
   * eval), computed densely: the gridded features feed the SR network even where invalid. With
   * lowRes false (FID, which looks at the high-res image alone) the low-res render is only traced
   * for its geometry, without the radiance network (~6% of a GRAMHD256 forward's multiply-adds).
   */
  override async renderVisible(z: Tensor, cameras: readonly Camera[], options: VisibleRenderOptions = {}): Promise<{ image: Tensor; depth: Tensor; lrImage?: Tensor }> {
    if (options.imgSize !== undefined && options.imgSize !== this.config.img_size) {
      throw new Error(`GRAM-HD renders at its configuration's size (${this.config.img_size}); --img_size is for GRAM checkpoints`);
    }
    const { truncationPsi = 1, lockViewDependence = false, chunkRays } = options;
    if (options.lowRes ?? true) {
      return tidy(() => noGrad(() => {
        const out = this.forward(z, cameras, { truncationPsi, lockViewDependence, chunkRays });
        return { image: out.image, depth: out.depth, lrImage: out.lrImage };
      }));
    }
    this.checkLatents(z, cameras);
    return tidy(() => noGrad(() => {
      const { used, usedStyle } = this.mapLatents(z, truncationPsi);
      const { textures, srBgOut } = this.superResolve(used, usedStyle, lockViewDependence ? null : cameras, { chunkRays });
      const perElement = textures.map((manifolds, e) => ({ manifolds, background: ops.narrow(srBgOut, 0, e, 1) }));
      const { image, depth } = renderGramHDViews(this, null, perElement, cameras, { lockViewDependence, chunkRays });
      return { image, depth };
    }));
  }

  protected override checkLatents(z: Tensor, cameras: readonly Camera[]): void {
    if (z.rank !== 2 || z.shape[0] !== cameras.length || z.shape[1] !== this.config.z_dim) {
      throw new Error(`GramHDGenerator: z [${z.shape.join(', ')}] must be [B, ${this.config.z_dim}] with one camera per element (${cameras.length} given)`);
    }
  }

  /**
   * z [B, z_dim] and one camera per element -> the high-res image [B, 3, H, H] and depth, the
   * low-res render, both sets of textures and (when asked for) the SR intermediates.
   */
  override forward(z: Tensor, cameras: readonly Camera[], options: GramHDRenderOptions = {}): GramHDOutput {
    const b = cameras.length;
    this.checkLatents(z, cameras);
    const psi = options.truncationPsi ?? 1;
    const { config } = this;
    const hl = config.lr_img_size;
    const h = config.img_size;
    const l = config.renderer.num_manifolds - 1;
    const lock = options.lockViewDependence ?? false;
    const keep = options.intermediates ?? false;
    const profile = options.profile ?? ((_stage, fn) => fn());
    const { raw, used, style, usedStyle } = profile('mapping', () => this.mapLatents(z, psi));

    // 2-5. gridding, radiance at the grid points and both SR networks: with locked view dependence
    // nothing here depends on the camera (model/orbit.ts bakes exactly this once per latent)
    const { lrFeatures, srBgIn, rawParts, textures, srBgOut } = this.superResolve(used, usedStyle, lock ? null : cameras, { ...options, intermediates: keep });

    // 1, 6. the per-view part, the same code that renders the views of a bake: the low-res render
    // and the high-res texture lookups and compositing along its geometry
    const view = renderGramHDViews(this, used, textures.map((manifolds, e) => ({ manifolds, background: ops.narrow(srBgOut, 0, e, 1) })), cameras,
      { lockViewDependence: lock, chunkRays: options.chunkRays, chunkPixels: options.chunkPixels, profile });

    // 7. textures and intermediates
    return profile('high-res sampling + compositing', () => {
      // per element: its L manifolds, then its background (the golden vectors render each element
      // alone; for B = 1, as in all GRAM-HD training and inference, this is the reference's order)
      const hrBg = ops.concat([srBgOut, ops.zeros([b, 1, h, h])], 1);
      const hrRgbaParts = textures.flatMap((parts, e) => [...parts, ops.narrow(hrBg, 0, e, 1)]);
      const fits = (n: number, size: number) => n * 4 * size * size <= maxTensorValues();
      const hrRgba = fits(b * (l + 1), h) ? ops.concat(hrRgbaParts, 0) : null;
      const lrBg = ops.concat([srBgIn, ops.zeros([b, 1, hl, hl])], 1);
      const lrRgba = ops.concat(cameras.flatMap((_, e) => [ops.narrow(lrFeatures, 0, e * l, l), ops.narrow(lrBg, 0, e, 1)]).map((t) => ops.narrow(t, 1, 0, 4)), 0);
      const result: GramHDOutput = {
        image: view.image, depth: view.depth, lrImage: view.lrImage!, lrDepth: view.lrDepth!, hrRgba, hrRgbaParts, lrRgba, style, ...raw,
      };
      if (keep) {
        result.superResolution = { lrFeatures, srOut: fits(b * l, h) ? ops.concat(rawParts.flat(), 0) : null, srBgIn, srBgOut };
      }
      return result;
    });
  }

  /** The FiLM codes and SR style for z [B, z_dim]: as mapped (raw, style) and truncated (used, usedStyle). */
  mapLatents(z: Tensor, psi: number): { raw: FilmCodes; used: FilmCodes; style: Tensor; usedStyle: Tensor } {
    const { raw, used } = this.codes(z, psi);
    const style = this.super_resolution.mapping_network.forward(z);
    return { raw, used, style, usedStyle: this.truncatedStyle(style, psi) };
  }

  /**
   * Steps 2-5 of the forward for B elements (codes [B, codeDim], style [B, styleDim]): gridding,
   * radiance and features at the grid points, StyleRRDBNet and RRDBNet. `cameras` gives each
   * element's camera for the gridded points' view directions; null locks them to (0, 0, -1), and
   * then nothing here depends on a camera. Textures per element, in pieces of at most
   * chunkManifolds along dim 0 ([n, 4, H, H], alpha through its sigmoid); background [B, 3, H, H].
   */
  superResolve(used: FilmCodes, usedStyle: Tensor, cameras: readonly Camera[] | null, options: GramHDRenderOptions = {}): SuperResolved {
    const b = used.frequencies.shape[0];
    const h = this.config.img_size;
    const l = this.config.renderer.num_manifolds - 1;
    const profile = options.profile ?? ((_stage, fn) => fn());
    // 2-3. gridding and radiance at the grid points
    const { lrFeatures, srBgIn } = profile('gridding + feature radiance', () => {
      const grid = noGrad(() => this.gridManifolds(options.chunkRays));
      const gridded = Array.from({ length: b }, (_, e) => this.griddedImages(grid, cameras?.[e] ?? null, {
        frequencies: ops.narrow(used.frequencies, 0, e, 1),
        phase_shifts: ops.narrow(used.phase_shifts, 0, e, 1),
      }, options.chunkRays));
      return { lrFeatures: ops.concat(gridded.map((g) => g.manifolds), 0), srBgIn: ops.concat(gridded.map((g) => g.background), 0) };
    });

    // 4. StyleRRDBNet per element, in passes whose output fits one buffer
    const perPass = Math.max(1, Math.min(l, options.chunkManifolds ?? Math.floor(maxTensorValues() / (4 * h * h))));
    const { rawParts, textures } = profile('SR (StyleRRDBNet)', () => {
      const rawParts: Tensor[][] = Array.from({ length: b }, (_, e) => {
        const parts: Tensor[] = [];
        for (let start = 0; start < l; start += perPass) {
          const count = Math.min(perPass, l - start);
          parts.push(this.super_resolution.forwardWithStyle(ops.narrow(lrFeatures, 0, e * l + start, count), ops.narrow(usedStyle, 0, e, 1)));
        }
        return parts;
      });
      const textures = rawParts.map((parts) => parts.map(withAlphaSigmoid));
      if (!options.intermediates) release(...rawParts.flat());
      return { rawParts, textures };
    });

    // 5. RRDBNet on the background plane; its texture's alpha is 0 (compositing forces it to 1)
    const srBgOut = profile('SR background (RRDBNet)', () => this.super_resolution_bg.forward(srBgIn));
    return { lrFeatures, srBgIn, rawParts, textures, srBgOut };
  }

  /** The SR style lerped towards avg_style when psi < 1. */
  private truncatedStyle(style: Tensor, psi: number): Tensor {
    if (psi === 1) return style;
    const average = this.super_resolution.avgStyle;
    if (!average) throw new Error('truncation needs the averages: call computeTruncationAverage() or setTruncationAverages() first');
    return ops.lerp(average, style, psi);
  }

  /**
   * Manifold gridding: HL x HL parallel rays from (x, y, 1) along (0, 0, -1), x and y in
   * linspace(-fov/100, fov/100) (y the row), sampled at the renderer's depths and intersected with
   * the L levels; and the background grid (bg_map(u), bg_map(v), -0.12).
   */
  private gridManifolds(chunkRays?: number): ManifoldGrid {
    const { camera, renderer } = this.config;
    const hl = this.config.lr_img_size;
    const g = hl * hl;
    const s = renderer.num_samples;
    const coords = linspace(-camera.fov / 100, camera.fov / 100, hl);
    const depths = linspace(camera.ray_start, camera.ray_end, s);
    const sampleHidden = this.representation.sample_network.output_layer.inFeatures;
    const chunk = Math.max(1, Math.min(g, chunkRays ?? Math.floor(maxTensorValues() / (s * Math.max(sampleHidden, renderer.num_manifolds)))));
    const levels = upload(manifoldLevels(renderer), [renderer.num_manifolds - 1]);
    const points: Tensor[] = [];
    const valid: Tensor[] = [];
    for (let start = 0; start < g; start += chunk) {
      const n = Math.min(chunk, g - start);
      // written element by element: an array literal per sample made this loop ~40 ms of the
      // forward's host time (GRAMHD256: 4096 rays x 64 samples)
      const samples = new Float32Array(n * s * 3);
      for (let i = 0; i < n; i++) {
        const p = start + i;
        const x = coords[p % hl];
        const y = coords[Math.floor(p / hl)];
        for (let k = 0, at = 3 * i * s; k < s; k++, at += 3) {
          samples[at] = x;
          samples[at + 1] = y;
          samples[at + 2] = 1 - depths[k];
        }
      }
      const hits = step(() => {
        const samplePoints = Tensor.fromData(samples, [1, n, s, 3]);
        return intersectManifolds(samplePoints, this.representation.sample_network.forward(samplePoints), levels);
      });
      points.push(hits.points);
      valid.push(hits.isValid);
    }
    const uv = linspace(-1, 1, hl);
    const background = new Float32Array(g * 3);
    for (let p = 0; p < g; p++) {
      background[3 * p] = bgMap(uv[p % hl]);
      background[3 * p + 1] = bgMap(uv[Math.floor(p / hl)]);
      background[3 * p + 2] = BACKGROUND_PLANE_Z;
    }
    return { points: ops.concat(points, 1), isValid: ops.concat(valid, 1), background: Tensor.fromData(background, [1, g, 1, 3]) };
  }

  /**
   * Radiance and features at the grid points for one element: the L manifold images
   * [L, 4 + feature_dim, HL, HL] (rgb, alpha = (1 - exp(-0.04 sigma)) is_valid, features) and the
   * background's rgb [1, 3, HL, HL]. View directions point from the element's camera (camera null: locked).
   */
  private griddedImages(grid: ManifoldGrid, camera: Camera | null, codes: FilmCodes, chunkRays?: number): { manifolds: Tensor; background: Tensor } {
    const hl = this.config.lr_img_size;
    const g = hl * hl;
    const m = this.config.renderer.num_manifolds;
    const l = m - 1;
    const f = this.config.feature_dim;
    const network = this.representation.rf_network;
    const chunk = Math.max(1, Math.min(g, chunkRays ?? Math.floor(maxTensorValues() / (m * (network.options.hiddenDim + 3)))));
    const origin = camera && upload(camera.origin, [1, 1, 1, 3]);
    const parts: Tensor[] = [];
    for (let start = 0; start < g; start += chunk) {
      const n = Math.min(chunk, g - start);
      const [points, isValid, directions] = noGrad(() => {
        const points = ops.concat([ops.narrow(grid.points, 1, start, n), ops.narrow(grid.background, 1, start, n)], 2);
        const isValid = ops.concat([ops.narrow(grid.isValid, 1, start, n), ops.ones([1, n, 1, 1])], 2);
        const toPoints = origin && ops.sub(points, origin);
        const directions = toPoints
          ? ops.div(toPoints, ops.sqrt(ops.sum(ops.square(toPoints), -1, true)))
          : ops.mul(ops.ones([1, n, m, 3]), Tensor.fromData([0, 0, -1], [3]));
        return [points, isValid, directions];
      });
      const { rgbSigma, feature } = network.forward(ops.reshape(points, [1, n * m, 3]), ops.reshape(directions, [1, n * m, 3]), codes, { feature: true });
      const rgb = ops.reshape(ops.narrow(rgbSigma, 2, 0, 3), [n, m, 3]);
      const sigma = ops.reshape(ops.narrow(rgbSigma, 2, 3, 1), [n, m, 1]);
      const alpha = ops.mul(ops.rsub(1, ops.exp(ops.mul(sigma, -MANIFOLD_DELTA))), ops.reshape(isValid, [n, m, 1]));
      // [n, M, 4 + F]: rgb, alpha, features (the background's alpha and features go unused)
      parts.push(ops.concat([rgb, alpha, ops.reshape(feature!, [n, m, f])], 2));
    }
    const all = ops.permute(ops.reshape(ops.concat(parts, 0), [hl, hl, m, 4 + f]), [2, 3, 0, 1]);
    return {
      manifolds: ops.narrow(all, 0, 0, l),
      background: ops.narrow(ops.narrow(all, 0, l, 1), 1, 0, 3),
    };
  }

  /**
   * The high-res composite of one element: geometry [1, 4L + 3, HL, HL] (the low-res intersection
   * points, validity and background points as channels), textures [L, 4, H, H] in pieces along
   * dim 0, the background texture [1, 3, H, H] -> rgb [1, H*H, 3] (widened [0, 1]) and depth [1, H*H, 1].
   */
  renderHighRes(geometry: Tensor, textures: Tensor[], background: Tensor, camera: Camera, chunkPixels?: number): { rgb: Tensor; depth: Tensor } {
    const hl = this.config.lr_img_size;
    const h = this.config.img_size;
    const m = this.config.renderer.num_manifolds;
    const l = m - 1;
    const fov = this.config.camera.fov;
    const rowsPerPass = Math.max(1, Math.min(h, Math.floor((chunkPixels ?? Math.floor(maxTensorValues() / (4 * geometry.shape[1] + 8))) / h)));
    const origin = upload(camera.origin, [1, 3]);
    const rgbs: Tensor[] = [];
    const depths: Tensor[] = [];
    for (let row0 = 0; row0 < h; row0 += rowsPerPass) {
      const rows = Math.min(rowsPerPass, h - row0);
      const r = rows * h;
      const out = step(() => {
        const { points, isValid, textureGrid, backgroundGrid } = noGrad(() => {
          // bilinear align_corners=True upsampling of the geometry, rows row0 .. row0 + rows
          const up = ops.gridSample(geometry, upsampleGrid(hl, h, row0, rows));
          const manifoldPoints = ops.reshape(ops.narrow(up, 1, 0, 3 * l), [l, 3, rows, h]);
          const bgPoints = ops.narrow(up, 1, 4 * l, 3);
          const points = ops.concat([
            ops.reshape(ops.permute(manifoldPoints, [2, 3, 0, 1]), [1, r, l, 3]),
            ops.reshape(ops.permute(bgPoints, [0, 2, 3, 1]), [1, r, 1, 3]),
          ], 2);
          const valid = ops.reshape(ops.permute(ops.gt(ops.narrow(up, 1, 3 * l, l), 0.99), [0, 2, 3, 1]), [1, r, l, 1]);
          const isValid = ops.concat([valid, ops.ones([1, r, 1, 1])], 2);
          const textureGrid = ops.mul(ops.permute(ops.narrow(manifoldPoints, 1, 0, 2), [0, 2, 3, 1]), 100 / fov);
          const backgroundGrid = bgInvMap(ops.permute(ops.narrow(bgPoints, 1, 0, 2), [0, 2, 3, 1]));
          return { points, isValid, textureGrid, backgroundGrid };
        });
        let start = 0;
        const looked = textures.map((texture) => {
          const n = texture.shape[0];
          const sampled = ops.gridSample(texture, ops.narrow(textureGrid, 0, start, n), { padding: 'zeros' });
          start += n;
          return sampled;
        });
        const manifolds = ops.reshape(ops.permute(ops.concat(looked, 0), [2, 3, 0, 1]), [1, r, l, 4]);
        const bgRgb = ops.reshape(ops.permute(ops.gridSample(background, backgroundGrid, { padding: 'reflection' }), [0, 2, 3, 1]), [1, r, 1, 3]);
        const rgba = ops.concat([manifolds, ops.concat([bgRgb, ops.ones([1, r, 1, 1])], 3)], 2);
        const distances = noGrad(() => ops.sqrt(ops.sum(ops.square(ops.sub(points, ops.reshape(origin, [1, 1, 1, 3]))), -1, true)));
        const sorted = sortByDistance(distances, [rgba, isValid]);
        const [sortedRgba, sortedValid] = sorted.values;
        const alpha = ops.mul(ops.narrow(sortedRgba, 3, 3, 1), sortedValid);
        const { sums: [rgb, depth] } = alphaComposite(alpha, [ops.narrow(sortedRgba, 3, 0, 3), sorted.distances]);
        return { rgb, depth };
      });
      rgbs.push(out.rgb);
      depths.push(out.depth);
    }
    return { rgb: ops.concat(rgbs, 1), depth: ops.concat(depths, 1) };
  }
}
