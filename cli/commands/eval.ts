// `gramhd eval`: the authors' eval.py, FID and KID between a folder of real images and a folder of
// generated ones, computed as torch-fidelity computes them (model/inception.ts, model/fid.ts,
// model/kid.ts) on the 2048-dimensional pool features of its InceptionV3. The weights are
// torch-fidelity's weights-inception-2015-12-05-6726825d.pth, given by path (nothing is downloaded).
//
// Images: the first --num_samples of each folder (PNG or JPEG, sorted by name), as 8-bit RGB; any
// image whose size is not --image_size is Lanczos-resized to it (PIL's LANCZOS, as the reference's
// dataset resizes). Features are cached per input in --tmp_dir as <cache name>.safetensors
// (tensor 'features/2048', [n, 2048] F32), read back with --use_*_images_cache.
//
// `gramhd eval generate` (below) makes the generated side without image files: the images of
// `gramhd render --type rand` (same seeds, z, poses, truncation, default 0.7 as render's) go from the
// generator through the PNG writer's 8-bit conversion into InceptionV3 on the GPU (cli/eval-features.ts,
// shared with `gramhd train --eval_interval`). Its features match `gramhd eval --image_size <img_size>`
// on render's PNGs.
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice, noGrad, Tensor, tidyAsync } from '../../engine/index.ts';
import { InceptionV3 } from '../../model/inception.ts';
import { decodeImage, sniffImageFormat } from '../../train/image-decode.ts';
import { resizeLanczos, type ImageU8 } from '../../train/lanczos.ts';
import { loadGenerator } from '../checkpoint.ts';
import { computeMetrics, FEATURE_DIM, featureCacheImageSize, featureShardPath, generatedFeatures, printMetrics, readFeatureCache, readFeatureShard, writeFeatureCache, writeFeatureShard, type FeatureShard } from '../../train/eval-features.ts';
import { addMoments } from '../../model/fid.ts';
import { describeShard, resolveShard, shardOption, shardRange } from '../shard.ts';
import { readFileBytes } from '../../train/files.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { evalConsistencyCommand } from './eval-consistency.ts';
import { Progress } from '../../train/progress.ts';

interface EvalArgs {
  real_images_dir?: string;
  fake_images_dir?: string;
  tmp_dir: string;
  image_size: number;
  num_samples: number;
  real_images_cache_name: string;
  fake_images_cache_name: string;
  use_real_images_cache: boolean;
  use_fake_images_cache: boolean;
  inception_weights?: string;
  json: boolean;
  kid_subsets: number;
  kid_subset_size: number;
  batch: number;
}

/** The image files of a folder in name order (by content: PNG or JPEG signatures). */
async function imageFiles(dir: string, count: number): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch {
    throw new Error(`${dir}: cannot list the folder`);
  }
  const files = names.filter((n) => /\.(png|jpe?g)$/i.test(n)).map((n) => join(dir, n));
  if (files.length < count) throw new Error(`${dir}: ${files.length} PNG/JPEG images, fewer than --num_samples ${count}`);
  return files.slice(0, count);
}

/** The central square of a non-square image, as the reference's center_crop_and_resize cuts it
 * (offset (long - short) // 2) before its Lanczos resize. */
export function centerCropSquare(image: ImageU8): ImageU8 {
  const side = Math.min(image.width, image.height);
  if (image.width === image.height) return image;
  const x0 = Math.floor((image.width - side) / 2);
  const y0 = Math.floor((image.height - side) / 2);
  const c = image.channels;
  const data = new Uint8Array(side * side * c);
  for (let y = 0; y < side; y++) data.set(image.data.subarray(((y0 + y) * image.width + x0) * c, ((y0 + y) * image.width + x0 + side) * c), y * side * c);
  return { width: side, height: side, channels: c, data };
}

/** The 2048 pool features of the first `count` images of `dir`, [count, 2048]. */
async function extractFeatures(net: InceptionV3, dir: string, count: number, size: number, batch: number, label: string): Promise<Float32Array> {
  const files = await imageFiles(dir, count);
  const out = new Float32Array(files.length * FEATURE_DIM);
  const progress = new Progress(files.length, `${label} images`);
  for (let start = 0; start < files.length; start += batch) {
    const chunk = files.slice(start, start + batch);
    const pixels = new Float32Array(chunk.length * 3 * size * size);
    for (const [b, file] of chunk.entries()) {
      const bytes = await readFileBytes(file);
      if (!sniffImageFormat(bytes)) throw new Error(`${file}: not a PNG or JPEG image`);
      let image = decodeImage(file, bytes);
      image = centerCropSquare(image);
      if (image.width !== size) image = resizeLanczos(image, size, size);
      // interleaved RGB -> planar CHW, values 0..255 as torch-fidelity's uint8 tensors
      const plane = size * size;
      for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) pixels[(b * 3 + c) * plane + p] = image.data[p * image.channels + c];
    }
    const features = await tidyAsync(async () => noGrad(() => net.forward(Tensor.fromData(pixels, [chunk.length, 3, size, size])))['2048'].toFloat32());
    out.set(features, start * FEATURE_DIM);
    progress.tick(chunk.length);
  }
  return out;
}

/** `gramhd eval` proper: the default command of `eval`. */
const evalFoldersCommand: CommandModule<object, EvalArgs> = {
  command: '$0',
  describe: 'FID and KID between a folder of real images and a folder of generated ones',
  builder: (yargs: Argv) => yargs
    .option('real_images_dir', { type: 'string', describe: 'folder of real images' })
    .option('fake_images_dir', { type: 'string', describe: 'folder of generated images (gramhd render --type rand)' })
    .option('tmp_dir', { type: 'string', default: 'tmp', describe: 'folder for the feature caches' })
    .option('image_size', { type: 'number', default: 256, describe: 'images not of this size are Lanczos-resized to it' })
    .option('num_samples', { type: 'number', default: 10000, describe: 'images taken from each folder (the first, by name)' })
    .option('real_images_cache_name', { type: 'string', default: 'real_images', describe: 'cache file name (without extension) of the real features' })
    .option('fake_images_cache_name', { type: 'string', default: 'fake_images', describe: 'cache file name of the generated features' })
    .option('use_real_images_cache', { type: 'boolean', default: false, describe: 'read the real features from their cache when it exists' })
    .option('use_fake_images_cache', { type: 'boolean', default: false, describe: 'read the generated features from their cache when it exists' })
    .option('inception_weights', { type: 'string', describe: 'torch-fidelity\'s weights-inception-2015-12-05-6726825d.pth' })
    .option('kid_subsets', { type: 'number', default: 100, describe: 'KID subsets (torch-fidelity default 100)' })
    .option('kid_subset_size', { type: 'number', default: 1000, describe: 'samples per KID subset (torch-fidelity default 1000)' })
    .option('batch', { type: 'number', default: 8, describe: 'images per extractor batch' })
    .option('json', { type: 'boolean', default: false, describe: 'print the metrics as JSON' }),
  handler: async (args) => {
    const { tmp_dir: tmpDir, num_samples: count, image_size: size } = args;
    if (!Number.isInteger(count) || count < 2) throw new Error(`--num_samples must be an integer >= 2, got ${count}`);
    if (!Number.isInteger(size) || size < 1) throw new Error(`--image_size must be a positive integer, got ${size}`);
    if (!Number.isInteger(args.batch) || args.batch < 1) throw new Error(`--batch must be a positive integer, got ${args.batch}`);
    if (args.kid_subset_size > count) throw new Error(`--kid_subset_size ${args.kid_subset_size} is larger than --num_samples ${count}`);
    const inputs = [
      { label: 'real', dir: args.real_images_dir, cache: join(tmpDir, `${args.real_images_cache_name}.safetensors`), useCache: args.use_real_images_cache },
      { label: 'fake', dir: args.fake_images_dir, cache: join(tmpDir, `${args.fake_images_cache_name}.safetensors`), useCache: args.use_fake_images_cache },
    ];
    const needsNetwork = inputs.some((i) => !(i.useCache && existsSync(i.cache)));
    for (const i of inputs) {
      if (!(i.useCache && existsSync(i.cache)) && !i.dir) throw new Error(`--${i.label}_images_dir is required (no cache at ${i.cache})`);
    }
    if (needsNetwork && !args.inception_weights) throw new Error('--inception_weights PATH (torch-fidelity\'s weights-inception-2015-12-05-6726825d.pth) is required to extract features');
    await initNodeDevice();
    let net: InceptionV3 | null = null;
    try {
      if (needsNetwork) net = InceptionV3.fromTorchPt(await readFileBytes(args.inception_weights!), args.inception_weights!);
      const features: Float32Array[] = [];
      for (const i of inputs) {
        let data: Float32Array;
        if (i.useCache && existsSync(i.cache)) {
          data = await readFeatureCache(i.cache, count);
          console.error(`${i.label}: features of ${count} images from ${i.cache}`);
        } else {
          data = await extractFeatures(net!, i.dir!, count, size, args.batch, i.label);
          await mkdir(tmpDir, { recursive: true });
          await writeFeatureCache(i.cache, data, i.dir!, size);
        }
        features.push(data);
      }
      printMetrics(await computeMetrics(features[0], features[1], count, { subsets: args.kid_subsets, subsetSize: args.kid_subset_size }), args.json);
    } finally {
      net?.dispose();
      destroyDevice();
    }
  },
};

interface GenerateArgs {
  ckpt: string;
  config?: string;
  num_samples: number;
  seeds: number;
  truncation: number;
  average: 'auto' | 'seed' | 'stored';
  inception_weights: string;
  tmp_dir: string;
  fake_images_cache_name: string;
  real_images_cache_name: string;
  use_real_images_cache: boolean;
  real_images_dir?: string;
  image_size?: number;
  kid_subsets: number;
  kid_subset_size: number;
  batch: number;
  json: boolean;
  shard?: string;
}

/**
 * `gramhd eval generate`: the features of --num_samples images rendered as `gramhd render --type rand
 * --seeds START-(START+N-1)` renders them (same z, pose and truncation per seed; image k is render's
 * <k:05d>.png), converted on the GPU to the bytes the PNG would hold and fed straight to InceptionV3
 * (no PNG, no image readback); cached as --fake_images_cache_name. With a real cache or folder, FID
 * and KID as `gramhd eval` computes them.
 */
const evalGenerateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Render random samples from a checkpoint (as `gramhd render --type rand`) straight into Inception features on the GPU; FID/KID against real features',
  builder: (yargs: Argv) => yargs
    .option('ckpt', { type: 'string', demandOption: true, describe: 'generator checkpoint: our .safetensors (also a `gramhd train` checkpoint: its first EMA) or the authors\' .pt (needs --config)' })
    .option('config', { type: 'string', describe: 'configuration: a name, JSON text, or a .json file; required for .pt, overrides a safetensors file\'s metadata' })
    .option('num_samples', { type: 'number', default: 10000, describe: 'images generated: seeds START .. START + N - 1' })
    .option('seeds', { type: 'number', default: 0, describe: 'first seed (START); seed s draws its z and pose as `gramhd render --type rand` does' })
    .option('truncation', { type: 'number', default: 0.7, describe: 'truncation psi, as `gramhd render` (default 0.7, the default of the authors\' inference.py, with which their eval flow renders its samples); 1 disables truncation' })
    .option('average', { choices: ['auto', 'seed', 'stored'] as const, default: 'auto' as const, describe: 'truncation average, as `gramhd render`: seed = recomputed per seed (the reference; one seed per forward pass), stored = the checkpoint\'s, auto = stored when present' })
    .option('inception_weights', { type: 'string', demandOption: true, describe: 'torch-fidelity\'s weights-inception-2015-12-05-6726825d.pth' })
    .option('tmp_dir', { type: 'string', default: 'tmp', describe: 'folder for the feature caches' })
    .option('fake_images_cache_name', { type: 'string', default: 'fake_images', describe: 'cache file name (without extension) the generated features are written to' })
    .option('real_images_cache_name', { type: 'string', default: 'real_images', describe: 'cache file name of the real features (from `gramhd eval`)' })
    .option('use_real_images_cache', { type: 'boolean', default: false, describe: 'compute FID/KID against the real features cached under --real_images_cache_name' })
    .option('real_images_dir', { type: 'string', describe: 'folder of real images: extract (and cache) their features, then FID/KID' })
    .option('image_size', { type: 'number', describe: 'with --real_images_dir: real images not of this size are Lanczos-resized to it (default: the generator\'s img_size, the size the generated images have)' })
    .option('kid_subsets', { type: 'number', default: 100, describe: 'KID subsets (torch-fidelity default 100)' })
    .option('kid_subset_size', { type: 'number', default: 1000, describe: 'samples per KID subset (torch-fidelity default 1000)' })
    .option('batch', { type: 'number', default: 8, describe: 'images per forward pass (generator and extractor); a per-seed truncation average limits a pass to one image' })
    .option('json', { type: 'boolean', default: false, describe: 'print the metrics as JSON' })
    .option('shard', { ...shardOption, describe: `${shardOption.describe}; the list is the --num_samples seeds. A shard writes <tmp_dir>/<fake_images_cache_name>.shard-I-of-N.safetensors (its features with their float64 sum and sum of outer products) and no metrics: \`gramhd eval merge\` combines the shards` })
    .check((argv) => {
      resolveShard(argv.shard);
      if (!Number.isInteger(argv.num_samples) || argv.num_samples < 1) throw new Error(`--num_samples must be a positive integer, got ${argv.num_samples}`);
      if (!Number.isSafeInteger(argv.seeds) || argv.seeds < 0) throw new Error(`--seeds must be the first seed, a non-negative integer, got ${argv.seeds}`);
      if (!Number.isInteger(argv.batch) || argv.batch < 1) throw new Error(`--batch must be a positive integer, got ${argv.batch}`);
      if (!Number.isFinite(argv.truncation)) throw new Error(`--truncation must be a number, got ${argv.truncation}`);
      return true;
    }),
  handler: async (args) => {
    const count = args.num_samples;
    const realCache = join(args.tmp_dir, `${args.real_images_cache_name}.safetensors`);
    const useRealCache = args.use_real_images_cache && existsSync(realCache);
    const wantsMetrics = useRealCache || args.real_images_dir !== undefined;
    if (args.use_real_images_cache && !useRealCache && !args.real_images_dir) throw new Error(`--use_real_images_cache: no cache at ${realCache} (and no --real_images_dir)`);
    if (wantsMetrics && count < 2) throw new Error(`--num_samples must be >= 2 for FID/KID, got ${count}`);
    if (wantsMetrics && args.kid_subset_size > count) throw new Error(`--kid_subset_size ${args.kid_subset_size} is larger than --num_samples ${count}`);
    await initNodeDevice();
    const { model, storedAverage } = await loadGenerator(args.ckpt, args.config);
    let net: InceptionV3 | null = null;
    try {
      if (args.average === 'stored' && !storedAverage) throw new Error(`${args.ckpt}: --average stored, but the checkpoint holds no truncation averages`);
      const useStored = args.average === 'stored' || (args.average === 'auto' && storedAverage);
      net = InceptionV3.fromTorchPt(await readFileBytes(args.inception_weights), args.inception_weights);
      const size = model.config.img_size;
      const shard = resolveShard(args.shard);
      const [first, end] = shardRange(count, shard);
      const seeds = Array.from({ length: end - first }, (_, k) => args.seeds + first + k);
      const started = performance.now();
      const fake = await generatedFeatures(net, model, { seeds, truncation: args.truncation, perSeedAverage: !useStored, batch: args.batch, label: 'generated' });
      const seconds = (performance.now() - started) / 1000;
      const source = `${args.ckpt} seeds ${args.seeds}-${args.seeds + count - 1} truncation ${args.truncation}`;
      await mkdir(args.tmp_dir, { recursive: true });
      if (shard.count > 1) {
        const path = featureShardPath(args.tmp_dir, args.fake_images_cache_name, shard.index, shard.count);
        await writeFeatureShard(path, { features: fake, index: shard.index, count: shard.count, firstSample: first, totalSamples: count, source, imageSize: size });
        console.error(`generate: ${seeds.length} images to features in ${seconds.toFixed(1)} s${describeShard(shard, count, 'seeds')}; written to ${path}; combine the shards with \`gramhd eval merge --tmp_dir ${args.tmp_dir} --fake_images_cache_name ${args.fake_images_cache_name}\``);
        return;
      }
      console.error(`generate: ${count} images of ${size}x${size} (truncation ${args.truncation}) to features in ${seconds.toFixed(1)} s, ${(count / seconds).toFixed(2)} images/s`);
      const fakeCache = join(args.tmp_dir, `${args.fake_images_cache_name}.safetensors`);
      await writeFeatureCache(fakeCache, fake, source, size);
      console.error(`generate: features cached in ${fakeCache}`);
      if (!wantsMetrics) return;
      let real: Float32Array;
      if (useRealCache) {
        real = await readFeatureCache(realCache, count);
        const realSize = await featureCacheImageSize(realCache);
        if (realSize !== undefined && realSize !== size) console.error(`warning: ${realCache} holds features of ${realSize}x${realSize} images, the generated ones are ${size}x${size}`);
        console.error(`real: features of ${count} images from ${realCache}`);
      } else {
        const realSize = args.image_size ?? size;
        real = await extractFeatures(net, args.real_images_dir!, count, realSize, args.batch, 'real');
        await writeFeatureCache(realCache, real, args.real_images_dir!, realSize);
      }
      printMetrics(await computeMetrics(real, fake, count, { subsets: args.kid_subsets, subsetSize: args.kid_subset_size }), args.json);
    } finally {
      net?.dispose();
      model.dispose();
      destroyDevice();
    }
  },
};

interface MergeArgs {
  shards?: string[];
  tmp_dir: string;
  fake_images_cache_name: string;
  real_images_cache_name: string;
  kid_subsets: number;
  kid_subset_size: number;
  json: boolean;
}

/** The shard files of <tmp_dir>/<name>.shard-I-of-N.safetensors, when none are named. */
async function findShards(tmpDir: string, name: string): Promise<string[]> {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escaped}\\.shard-\\d+-of-\\d+\\.safetensors$`);
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch {
    throw new Error(`--tmp_dir ${tmpDir}: cannot list the folder`);
  }
  return names.filter((n) => pattern.test(n)).sort().map((n) => join(tmpDir, n));
}

/**
 * `gramhd eval merge`: the shards of `gramhd eval generate --shard I/N` -> the cache one unsharded
 * run writes (same features in the same order, same metadata) and, when the real features are
 * cached, the same FID/KID: KID draws its subsets from the concatenated features, FID takes the
 * generated covariance from the shards' summed float64 moments (2048 samples or more).
 */
const evalMergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge [shards..]',
  describe: 'Combine the feature shards of `gramhd eval generate --shard I/N` into one cache, and FID/KID against the cached real features',
  builder: (yargs: Argv) => yargs
    .positional('shards', { type: 'string', array: true, describe: 'shard files (default: every <tmp_dir>/<fake_images_cache_name>.shard-I-of-N.safetensors)' })
    .option('tmp_dir', { type: 'string', default: 'tmp', describe: 'folder of the shards and caches' })
    .option('fake_images_cache_name', { type: 'string', default: 'fake_images', describe: 'the shards\' cache name: the merged features are written to <tmp_dir>/<name>.safetensors' })
    .option('real_images_cache_name', { type: 'string', default: 'real_images', describe: 'cache of the real features (from `gramhd eval` or `eval generate --real_images_dir`); FID/KID are computed when it exists' })
    .option('kid_subsets', { type: 'number', default: 100, describe: 'KID subsets (torch-fidelity default 100)' })
    .option('kid_subset_size', { type: 'number', default: 1000, describe: 'samples per KID subset (torch-fidelity default 1000)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the metrics as JSON' }),
  handler: async (args) => {
    const paths = args.shards?.length ? args.shards : await findShards(args.tmp_dir, args.fake_images_cache_name);
    if (paths.length === 0) throw new Error(`no shards: none named and no ${featureShardPath(args.tmp_dir, args.fake_images_cache_name, 0, 0).replace('-0-of-0', '-I-of-N')}`);
    const shards: (FeatureShard & { path: string })[] = [];
    for (const path of paths) shards.push({ ...(await readFeatureShard(path)), path });
    shards.sort((a, b) => a.index - b.index);
    const [first] = shards;
    // the shards must tile one run exactly: same run, every index once, contiguous samples
    for (const [k, sh] of shards.entries()) {
      const path = sh.path;
      if (sh.count !== first.count || sh.totalSamples !== first.totalSamples || sh.source !== first.source || sh.imageSize !== first.imageSize) {
        throw new Error(`shard ${sh.index}/${sh.count} (${path}) is not of the same run as shard ${first.index}/${first.count}: ${sh.source} (${sh.totalSamples} samples) vs ${first.source} (${first.totalSamples} samples)`);
      }
      if (sh.index !== k) throw new Error(`shards: ${k < sh.index ? `shard ${k}/${first.count} is missing` : `shard ${sh.index}/${sh.count} is given twice`}`);
      const expected = shardRange(first.totalSamples, { index: k, count: first.count, source: '' });
      if (sh.firstSample !== expected[0] || sh.moments.count !== expected[1] - expected[0]) throw new Error(`shard ${k}/${first.count}: samples ${sh.firstSample}.. (${sh.moments.count}), expected ${expected[0]}..${expected[1] - 1}`);
    }
    if (shards.length !== first.count) throw new Error(`shards: ${shards.length} of ${first.count} given; shards ${shards.length}..${first.count - 1} are missing`);
    const count = first.totalSamples;
    const fake = new Float32Array(count * FEATURE_DIM);
    for (const sh of shards) fake.set(sh.features, sh.firstSample * FEATURE_DIM);
    const moments = addMoments(shards.map((sh) => sh.moments));
    await mkdir(args.tmp_dir, { recursive: true });
    const fakeCache = join(args.tmp_dir, `${args.fake_images_cache_name}.safetensors`);
    await writeFeatureCache(fakeCache, fake, first.source, first.imageSize);
    console.error(`merge: ${shards.length} shards, ${count} samples -> ${fakeCache}`);
    const realCache = join(args.tmp_dir, `${args.real_images_cache_name}.safetensors`);
    if (!existsSync(realCache)) {
      console.error(`merge: no real features at ${realCache}, so no FID/KID (make them with \`gramhd eval\`)`);
      return;
    }
    if (count < 2) throw new Error(`FID/KID need at least 2 samples, the shards hold ${count}`);
    if (args.kid_subset_size > count) throw new Error(`--kid_subset_size ${args.kid_subset_size} is larger than the ${count} merged samples`);
    const real = await readFeatureCache(realCache, count);
    await initNodeDevice();
    try {
      printMetrics(await computeMetrics(real, fake, count, { subsets: args.kid_subsets, subsetSize: args.kid_subset_size }, moments), args.json);
    } finally {
      destroyDevice();
    }
  },
};

export const evalCommand: CommandModule<object, object> = {
  command: 'eval',
  describe: 'FID and KID between real and generated images (torch-fidelity\'s InceptionV3 features); `eval generate` renders the generated ones on the fly',
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  builder: (yargs: Argv) => yargs.command(evalGenerateCommand as CommandModule<any, any>).command(evalMergeCommand as CommandModule<any, any>).command(evalConsistencyCommand as CommandModule<any, any>).command(evalFoldersCommand as CommandModule<any, any>),
  handler: () => {},
};
