// `gramhd render`: the authors' inference.py. Per seed: torch.manual_seed(seed), z = randn(1, 256),
// then the truncation average from the next 10000 x 256 normals of the same stream, then (rand only)
// the camera pose; the views of --type rendered at the configuration's size and written as grids,
// videos or single images, named as the reference names them.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { noGrad, Tensor, tidy, tidyAsync } from '../../engine/index.ts';
import { concatFloat32 } from '../../engine/io/host-tensor.ts';
import { cameraFromPose, linspace, randomPose, type Camera } from '../../model/camera.ts';
import { checkpointOrShipped, loadGenerator, type RenderBake } from '../checkpoint.ts';
import { writeFileAtomic } from '../../train/files.ts';
import { depthToRgb8, encodePng, imageToRgb8, tileGrid, type Rgb8 } from '../../train/image-io.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { Progress } from '../../train/progress.ts';
import { describeShard, resolveShard, shardOption, shardRange } from '../shard.ts';
import { TorchGenerator } from '../../model/torch-random.ts';

export const RENDER_TYPES = ['multiview1x3', 'multiview3x7', 'video', 'rand'] as const;
export type RenderType = (typeof RENDER_TYPES)[number];

interface RenderArgs {
  ckpt?: string;
  config?: string;
  output_dir: string;
  seeds: string;
  type: RenderType;
  truncation: number;
  batch: number;
  depth: boolean;
  img_size?: number;
  format?: 'png' | 'mp4';
  average: 'auto' | 'seed' | 'stored';
  shard?: string;
}

/** '0-9999', '1,5,7-9' -> the seeds in order (inclusive ranges, as the reference's parse_seeds). */
export function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  const bad = (part: string, why: string): never => {
    throw new Error(`--seeds: '${part}' ${why} (expected comma-separated seeds and ranges such as '0-9999' or '1,5,7-9')`);
  };
  for (const raw of String(text).split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) bad(part, 'is not a seed or a range');
    const start = Number(m![1]);
    const end = m![2] === undefined ? start : Number(m![2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) bad(part, 'is too large');
    if (end < start) bad(part, 'is a range that ends before it starts');
    for (let s = start; s <= end; s++) seeds.push(s);
  }
  return seeds;
}

/** The fixed views of a type: poses (pitch, yaw) around the front (pi/2, pi/2) and the grid shape. */
export function fixedViews(type: Exclude<RenderType, 'rand'>): { poses: [number, number][]; grid: [number, number] | null } {
  const front = Math.PI / 2;
  const poses = (pitches: number[], yaws: number[]) => yaws.map((yaw, i): [number, number] => [pitches[i] + front, yaw + front]);
  if (type === 'multiview1x3') return { poses: poses([0, 0, 0], [...linspace(-0.3, 0.3, 3)]), grid: [1, 3] };
  if (type === 'multiview3x7') {
    const yaws = [...linspace(-0.4, 0.4, 7)];
    return { poses: poses([...Array(7).fill(0.2), ...Array(7).fill(0), ...Array(7).fill(-0.2)], [...yaws, ...yaws, ...yaws]), grid: [3, 7] };
  }
  // video: 60 frames, yaw -0.3 -> 0.3 -> -0.3 (each half without its last point), pitch fixed
  const yaws = [...[...linspace(-0.3, 0.3, 31)].slice(0, 30), ...[...linspace(0.3, -0.3, 31)].slice(0, 30)];
  return { poses: poses(Array(60).fill(0), yaws), grid: null };
}


/** One image to render: a seed's view. */
interface Job {
  seedIndex: number;
  view: number;
  z: Float32Array;
  camera: Camera;
  /** Latents of this seed's truncation average, or null when the average is shared or unused. */
  averageZ: Float32Array | null;
}

interface SeedFrames {
  images: Rgb8[];
  lowRes: Rgb8[];
  depths: Rgb8[];
  done: number;
}

export const renderCommand: CommandModule<object, RenderArgs> = {
  command: 'render',
  describe: 'Render images, multi-view grids or videos from a generator checkpoint (the authors\' inference.py)',
  builder: (yargs: Argv) => yargs
    .option('ckpt', { type: 'string', describe: 'generator checkpoint: our .safetensors (configuration in its metadata) or the authors\' .pt state_dict (needs --config); default: the shipped ckpts/GRAM32_SYNTH.safetensors' })
    .option('config', { type: 'string', describe: `configuration: a name (e.g. GRAMHD256_FFHQ), JSON text, or a .json file; required for .pt, overrides a safetensors file's metadata` })
    .option('output_dir', { type: 'string', default: './images', describe: 'directory the images and videos are written to (created if missing)' })
    .option('seeds', { type: 'string', default: '0-9', describe: "seeds to render: comma-separated seeds and inclusive ranges, e.g. '0-9999' or '1,5,7-9'; seed N gives the z of torch.manual_seed(N); torch.randn(1, 256)" })
    .option('type', { choices: RENDER_TYPES, default: 'multiview1x3' as RenderType, describe: 'multiview1x3: grid_<seed>.png, yaws -0.3, 0, 0.3 in one row; multiview3x7: grid_<seed>.png, 3 rows (pitch +0.2, 0, -0.2) x 7 yaws in [-0.4, 0.4]; video: grid_<seed>.mp4, 60 frames at 30 fps, yaw -0.3 -> 0.3 -> -0.3; rand: <index:05d>.png, one image per seed at a pose drawn like training poses. View dependence is locked except for rand; GRAM-HD also writes the low-res images (_lr) except for rand' })
    .option('truncation', { type: 'number', default: 0.7, describe: 'truncation psi: lerp the FiLM codes (and GRAM-HD\'s SR style) from the average towards the sample; 1 disables truncation' })
    .option('batch', { type: 'number', default: 1, describe: 'images rendered per pass: consecutive views of one seed, rendered from its bake (multiview, video: the camera-independent part, GRAM-HD super-resolution included, runs once per seed), or for rand consecutive seeds when they share the truncation average (--truncation 1, or a stored average); raise it while GPU memory allows' })
    .option('depth', { type: 'boolean', default: false, describe: 'also write depth maps (<name>_depth.png / .mp4): grey, normalised per image from nearest (black) to farthest (white)' })
    .option('format', { choices: ['png', 'mp4'] as const, describe: 'output format: mp4 (default for --type video) or png (default otherwise; for video, one grid_<seed>_<frame>.png per frame)' })
    .option('average', { choices: ['auto', 'seed', 'stored'] as const, default: 'auto' as const, describe: 'truncation average: seed = recomputed per seed from its random stream (the reference), stored = the checkpoint\'s avg_* tensors, auto = stored when the checkpoint has them, else seed' })
    .option('img_size', { type: 'number', describe: 'GRAM (stage one) only: render at this width and height instead of the configuration\'s (the radiance manifolds render at any size: a 3D-consistent upscaling); GRAM-HD renders at its configuration\'s size' })
    .option('shard', { ...shardOption, describe: `${shardOption.describe}; the list is --seeds, and --type rand keeps each image's index in the whole list as its name` })
    .check((argv) => {
      if (!Number.isInteger(argv.batch) || argv.batch < 1) throw new Error(`--batch must be a positive integer, got ${argv.batch}`);
      if (!Number.isFinite(argv.truncation)) throw new Error(`--truncation must be a number, got ${argv.truncation}`);
      if (argv.format === 'mp4' && argv.type !== 'video') throw new Error(`--format mp4 needs --type video (got --type ${argv.type})`);
      if (argv.img_size !== undefined && (!Number.isInteger(argv.img_size) || argv.img_size < 1)) throw new Error(`--img_size must be a positive integer, got ${argv.img_size}`);
      parseSeeds(argv.seeds);
      resolveShard(argv.shard);
      return true;
    }),
  handler: async (args) => {
    await render(args);
  },
};

async function render(args: RenderArgs): Promise<void> {
  const seeds = parseSeeds(args.seeds);
  const shard = resolveShard(args.shard);
  // this shard's block of the seed list; indices stay those of the whole list (rand's file names)
  const [firstIndex, endIndex] = shardRange(seeds.length, shard);
  const started = performance.now();
  await initNodeDevice();
  const ckpt = checkpointOrShipped(args.ckpt);
  const { model, storedAverage } = await loadGenerator(ckpt, args.config);
  try {
    if (args.average === 'stored' && !storedAverage) throw new Error(`${ckpt}: --average stored, but the checkpoint holds no truncation averages`);
    const useStored = args.average === 'stored' || (args.average === 'auto' && storedAverage);
    const perSeedAverage = args.truncation !== 1 && !useStored;
    await mkdir(args.output_dir, { recursive: true });
    const format = args.format ?? (args.type === 'video' ? 'mp4' : 'png');
    const views = args.type === 'rand' ? null : fixedViews(args.type);
    const viewCount = views ? views.poses.length : 1;
    const zDim = model.config.z_dim;
    const progress = new Progress((endIndex - firstIndex) * viewCount);
    const frames = new Map<number, SeedFrames>();
    let written = 0;

    // Jobs are made lazily, seed by seed, so that 10000-seed runs hold one seed's latents at a time.
    function* jobs(): Generator<Job> {
      for (let seedIndex = firstIndex; seedIndex < endIndex; seedIndex++) {
        const g = new TorchGenerator(seeds[seedIndex]);
        const z = g.randn(zDim);
        let averageZ: Float32Array | null = null;
        if (perSeedAverage) averageZ = g.randn(10000 * zDim);
        else g.skipRandn(10000 * zDim);
        const poses = views ? views.poses : [randomPose(model.config.pose, g)];
        for (let view = 0; view < poses.length; view++) {
          yield { seedIndex, view, z, camera: cameraFromPose(poses[view][0], poses[view][1]), averageZ };
        }
      }
    }

    const finishSeed = async (seedIndex: number, f: SeedFrames) => {
      const seed = seeds[seedIndex];
      const out: [string, Uint8Array][] = [];
      if (args.type === 'rand') {
        const name = String(seedIndex).padStart(5, '0');
        out.push([`${name}.png`, encodePng(f.images[0])]);
        if (args.depth) out.push([`${name}_depth.png`, encodePng(f.depths[0])]);
      } else if (views!.grid) {
        const [rows, cols] = views!.grid;
        out.push([`grid_${seed}.png`, encodePng(tileGrid(f.images, rows, cols))]);
        if (model.hasLowRes) out.push([`grid_${seed}_lr.png`, encodePng(tileGrid(f.lowRes, rows, cols))]);
        if (args.depth) out.push([`grid_${seed}_depth.png`, encodePng(tileGrid(f.depths, rows, cols))]);
      } else if (format === 'mp4') {
        const { encodeMp4 } = await import('../video.ts');
        out.push([`grid_${seed}.mp4`, await encodeMp4(f.images, 30)]);
        if (model.hasLowRes) out.push([`grid_${seed}_lr.mp4`, await encodeMp4(f.lowRes, 30)]);
        if (args.depth) out.push([`grid_${seed}_depth.mp4`, await encodeMp4(f.depths, 30)]);
      } else {
        f.images.forEach((img, i) => out.push([`grid_${seed}_${i}.png`, encodePng(img)]));
        if (model.hasLowRes) f.lowRes.forEach((img, i) => out.push([`grid_${seed}_${i}_lr.png`, encodePng(img)]));
        if (args.depth) f.depths.forEach((img, i) => out.push([`grid_${seed}_${i}_depth.png`, encodePng(img)]));
      }
      for (const [name, bytes] of out) await writeFileAtomic(join(args.output_dir, name), bytes);
      written += out.length;
      frames.delete(seedIndex);
    };

    // fixed views lock view dependence, so a seed is baked once (GRAM-HD: its super-resolved
    // textures; model/orbit.ts) and all its views are rendered from the bake
    const baked: { seedIndex: number; bake: RenderBake | null } = { seedIndex: -1, bake: null };
    const viewsOfSeed = (batch: Job[]) => {
      if (!baked.bake || baked.seedIndex !== batch[0].seedIndex) {
        baked.bake?.dispose();
        const { z } = batch[0];
        baked.bake = tidy(() => model.bake(Tensor.fromData(z, [1, zDim]), args.truncation));
        baked.seedIndex = batch[0].seedIndex;
      }
      const bake = baked.bake;
      return tidyAsync(() => model.view(bake, batch.map((j) => j.camera), args.img_size));
    };

    const runBatch = async (batch: Job[]) => {
      const out = views ? await viewsOfSeed(batch) : await tidyAsync(() => {
        const z = Tensor.fromData(concatFloat32(batch.map((j) => j.z)), [batch.length, zDim]);
        return model.renderVisible(z, batch.map((j) => j.camera), { truncationPsi: args.truncation, lockViewDependence: false, imgSize: args.img_size });
      });
      const [image, depth, lrImage] = await Promise.all([out.image.toFloat32(), out.depth.toFloat32(), out.lrImage?.toFloat32()]);
      const shapes = { image: out.image.shape, depth: out.depth.shape, lr: out.lrImage?.shape };
      out.image.dispose();
      out.depth.dispose();
      out.lrImage?.dispose();
      for (let b = 0; b < batch.length; b++) {
        const job = batch[b];
        let f = frames.get(job.seedIndex);
        if (!f) frames.set(job.seedIndex, (f = { images: [], lowRes: [], depths: [], done: 0 }));
        // the reference clips the high-res image to [0, 1] but not the low-res one
        f.images[job.view] = imageToRgb8(image, shapes.image, b, true);
        if (lrImage && shapes.lr) f.lowRes[job.view] = imageToRgb8(lrImage, shapes.lr, b, false);
        if (args.depth) f.depths[job.view] = depthToRgb8(depth, shapes.depth, b);
        if (++f.done === viewCount) await finishSeed(job.seedIndex, f);
      }
      progress.tick(batch.length);
    };

    let batch: Job[] = [];
    let averageOf: Float32Array | null = null;
    for (const job of jobs()) {
      // a batch shares one truncation average: a per-seed average closes the batch at a new seed;
      // so does a new seed's bake (fixed views)
      if (batch.length === args.batch || (batch.length > 0 && (job.averageZ !== batch[0].averageZ || (views && job.seedIndex !== batch[0].seedIndex)))) {
        await runBatch(batch);
        batch = [];
      }
      if (job.averageZ && job.averageZ !== averageOf) {
        const latents: Float32Array = job.averageZ;
        tidy(() => noGrad(() => model.computeAverage(Tensor.fromData(latents, [10000, zDim]))));
        averageOf = latents;
      }
      batch.push(job);
    }
    if (batch.length) await runBatch(batch);
    baked.bake?.dispose();
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`render: ${written} files in ${args.output_dir} (${endIndex - firstIndex} seeds x ${viewCount} views, ${seconds.toFixed(1)} s)${describeShard(shard, seeds.length, 'seeds')}\n`);
  } finally {
    model.dispose();
  }
}

