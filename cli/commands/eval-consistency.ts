// `gramhd eval consistency`: how 3D-consistent a generator's views are. Per seed (z and truncation
// average as `gramhd render` draws them), the latent is rendered with locked view dependence from the
// front (pitch, yaw) = (pi/2, pi/2), view A, and from the front turned by --yaw (and --pitch), view B;
// B's pixels are reprojected into A with B's rendered depth and compared with A's image where A sees
// the same surface (model/consistency.ts). Next to it, the same measure of a 2D-upsampling baseline
// with the same depths: GRAM-HD's low-res render upscaled bilinearly to the high-res size, or for a
// stage-one GRAM the render at half the size upscaled x2.
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice, noGrad, Tensor, tidy, tidyAsync } from '../../engine/index.ts';
import { cameraFromPose, type Camera } from '../../model/camera.ts';
import { reprojectionError, upsampleBilinear, type RenderedView } from '../../model/consistency.ts';
import { TorchGenerator } from '../../model/torch-random.ts';
import { checkpointOrShipped, loadGenerator, type Renderable } from '../checkpoint.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { Progress } from '../../train/progress.ts';
import { parseSeeds } from './render.ts';

interface ConsistencyArgs {
  ckpt?: string;
  config?: string;
  seeds: string;
  truncation: number;
  yaw: number;
  pitch: number;
  depth_tolerance: number;
  average: 'auto' | 'seed' | 'stored';
  json: boolean;
}

/** One seed's figures: photometric errors on the 0-255 scale, NaN when no pixel is visible. */
export interface SeedConsistency {
  seed: number;
  error: number;
  baselineError: number;
  visibleFraction: number;
}

export interface ConsistencyReport {
  checkpoint: string;
  /** What the baseline upscales bilinearly to imageSize: GRAM-HD's low-res render, or GRAM's render at half the size. */
  baseline: { source: 'low-res render' | 'half-size render'; size: number };
  imageSize: number;
  yaw: number;
  pitch: number;
  truncation: number;
  depthTolerance: number;
  /** Means over the seeds (the errors over seeds with visible pixels). */
  error: number;
  baselineError: number;
  visibleFraction: number;
  seeds: SeedConsistency[];
}

/** Element `b` of images [B, 3, H, W] in [-1, 1] as planar 0..255 values (clipped as the PNG writer clips). */
function imageAt(values: Float32Array, shape: readonly number[], b: number): Float32Array {
  const size = shape[1] * shape[2] * shape[3];
  return values.slice(b * size, (b + 1) * size).map((x) => Math.min(Math.max(x * 0.5 + 0.5, 0), 1) * 255);
}

/** Views A and B of one latent: the image, the baseline image (upscaled) and the depth of each. */
async function renderPair(model: Renderable, z: Float32Array, cameras: Camera[], truncation: number): Promise<{ image: Float32Array[]; baseline: Float32Array[]; depth: Float32Array[]; size: number; lowSize: number }> {
  const zDim = model.config.z_dim;
  const size = model.config.img_size;
  const bake = tidy(() => model.bake(Tensor.fromData(z, [1, zDim]), truncation));
  const out = await tidyAsync(() => model.view(bake, cameras));
  bake.dispose();
  // the baseline's low-res images: GRAM-HD's own, or GRAM rendered at half the size
  const half = Math.max(1, Math.round(size / 2));
  const low = out.lrImage ?? tidy(() => noGrad(() => {
    const r = model.render(Tensor.fromData(new Float32Array([...z, ...z]), [2, zDim]), cameras, { truncationPsi: truncation, lockViewDependence: true, imgSize: half });
    return r.image;
  }));
  try {
    const [image, depth, lowImage] = await Promise.all([out.image.toFloat32(), out.depth.toFloat32(), low.toFloat32()]);
    const [lowH, lowW] = low.shape.slice(2);
    const plane = size * size;
    return {
      image: [0, 1].map((b) => imageAt(image, out.image.shape, b)),
      baseline: [0, 1].map((b) => upsampleBilinear(imageAt(lowImage, low.shape, b), lowH, lowW, size, size)),
      depth: [0, 1].map((b) => depth.slice(b * plane, (b + 1) * plane)),
      size,
      lowSize: lowH,
    };
  } finally {
    out.image.dispose();
    out.depth.dispose();
    low.dispose(); // GRAM-HD's lrImage, or GRAM's half-size render
  }
}

/** The mean of the finite values (NaN when there are none). */
function finiteMean(values: number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.length ? finite.reduce((s, v) => s + v, 0) / finite.length : NaN;
}

/** Measures the seeds on a loaded generator. */
export async function measureConsistency(model: Renderable, options: { seeds: readonly number[]; truncation: number; yaw: number; pitch: number; depthTolerance: number; perSeedAverage: boolean; checkpoint: string }): Promise<ConsistencyReport> {
  const { config } = model;
  const zDim = config.z_dim;
  const front = Math.PI / 2;
  const cameras = [cameraFromPose(front, front), cameraFromPose(front + options.pitch, front + options.yaw)];
  const fov = config.camera.fov;
  const perSeedAverage = options.perSeedAverage && options.truncation !== 1;
  const progress = new Progress(options.seeds.length, 'seeds');
  const seeds: SeedConsistency[] = [];
  let size = config.img_size;
  let lowSize = 0;
  for (const seed of options.seeds) {
    const g = new TorchGenerator(seed);
    const z = g.randn(zDim);
    if (perSeedAverage) {
      const latents = g.randn(10000 * zDim);
      tidy(() => noGrad(() => model.computeAverage(Tensor.fromData(latents, [10000, zDim]))));
    }
    const pair = await renderPair(model, z, cameras, options.truncation);
    ({ size, lowSize } = pair);
    const view = (k: number, image: Float32Array): RenderedView => ({ camera: cameras[k], image, depth: pair.depth[k], height: size, width: size });
    const measure = { fov, depthTolerance: options.depthTolerance };
    const own = reprojectionError(view(0, pair.image[0]), view(1, pair.image[1]), measure);
    const baseline = reprojectionError(view(0, pair.baseline[0]), view(1, pair.baseline[1]), measure);
    seeds.push({ seed, error: own.error, baselineError: baseline.error, visibleFraction: own.visibleFraction });
    progress.tick();
  }
  return {
    checkpoint: options.checkpoint,
    baseline: { source: model.hasLowRes ? 'low-res render' : 'half-size render', size: lowSize },
    imageSize: size,
    yaw: options.yaw,
    pitch: options.pitch,
    truncation: options.truncation,
    depthTolerance: options.depthTolerance,
    error: finiteMean(seeds.map((s) => s.error)),
    baselineError: finiteMean(seeds.map((s) => s.baselineError)),
    visibleFraction: finiteMean(seeds.map((s) => s.visibleFraction)),
    seeds,
  };
}

/** The report on stdout: one JSON line, or a short table. */
export function printConsistency(report: ConsistencyReport, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(report));
    return;
  }
  const { source, size } = report.baseline;
  const what = `${source} ${size}x${size}`;
  console.log(`3D consistency: view turned by yaw ${report.yaw}, pitch ${report.pitch} reprojected into the front view with the rendered depth (${report.seeds.length} seed${report.seeds.length === 1 ? '' : 's'}, truncation ${report.truncation}, depth tolerance ${report.depthTolerance})`);
  const rows = [
    [`generator ${report.imageSize}x${report.imageSize}`, report.error],
    [`baseline: ${what} upscaled bilinearly`, report.baselineError],
  ] as const;
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log(`${''.padEnd(width)}  photometric error (0-255)  visible pixels`);
  for (const [label, error] of rows) console.log(`${label.padEnd(width)}  ${error.toFixed(3).padStart(25)}  ${(100 * report.visibleFraction).toFixed(1)}%`);
}

export const evalConsistencyCommand: CommandModule<object, ConsistencyArgs> = {
  command: 'consistency',
  describe: '3D consistency: reproject a turned view of each seed into its front view with the rendered depth; photometric error of the visible pixels, next to a bilinear-upscaling baseline',
  builder: (yargs: Argv) => yargs
    .option('ckpt', { type: 'string', describe: 'generator checkpoint: our .safetensors (also a `gramhd train` checkpoint: its first EMA) or the authors\' .pt (needs --config); default: the shipped ckpts/ checkpoint' })
    .option('config', { type: 'string', describe: 'configuration: a name, JSON text, or a .json file; required for .pt, overrides a safetensors file\'s metadata' })
    .option('seeds', { type: 'string', default: '0-15', describe: "seeds: comma-separated seeds and inclusive ranges, e.g. '0-15' or '1,5,7-9'; z and truncation average as `gramhd render` draws them" })
    .option('truncation', { type: 'number', default: 0.7, describe: 'truncation psi, as `gramhd render`; 1 disables truncation' })
    .option('yaw', { type: 'number', default: 0.3, describe: 'radians the second view is turned from the front view (about the vertical axis)' })
    .option('pitch', { type: 'number', default: 0, describe: 'radians the second view is tilted from the front view' })
    .option('depth_tolerance', { type: 'number', default: 0.01, describe: 'a reprojected pixel is visible when the front view\'s depth there agrees with its distance to within this fraction' })
    .option('average', { choices: ['auto', 'seed', 'stored'] as const, default: 'auto' as const, describe: 'truncation average, as `gramhd render`: seed = recomputed per seed, stored = the checkpoint\'s, auto = stored when present' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report (means and per-seed figures) as one JSON line' })
    .check((argv) => {
      parseSeeds(argv.seeds);
      for (const key of ['truncation', 'yaw', 'pitch'] as const) if (!Number.isFinite(argv[key])) throw new Error(`--${key} must be a number, got ${argv[key]}`);
      if (!(argv.depth_tolerance > 0)) throw new Error(`--depth_tolerance must be positive, got ${argv.depth_tolerance}`);
      return true;
    }),
  handler: async (args) => {
    const ckpt = checkpointOrShipped(args.ckpt);
    await initNodeDevice();
    const { model, storedAverage } = await loadGenerator(ckpt, args.config);
    try {
      if (args.average === 'stored' && !storedAverage) throw new Error(`${ckpt}: --average stored, but the checkpoint holds no truncation averages`);
      const useStored = args.average === 'stored' || (args.average === 'auto' && storedAverage);
      const report = await measureConsistency(model, {
        seeds: parseSeeds(args.seeds), truncation: args.truncation, yaw: args.yaw, pitch: args.pitch,
        depthTolerance: args.depth_tolerance, perSeedAverage: !useStored, checkpoint: ckpt,
      });
      printConsistency(report, args.json);
    } finally {
      model.dispose();
      destroyDevice();
    }
  },
};
