// `gramhd eval`: the authors' eval.py, FID and KID between a folder of real images and a folder of
// generated ones, computed as torch-fidelity computes them (model/inception.ts, model/fid.ts,
// model/kid.ts) on the 2048-dimensional pool features of its InceptionV3. The weights are
// torch-fidelity's weights-inception-2015-12-05-6726825d.pth, given by path (nothing is downloaded).
//
// Images: the first --num_samples of each folder (PNG or JPEG, sorted by name), as 8-bit RGB; any
// image whose size is not --image_size is Lanczos-resized to it (PIL's LANCZOS, as the reference's
// dataset resizes). Features are cached per input in --tmp_dir as <cache name>.safetensors
// (tensor 'features/2048', [n, 2048] F32), read back with --use_*_images_cache.
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice, noGrad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { toFloat32, type HostTensor } from '../../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { fidFromFeatures, type FeatureMatrix } from '../../model/fid.ts';
import { InceptionV3 } from '../../model/inception.ts';
import { kernelInceptionDistance, type KernelSums } from '../../model/kid.ts';
import { decodeImage, sniffImageFormat } from '../../train/image-decode.ts';
import { resizeLanczos } from '../../train/lanczos.ts';
import { readFileBytes, writeFileAtomic } from '../files.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { Progress } from '../progress.ts';

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

const FEATURE = 'features/2048';
const FEATURE_DIM = 2048;

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
      if (image.width !== size || image.height !== size) image = resizeLanczos(image, size, size);
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

async function readCache(path: string, count: number): Promise<Float32Array> {
  const { tensors } = parseSafetensors(await readFileBytes(path), path);
  const t = tensors.get(FEATURE);
  if (!t || t.shape.length !== 2 || t.shape[1] !== FEATURE_DIM) throw new Error(`${path}: no [n, ${FEATURE_DIM}] tensor '${FEATURE}'`);
  if (t.shape[0] < count) throw new Error(`${path}: caches ${t.shape[0]} samples, fewer than --num_samples ${count}`);
  return toFloat32(t, `${path}: ${FEATURE}`).slice(0, count * FEATURE_DIM);
}

async function writeCache(path: string, features: Float32Array, source: string): Promise<void> {
  const tensor: HostTensor = { dtype: 'F32', shape: [features.length / FEATURE_DIM, FEATURE_DIM], data: new Uint8Array(features.buffer, features.byteOffset, features.byteLength) };
  await writeFileAtomic(path, serializeSafetensors([[FEATURE, tensor]], { source, extractor: 'inception-v3-compat' }));
}

/** KID's kernel sums of one subset pair on the GPU: the float32 kernel matrices (as torch-fidelity's
 * numpy float32 ones), summed in float64 on the host. */
async function kernelSumsGpu(x: Float64Array, y: Float64Array, m: number, d: number): Promise<KernelSums> {
  return tidyAsync(async () => {
    const xs = Tensor.fromData(Float32Array.from(x), [m, d]);
    const ys = Tensor.fromData(Float32Array.from(y), [m, d]);
    const kernel = (a: Tensor, b: Tensor) => {
      const t = ops.add(ops.mul(ops.matmul(a, b, { transB: true }), 1 / d), 1);
      return ops.mul(t, ops.mul(t, t));
    };
    const sum = async (k: Tensor, offDiagonal: boolean) => {
      const v = await k.toFloat32();
      let total = 0;
      for (let i = 0; i < v.length; i++) total += v[i];
      if (offDiagonal) for (let i = 0; i < m; i++) total -= v[i * m + i];
      return total;
    };
    return { xx: await sum(kernel(xs, xs), true), yy: await sum(kernel(ys, ys), true), xy: await sum(kernel(xs, ys), false) };
  });
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'FID and KID between real and generated images (torch-fidelity\'s InceptionV3 features)',
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
      const features: FeatureMatrix[] = [];
      for (const i of inputs) {
        let data: Float32Array;
        if (i.useCache && existsSync(i.cache)) {
          data = await readCache(i.cache, count);
          console.error(`${i.label}: features of ${count} images from ${i.cache}`);
        } else {
          data = await extractFeatures(net!, i.dir!, count, size, args.batch, i.label);
          await mkdir(tmpDir, { recursive: true });
          await writeCache(i.cache, data, i.dir!);
        }
        features.push({ data, n: count, d: FEATURE_DIM });
      }
      const fid = fidFromFeatures(features[0], features[1]);
      const kid = await kernelInceptionDistance(features[0], features[1], { subsets: args.kid_subsets, subsetSize: args.kid_subset_size, kernelSums: kernelSumsGpu });
      const metrics = { frechet_inception_distance: fid, kernel_inception_distance_mean: kid.mean, kernel_inception_distance_std: kid.std, num_samples: count };
      if (args.json) {
        console.log(JSON.stringify(metrics));
      } else {
        console.log(`metric  value`);
        console.log(`FID     ${fid.toFixed(4)}`);
        console.log(`KID     ${kid.mean.toExponential(4)} ± ${kid.std.toExponential(4)}`);
      }
    } finally {
      net?.dispose();
      destroyDevice();
    }
  },
};
