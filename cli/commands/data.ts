// `gramhd data`: data set tools. `data synth` renders procedural heads (model/synth/heads.ts) into an
// AFHQ-layout folder: NNNNN.png, poses/NNNNN_pose.npy holding (pitch - 0.14, yaw) so that the AFHQ
// loader's (p0 + 0.14, p1) gives back the rendered pose, and with --depth depth/NNNNN.npy.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice } from '../../engine/index.ts';
import { renderHeads, synthSample, type RenderedHeads } from '../../model/synth/heads.ts';
import { encodeNpy } from '../../train/npy.ts';
import { writeFileAtomic } from '../../train/files.ts';
import { encodePng } from '../../train/image-io.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { Progress } from '../../train/progress.ts';
import { describeShard, resolveShard, shardOption, shardRange } from '../shard.ts';

/** What the AFHQ loader adds to the first pose entry (reference section 8). */
export const AFHQ_PITCH_OFFSET = 0.14;

export interface SynthArgs {
  out: string;
  count: number;
  size: number;
  seed: number;
  depth: boolean;
  batch: number;
  supersample: number;
  /** Only images start..end-1 of the count (a shard); default all. */
  range?: [number, number];
  shard?: string;
}

/** The file stem of image `index`: five digits, more when the count needs them. */
export function synthName(index: number, count: number): string {
  return String(index).padStart(Math.max(5, String(count - 1).length), '0');
}

/** Renders `count` heads into `out` in batches; calls onBatch after each batch is written. */
export async function writeSynthDataset(args: SynthArgs, onBatch: (n: number) => void = () => {}): Promise<void> {
  const { out, count, size, seed, depth, batch, supersample } = args;
  const [first, end] = args.range ?? [0, count];
  await mkdir(join(out, 'poses'), { recursive: true });
  if (depth) await mkdir(join(out, 'depth'), { recursive: true });
  let pending: Promise<void> = Promise.resolve();
  for (let start = first; start < end; start += batch) {
    const indices = Array.from({ length: Math.min(batch, end - start) }, (_, k) => start + k);
    const samples = indices.map((i) => synthSample(seed, i));
    const rendered: RenderedHeads = await renderHeads(samples, size, { depth, supersample });
    // the files of this batch are encoded and written while the next batch renders
    await pending;
    pending = Promise.all(indices.map(async (index, k) => {
      const name = synthName(index, count);
      const { pitch, yaw } = samples[k];
      await writeFileAtomic(join(out, `${name}.png`), encodePng({ width: size, height: size, data: rendered.images[k] }));
      await writeFileAtomic(join(out, 'poses', `${name}_pose.npy`), encodeNpy(new Float64Array([pitch - AFHQ_PITCH_OFFSET, yaw]), [2]));
      if (rendered.depths) await writeFileAtomic(join(out, 'depth', `${name}.npy`), encodeNpy(rendered.depths[k], [size, size]));
    })).then(() => onBatch(indices.length));
    // a failed write surfaces at the next await of `pending`, not as an unhandled rejection meanwhile
    pending.catch(() => {});
  }
  await pending;
}

const synthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Render procedural 3D heads (SDF ray marching) into an AFHQ-layout data set with ground-truth poses',
  builder: (yargs: Argv) => yargs
    .option('out', { type: 'string', demandOption: true, describe: 'folder to write NNNNN.png, poses/NNNNN_pose.npy (float64 [pitch - 0.14, yaw]) and, with --depth, depth/NNNNN.npy into (created if missing)' })
    .option('count', { type: 'number', demandOption: true, describe: 'number of images' })
    .option('size', { type: 'number', default: 64, describe: 'image width and height in pixels' })
    .option('seed', { type: 'number', default: 0, describe: 'seed: image i is a function of (seed, i) only, whatever the count or batch' })
    .option('depth', { type: 'boolean', default: false, describe: 'also write depth/NNNNN.npy: float32 [size, size], distance along the unit ray from the camera (radius 1) to the surface at each pixel centre, 0 on the background' })
    .option('batch', { type: 'number', default: 256, describe: 'images rendered per GPU dispatch' })
    .option('supersample', { type: 'number', default: 2, describe: 'samples per pixel along each axis (1 = aliased, 2 = 4 samples per pixel)' })
    .option('shard', { ...shardOption, describe: `${shardOption.describe}; the list is the image indices 0..count-1` })
    .check((argv) => {
      for (const key of ['count', 'size', 'batch', 'supersample'] as const) {
        if (!Number.isInteger(argv[key]) || argv[key] < 1) throw new Error(`--${key} must be a positive integer, got ${argv[key]}`);
      }
      if (!Number.isInteger(argv.seed) || argv.seed < 0) throw new Error(`--seed must be a non-negative integer, got ${argv.seed}`);
      resolveShard(argv.shard);
      return true;
    }),
  handler: async (args) => {
    const shard = resolveShard(args.shard);
    const range = shardRange(args.count, shard);
    if (shard.count > 1) console.error(`data synth:${describeShard(shard, args.count, 'images')}`);
    await initNodeDevice();
    try {
      const progress = new Progress(range[1] - range[0]);
      await writeSynthDataset({ ...args, range }, (n) => progress.tick(n));
    } finally {
      destroyDevice();
    }
  },
};

export const dataCommand: CommandModule<object, object> = {
  command: 'data <command>',
  describe: 'Data set tools: synth (procedural heads with ground-truth poses)',
  builder: (yargs: Argv) => yargs.command(synthCommand).demandCommand(1, 'Name a data command: synth'),
  handler: () => {},
};
