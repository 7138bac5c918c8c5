// GRAM (stage one): a latent code z and a camera -> an image rendered from radiance manifolds.
// Rays are sampled at S depths; the sample network's scalar field is intersected with L levels; the
// radiance network (conditioned on z through the mapping network) shades the L intersections and a
// background-plane point per ray; the M = L + 1 points are composited front to back.
import { engineDevice, noGrad, ops, Tensor, tidy } from '../engine/index.ts';
import { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import { linspace, planeIntersections, sampleCameras, worldRays, type Camera } from './camera.ts';
import { compositeManifolds, distancesFrom } from './composite.ts';
import { isGramHD, type CameraConfig, type GeneratorConfig, type RendererConfig } from './config.ts';
import { intersectManifolds, manifoldLevels } from './intersection.ts';
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
  rgb: Tensor;
  depth: Tensor;
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
  const { camera, renderer } = settings;
  const size = options.imgSize ?? settings.imgSize;
  const rays = size * size;
  const s = renderer.num_samples;
  const m = renderer.num_manifolds;
  const hidden = representation.rf_network.options.hiddenDim;
  const sampleHidden = representation.sample_network.output_layer.inFeatures;
  if (codes.frequencies.shape[0] !== cameras.length) throw new Error(`render: ${codes.frequencies.shape[0]} latent codes for ${cameras.length} cameras`);
  const perRay = Math.max(s * sampleHidden, s * (m - 1), m * (hidden + 3));
  const chunk = Math.max(1, Math.min(rays, options.chunkRays ?? Math.floor(maxTensorValues() / perRay)));
  const depths = upload(linspace(camera.ray_start, camera.ray_end, s), [s, 1]);
  const levels = upload(manifoldLevels(renderer), [m - 1]);
  const keep = options.intermediates ?? false;
  const profile = options.profile ?? runStage;

  const elements = cameras.map((cam, b) => {
    const world = worldRays(cam, size, size, camera.fov);
    const background = planeIntersections(world);
    const origin = upload(cam.origin, [1, 3]);
    const elementCodes: FilmCodes = { frequencies: ops.narrow(codes.frequencies, 0, b, 1), phase_shifts: ops.narrow(codes.phase_shifts, 0, b, 1) };
    const chunks: RayChunk[] = [];
    for (let start = 0; start < rays; start += chunk) {
      const n = Math.min(chunk, rays - start);
      chunks.push(step(() => renderRays(representation, elementCodes, {
        origin,
        directions: upload(world.directions.subarray(3 * start, 3 * (start + n)), [1, n, 1, 3]),
        background: upload(background.subarray(3 * start, 3 * (start + n)), [1, n, 1, 3]),
        depths,
        levels,
        lockViewDependence: options.lockViewDependence ?? false,
        keep,
        profile,
      })));
    }
    return joinChunks(chunks);
  });
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
      levels,
      scalarField: all('scalarField'),
      intersections: all('intersections'),
      isValid: all('isValid'),
      radiance: all('radiance'),
    },
  };
}

function joinChunks(chunks: RayChunk[]): RayChunk {
  if (chunks.length === 1) return chunks[0];
  const joined: RayChunk = { rgb: ops.concat(chunks.map((c) => c.rgb), 1), depth: ops.concat(chunks.map((c) => c.depth), 1) };
  for (const key of ['samplePoints', 'scalarField', 'intersections', 'isValid', 'radiance'] as const) {
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

/** GRAM's rendering of n rays of one camera. */
function renderRays(representation: GramRepresentation, codes: FilmCodes, input: RayInputs): RayChunk {
  const { origin, directions, background, depths, levels, profile } = input;
  const n = directions.shape[1];
  const m = levels.size + 1;
  const { samplePoints, scalarField, hits } = profile('sample network + intersection', () => {
    // [1, n, S, 3]: no jitter, in training either (the reference hard-codes it off)
    const samplePoints = ops.add(ops.reshape(origin, [1, 1, 1, 3]), ops.mul(directions, depths));
    const scalarField = step(() => representation.sample_network.forward(samplePoints));
    const hits = step(() => intersectManifolds(samplePoints, scalarField, levels));
    return { samplePoints, scalarField, hits };
  });
  const { rgbSigma, distances, isValid } = profile('radiance', () => {
    const points = ops.concat([hits.points, background], 2);
    const isValid = ops.concat([hits.isValid, ops.ones([1, n, 1, 1])], 2);
    const distances = noGrad(() => distancesFrom(points, origin));
    const viewDirections = input.lockViewDependence
      ? ops.mul(ops.ones([1, n, m, 3]), Tensor.fromData([0, 0, -1], [3]))
      : ops.expand(directions, [1, n, m, 3]);
    const { rgbSigma } = representation.rf_network.forward(ops.reshape(points, [1, n * m, 3]), ops.reshape(viewDirections, [1, n * m, 3]), codes);
    return { rgbSigma, distances, isValid };
  });
  const { rgb, depth } = profile('compositing', () => step(() => {
    const { rgb, depth } = compositeManifolds(ops.reshape(rgbSigma, [1, n, m, 4]), distances, isValid);
    return { rgb, depth };
  }));
  if (!input.keep) return { rgb, depth };
  return { rgb, depth, samplePoints, scalarField, intersections: hits.points, isValid: hits.isValid, radiance: rgbSigma };
}

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
   * z [B, z_dim] and one camera per element -> image [B, 3, H, W] in [-1, 1], depth [B, H, W, 1],
   * the mapping outputs (before truncation) and, when asked for, every intermediate.
   */
  forward(z: Tensor, cameras: readonly Camera[], options: RenderOptions & { truncationPsi?: number } = {}): GramOutput {
    if (z.rank !== 2 || z.shape[0] !== cameras.length) {
      throw new Error(`GramGenerator: z [${z.shape.join(', ')}] must be [B, ${this.config.z_dim}] with one camera per element (${cameras.length} given)`);
    }
    const { raw, used } = (options.profile ?? runStage)('mapping', () => this.codes(z, options.truncationPsi ?? 1));
    const out = renderManifolds(this.representation, used, cameras, { camera: this.config.camera, renderer: this.config.renderer, imgSize: this.config.img_size }, options);
    return { ...out, ...raw };
  }
}
