// GRAM (stage one): a latent code z and a camera -> an image rendered from radiance manifolds.
// Rays are sampled at S depths; the sample network's scalar field is intersected with L levels; the
// radiance network (conditioned on z through the mapping network) shades the L intersections and a
// background-plane point per ray; the M = L + 1 points are composited front to back.
import { engineDevice, noGrad, ops, Tensor, tidy, tidyAsync } from '../engine/index.ts';
import { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import { linspace, planeIntersections, sampleCameras, worldRays, type Camera } from './camera.ts';
import { compositeManifolds, distancesFrom } from './composite.ts';
import { isGramHD, type CameraConfig, type GeneratorConfig, type RendererConfig } from './config.ts';
import { intersectManifolds, manifoldLevels, type Intersections } from './intersection.ts';
import { truncate, type FilmCodes } from './mapping.ts';
import { RadianceNetwork } from './radiance-network.ts';
import { SampleNetwork } from './sample-network.ts';
import { step } from './scope.ts';

/** The two networks of the representation, under the authors' names. */
export class GramRepresentation extends Module {
  sample_network: SampleNetwork;
  rf_network: RadianceNetwork;

  constructor(config: GeneratorConfig, rng: Random = defaultRandom()) {
    super();
    const r = config.representation;
    this.sample_network = new SampleNetwork({ hiddenDim: r.hidden_dim_sample, layers: r.layer_num_sample, center: r.center, initRadius: r.init_radius }, rng);
    this.rf_network = new RadianceNetwork({
      zDim: config.z_dim,
      hiddenDim: r.hidden_dim,
      featureDim: isGramHD(config) ? config.feature_dim : 0,
      sigmaClamp: r.sigma_clamp_mode,
      rgbClamp: r.rgb_clamp_mode,
    }, rng);
  }
}

export interface RenderOptions {
  /** Image height and width (default: the configuration's img_size). */
  imgSize?: number;
  /** View direction (0, 0, -1) for every point, as for videos and multi-view grids. */
  lockViewDependence?: boolean;
  /** Also return every intermediate (the golden case checks them). */
  intermediates?: boolean;
  /** Rays rendered per pass; default: as many as keep every intermediate within one storage binding. */
  chunkRays?: number;
  /** Wraps each stage of the forward (see GRAM_STAGES; the per-ray ones once per chunk of rays) so
   * a profiler can time it (cli/bench/model.ts); default: runs it, adding no synchronisation. */
  profile?: StageProfiler;
}

/** Runs one named stage of a generator's forward; must return fn's result. */
export type StageProfiler = <T>(stage: string, fn: () => T) => T;

/** GRAM's forward stages, in order, as passed to RenderOptions.profile. */
export const GRAM_STAGES = ['mapping', 'sample network + intersection', 'radiance', 'compositing'] as const;

const runStage: StageProfiler = (_stage, fn) => fn();

export interface GramIntermediates {
  /** [B, R, S, 3] world-space sample points, R = H*W rays row-major. */
  samplePoints: Tensor;
  /** [L] */
  levels: Tensor;
  /** [B, R, S, 1] the sample network's field at the sample points. */
  scalarField: Tensor;
  /** [B, R, L, 3] */
  intersections: Tensor;
  /** [B, R, L, 1] */
  isValid: Tensor;
  /** [B, R*M, 4] rgb and sigma at the intersections and the background point, before sorting. */
  radiance: Tensor;
}

export interface RenderOutput {
  /** [B, 3, H, W] in [-1, 1]. */
  image: Tensor;
  /** [B, H, W, 1] */
  depth: Tensor;
  intermediates?: GramIntermediates;
}

export interface GramOutput extends RenderOutput, FilmCodes {}

/** Per-ray outputs of one pass over a chunk of rays of one batch element (batch dimension 1). */
interface RayChunk {
  /** Absent when only the intersections were traced. */
  rgb?: Tensor;
  depth?: Tensor;
  samplePoints?: Tensor;
  scalarField?: Tensor;
  intersections?: Tensor;
  isValid?: Tensor;
  radiance?: Tensor;
}

/** Upload helper: float64 host values as an f32 tensor. */
const upload = (values: ArrayLike<number>, shape: number[]) => Tensor.fromData(Float32Array.from(values), shape);

/** Largest number of float32 values one intermediate may hold. */
function maxTensorValues(): number {
  return Math.floor(Math.min(engineDevice().info.limits.maxStorageBufferBindingSize, 2 ** 28) / 4);
}

/**
 * Renders the manifolds of `representation` for each camera with that element's FiLM codes
 * ([B, codeDim] each, truncation already applied): each batch element with its own camera.
 */
export function renderManifolds(representation: GramRepresentation, codes: FilmCodes, cameras: readonly Camera[],
  settings: { camera: CameraConfig; renderer: RendererConfig; imgSize: number }, options: RenderOptions = {}): RenderOutput {
  if (codes.frequencies.shape[0] !== cameras.length) throw new Error(`render: ${codes.frequencies.shape[0]} latent codes for ${cameras.length} cameras`);
  const size = options.imgSize ?? settings.imgSize;
  const keep = options.intermediates ?? false;
  const profile = options.profile ?? runStage;
  const elements = traceRays(representation, codes, cameras, settings, options);
  const all = (key: keyof RayChunk) => ops.concat(elements.map((e) => e[key]!), 0);
  const b = cameras.length;
  const [image, depth] = profile('compositing', () => [
    ops.sub(ops.mul(ops.permute(ops.reshape(all('rgb'), [b, size, size, 3]), [0, 3, 1, 2]), 2), 1),
    ops.reshape(all('depth'), [b, size, size, 1]),
  ]);
  if (!keep) return { image, depth };
  return {
    image,
    depth,
    intermediates: {
      samplePoints: all('samplePoints'),
      levels: upload(manifoldLevels(settings.renderer), [settings.renderer.num_manifolds - 1]),
      scalarField: all('scalarField'),
      intersections: all('intersections'),
      isValid: all('isValid'),
      radiance: all('radiance'),
    },
  };
}

/**
 * Only the geometry of renderManifolds: where each camera's rays meet the manifolds, points
 * [B, R, L, 3] and validity [B, R, L, 1] (the sample network and intersection stage; no radiance).
 * The views of a baked GRAM-HD latent need nothing else of the low-res render.
 */
export function manifoldIntersections(representation: GramRepresentation, cameras: readonly Camera[],
  settings: { camera: CameraConfig; renderer: RendererConfig; imgSize: number }, options: RenderOptions = {}): Intersections {
  const elements = traceRays(representation, null, cameras, settings, options);
  return { points: ops.concat(elements.map((e) => e.intersections!), 0), isValid: ops.concat(elements.map((e) => e.isValid!), 0) };
}

/** The rays of each camera in chunks through renderRays (codes null: intersections only), joined per element. */
function traceRays(representation: GramRepresentation, codes: FilmCodes | null, cameras: readonly Camera[],
  settings: { camera: CameraConfig; renderer: RendererConfig; imgSize: number }, options: RenderOptions): RayChunk[] {
  const perElement: RayChunk[][] = cameras.map(() => []);
  for (const c of rayChunks(representation, codes, cameras, settings, options)) {
    perElement[c.element].push(step(() => renderRays(representation, c.codes, c.input())));
  }
  return perElement.map(joinChunks);
}

interface PendingChunk {
  element: number;
  /** The element's FiLM codes (null when only intersections are wanted). */
  codes: FilmCodes | null;
  /** Uploads the chunk's rays (called inside the scope that will own them). */
  input: () => RayInputs;
}

/** The chunks of rays of each camera, in order: as many rays per chunk as keep every intermediate
 * within one storage binding (or options.chunkRays). */
function* rayChunks(representation: GramRepresentation, codes: FilmCodes | null, cameras: readonly Camera[],
  settings: { camera: CameraConfig; renderer: RendererConfig; imgSize: number }, options: RenderOptions): Generator<PendingChunk> {
  const { camera, renderer } = settings;
  const size = options.imgSize ?? settings.imgSize;
  const rays = size * size;
  const s = renderer.num_samples;
  const m = renderer.num_manifolds;
  const hidden = representation.rf_network.options.hiddenDim;
  const sampleHidden = representation.sample_network.output_layer.inFeatures;
  const perRay = Math.max(s * sampleHidden, s * (m - 1), m * (hidden + 3));
  const chunk = Math.max(1, Math.min(rays, options.chunkRays ?? Math.floor(maxTensorValues() / perRay)));
  const depths = upload(linspace(camera.ray_start, camera.ray_end, s), [s, 1]);
  const levels = upload(manifoldLevels(renderer), [m - 1]);
  const keep = options.intermediates ?? false;
  const profile = options.profile ?? runStage;

  for (const [b, cam] of cameras.entries()) {
    const world = worldRays(cam, size, size, camera.fov);
    const background = planeIntersections(world);
    const origin = upload(cam.origin, [1, 3]);
    const elementCodes: FilmCodes | null = codes && { frequencies: ops.narrow(codes.frequencies, 0, b, 1), phase_shifts: ops.narrow(codes.phase_shifts, 0, b, 1) };
    for (let start = 0; start < rays; start += chunk) {
      const n = Math.min(chunk, rays - start);
      yield {
        element: b,
        codes: elementCodes,
        input: () => ({
          origin,
          directions: upload(world.directions.subarray(3 * start, 3 * (start + n)), [1, n, 1, 3]),
          background: upload(background.subarray(3 * start, 3 * (start + n)), [1, n, 1, 3]),
          depths,
          levels,
          lockViewDependence: options.lockViewDependence ?? false,
          keep,
          profile,
        }),
      };
    }
  }
}

function joinChunks(chunks: RayChunk[]): RayChunk {
  if (chunks.length === 1) return chunks[0];
  const joined: RayChunk = {};
  for (const key of ['rgb', 'depth', 'samplePoints', 'scalarField', 'intersections', 'isValid', 'radiance'] as const) {
    if (chunks[0][key]) joined[key] = ops.concat(chunks.map((c) => c[key]!), 1);
  }
  return joined;
}

interface RayInputs {
  /** [1, 3] camera origin. */
  origin: Tensor;
  /** [1, n, 1, 3] unit ray directions. */
  directions: Tensor;
  /** [1, n, 1, 3] where each ray meets the background plane. */
  background: Tensor;
  /** [S, 1] sample depths. */
  depths: Tensor;
  /** [L] */
  levels: Tensor;
  lockViewDependence: boolean;
  keep: boolean;
  profile: StageProfiler;
}

/** GRAM's rendering of n rays of one camera; with codes null, only their intersections. */
function renderRays(representation: GramRepresentation, codes: FilmCodes | null, input: RayInputs): RayChunk {
  const { samplePoints, scalarField, hits } = traceChunk(representation, input);
  if (!codes) return { intersections: hits.points, isValid: hits.isValid };
  const { rgb, depth, rgbSigma } = shadeChunk(representation, codes, input, hits, null);
  if (!input.keep) return { rgb, depth };
  return { rgb, depth, samplePoints, scalarField, intersections: hits.points, isValid: hits.isValid, radiance: rgbSigma };
}

/** The sample network along the rays and the manifold intersections. */
function traceChunk(representation: GramRepresentation, input: RayInputs): { samplePoints: Tensor; scalarField: Tensor; hits: Intersections } {
  const { origin, directions, depths, levels } = input;
  return input.profile('sample network + intersection', () => {
    // [1, n, S, 3]: no jitter, in training either (the reference hard-codes it off)
    const samplePoints = ops.add(ops.reshape(origin, [1, 1, 1, 3]), ops.mul(directions, depths));
    const scalarField = step(() => representation.sample_network.forward(samplePoints));
    const hits = step(() => intersectManifolds(samplePoints, scalarField, levels));
    return { samplePoints, scalarField, hits };
  });
}

/**
 * The radiance network at the n x M points (intersections, then the background point) and their
 * compositing. With `shaded`, only some points are shaded and the others get rgb and sigma 0:
 * exact when the others are the invalid intersections, whose opacity is 0 whatever the network
 * says. `shaded.points` (int32 [1, k, 3]) holds each shaded point's flat index into the n * M
 * points, repeated 3 times; `shaded.spread` (int32 [1, n * M, 4]) each point's position among
 * the k shaded ones, or k (a zero row) when it is not shaded, repeated 4 times: both are gathers.
 */
function shadeChunk(representation: GramRepresentation, codes: FilmCodes, input: RayInputs, hits: Intersections,
  shaded: { points: Tensor; spread: Tensor } | null): { rgb: Tensor; depth: Tensor; rgbSigma: Tensor } {
  const { origin, directions, background } = input;
  const n = directions.shape[1];
  const m = input.levels.size + 1;
  const { rgbSigma, distances, isValid } = input.profile('radiance', () => {
    const points = ops.concat([hits.points, background], 2);
    const isValid = ops.concat([hits.isValid, ops.ones([1, n, 1, 1])], 2);
    const distances = noGrad(() => distancesFrom(points, origin));
    const viewDirections = input.lockViewDependence
      ? ops.mul(ops.ones([1, n, m, 3]), Tensor.fromData([0, 0, -1], [3]))
      : ops.expand(directions, [1, n, m, 3]);
    const flatPoints = ops.reshape(points, [1, n * m, 3]);
    const flatDirections = ops.reshape(viewDirections, [1, n * m, 3]);
    if (!shaded) return { rgbSigma: representation.rf_network.forward(flatPoints, flatDirections, codes).rgbSigma, distances, isValid };
    const some = representation.rf_network.forward(ops.gather(flatPoints, 1, shaded.points), ops.gather(flatDirections, 1, shaded.points), codes).rgbSigma;
    return { rgbSigma: ops.gather(ops.concat([some, ops.zeros([1, 1, 4])], 1), 1, shaded.spread), distances, isValid };
  });
  const { rgb, depth } = input.profile('compositing', () => step(() => compositeManifolds(ops.reshape(rgbSigma, [1, n, m, 4]), distances, isValid)));
  return { rgb, depth, rgbSigma };
}

/**
 * renderManifolds for renders nothing is differentiated through, shading only the points that can
 * be seen: each chunk's intersections are traced, their validity read back, and the radiance
 * network runs on the valid intersections and the background points alone (at initialisation
 * about a third of the points; the rest have zero opacity, so the image and depth are the same).
 */
export async function renderManifoldsSparse(representation: GramRepresentation, codes: FilmCodes, cameras: readonly Camera[],
  settings: { camera: CameraConfig; renderer: RendererConfig; imgSize: number }, options: Omit<RenderOptions, 'intermediates'> = {}): Promise<RenderOutput> {
  if (codes.frequencies.shape[0] !== cameras.length) throw new Error(`render: ${codes.frequencies.shape[0]} latent codes for ${cameras.length} cameras`);
  const size = options.imgSize ?? settings.imgSize;
  const m = settings.renderer.num_manifolds;
  // one scope for the whole render: what the chunks upload and trace dies with it, whatever throws
  return tidyAsync(async () => {
    const perElement: { rgb: Tensor; depth: Tensor }[][] = cameras.map(() => []);
    for (const c of rayChunks(representation, codes, cameras, settings, options)) {
      const input = c.input();
      const hits = noGrad(() => tidy(() => traceChunk(representation, input).hits));
      const valid = await hits.isValid.toFloat32();
      const n = input.directions.shape[1];
      // the shaded points (valid intersections and every background point) and where each point's
      // radiance comes from
      const points: number[] = [];
      const spread = new Int32Array(n * m * 4);
      for (let p = 0; p < n * m; p++) {
        const level = p % m;
        if (level === m - 1 || valid[(p - level) / m * (m - 1) + level] !== 0) {
          spread.fill(points.length / 3, 4 * p, 4 * p + 4);
          points.push(p, p, p);
        } else {
          spread.fill(-1, 4 * p, 4 * p + 4);
        }
      }
      const k = points.length / 3;
      for (let i = 0; i < spread.length; i++) if (spread[i] < 0) spread[i] = k;
      perElement[c.element].push(noGrad(() => tidy(() => {
        const { rgb, depth } = shadeChunk(representation, c.codes!, input, hits, {
          points: Tensor.fromData(Int32Array.from(points), [1, k, 3], 'i32'),
          spread: Tensor.fromData(spread, [1, n * m, 4], 'i32'),
        });
        return { rgb, depth };
      })));
      for (const t of [input.directions, input.background, hits.points, hits.isValid]) t.dispose();
    }
    const b = cameras.length;
    const all = (key: 'rgb' | 'depth') => ops.concat(perElement.map((chunks) => (chunks.length === 1 ? chunks[0][key] : ops.concat(chunks.map((ch) => ch[key]), 1))), 0);
    return noGrad(() => ({
      image: ops.sub(ops.mul(ops.permute(ops.reshape(all('rgb'), [b, size, size, 3]), [0, 3, 1, 2]), 2), 1),
      depth: ops.reshape(all('depth'), [b, size, size, 1]),
    }));
  });
}

/** renderVisible's options: forward's, which points are shaded ('auto': see renderVisible), and
 * for GRAM-HD whether the low-res image is wanted too (default true). */
export type VisibleRenderOptions = Omit<RenderOptions, 'intermediates' | 'profile'> & { truncationPsi?: number; shading?: 'auto' | 'sparse' | 'dense'; lowRes?: boolean };

/** Multiply-adds of one radiance layer over an image's points (pixels x manifolds x hidden^2) from
 * which renderVisible shades sparsely: GRAM64's is 6.4e9, the shipped 32x32 model's 1.3e7. */
const SPARSE_SHADING_MIN_WORK = 2 ** 30;

/** The GRAM generator: mapping network, manifold renderer, truncation averages. */
export class GramGenerator extends Module {
  representation: GramRepresentation;
  /** Truncation averages [1, codeDim]: the mapping of the mean w. Not state (the reference keeps
   * them as attributes, recomputed by get_avg_w). */
  avg_frequencies: Tensor | null = null;
  avg_phase_shifts: Tensor | null = null;

  constructor(readonly config: GeneratorConfig, rng: Random = defaultRandom()) {
    super();
    this.representation = new GramRepresentation(config, rng);
  }

  /** Frees every GPU tensor the generator holds. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
    this.representation.sample_network.dispose();
    this.avg_frequencies?.dispose();
    this.avg_phase_shifts?.dispose();
  }

  /** Training cameras from the configuration's pose distribution. */
  sampleCameras(n: number, rng: Random): Camera[] {
    return sampleCameras(n, this.config.pose, rng);
  }

  /** Sets the truncation averages ([1, codeDim] each; copies are kept). */
  setTruncationAverage(average: FilmCodes): void {
    const [frequencies, phaseShifts] = noGrad(() => [ops.clone(average.frequencies).keep(), ops.clone(average.phase_shifts).keep()]);
    this.avg_frequencies?.dispose();
    this.avg_phase_shifts?.dispose();
    this.avg_frequencies = frequencies;
    this.avg_phase_shifts = phaseShifts;
  }

  /**
   * get_avg_w: the FiLM codes of the mean w over `z` ([count, z_dim], by default 10000 normals drawn
   * from `rng`), stored as the truncation averages. GRAM-HD feeds the same z to its SR mapping.
   */
  computeTruncationAverage(z: Tensor | Random = defaultRandom(), count = 10000): FilmCodes {
    const mapping = this.representation.rf_network.mapping_network;
    tidy(() => noGrad(() => {
      const latents = z instanceof Tensor ? z : Tensor.fromData(z.normalArray(count * mapping.zDim), [count, mapping.zDim]);
      this.setTruncationAverage(mapping.fromW(ops.mean(mapping.w(latents), 0, true)));
    }));
    return { frequencies: this.avg_frequencies!, phase_shifts: this.avg_phase_shifts! };
  }

  /** The FiLM codes for z [B, z_dim], lerped towards the averages when psi < 1. */
  codes(z: Tensor, truncationPsi = 1): { raw: FilmCodes; used: FilmCodes } {
    const raw = this.representation.rf_network.mapping_network.forward(z);
    if (truncationPsi === 1) return { raw, used: raw };
    if (!this.avg_frequencies || !this.avg_phase_shifts) {
      throw new Error('truncation needs the averages: call computeTruncationAverage() or setTruncationAverage() first');
    }
    return { raw, used: truncate(raw, { frequencies: this.avg_frequencies, phase_shifts: this.avg_phase_shifts }, truncationPsi) };
  }

  /**
   * forward's image and depth where nothing is differentiated (render, eval). On CPU adapters, for
   * models whose radiance network does enough work per image, it shades only the valid
   * intersections and the background points (renderManifoldsSparse), since the others have zero
   * opacity. At initialisation ~80% of a frontal view's points are valid, in the authors' code as in
   * ours; a trained model's rays past the head miss its manifolds. Measured on lavapipe: GRAM64_FFHQ
   * at initialisation 13% faster frontal, 33% tilted; the 32x32 shipped model (hidden 32) 25% slower
   * (the validity readback and the gathers outweigh its small network), hence the threshold. GPUs
   * render densely: there the readback would stall the queue, and it was not measured.
   */
  async renderVisible(z: Tensor, cameras: readonly Camera[], options: VisibleRenderOptions = {}): Promise<{ image: Tensor; depth: Tensor }> {
    this.checkLatents(z, cameras);
    if (!this.shadesSparsely(options)) {
      return tidy(() => noGrad(() => {
        const { image, depth } = this.forward(z, cameras, options);
        return { image, depth };
      }));
    }
    return tidyAsync(async () => {
      const { used } = noGrad(() => this.codes(z, options.truncationPsi ?? 1));
      return renderManifoldsSparse(this.representation, used, cameras, { camera: this.config.camera, renderer: this.config.renderer, imgSize: this.config.img_size }, options);
    });
  }

  /** Whether renderVisible with these options shades only the visible points. */
  shadesSparsely(options: Pick<VisibleRenderOptions, 'imgSize' | 'shading'> = {}): boolean {
    const shading = options.shading ?? 'auto';
    if (shading !== 'auto') return shading === 'sparse';
    const size = options.imgSize ?? this.config.img_size;
    const work = size * size * this.config.renderer.num_manifolds * this.representation.rf_network.options.hiddenDim ** 2;
    return engineDevice().info.isSoftware && work >= SPARSE_SHADING_MIN_WORK;
  }

  protected checkLatents(z: Tensor, cameras: readonly Camera[]): void {
    if (z.rank !== 2 || z.shape[0] !== cameras.length) {
      throw new Error(`GramGenerator: z [${z.shape.join(', ')}] must be [B, ${this.config.z_dim}] with one camera per element (${cameras.length} given)`);
    }
  }

  /**
   * z [B, z_dim] and one camera per element -> image [B, 3, H, W] in [-1, 1], depth [B, H, W, 1],
   * the mapping outputs (before truncation) and, when asked for, every intermediate.
   */
  forward(z: Tensor, cameras: readonly Camera[], options: RenderOptions & { truncationPsi?: number } = {}): GramOutput {
    this.checkLatents(z, cameras);
    const { raw, used } = (options.profile ?? runStage)('mapping', () => this.codes(z, options.truncationPsi ?? 1));
    const out = renderManifolds(this.representation, used, cameras, { camera: this.config.camera, renderer: this.config.renderer, imgSize: this.config.img_size }, options);
    return { ...out, ...raw };
  }
}
