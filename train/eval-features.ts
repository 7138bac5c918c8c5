// What `gramhd eval`, `gramhd eval generate` and `gramhd train --eval_interval` share: the feature
// cache files (<tmp_dir>/<name>.safetensors, tensor 'features/2048' [n, 2048] F32), the FID/KID
// computation and its table, and the generate path: images rendered exactly as `gramhd render --type
// rand` renders them (per seed: torch.manual_seed(seed), z = randn(1, z_dim), the next 10000 x z_dim
// normals for the truncation average, then the random pose), turned on the GPU into the 8-bit
// values render's PNG writer would store (toByte with clipping: trunc(clamp(x / 2 + 0.5, 0, 1) *
// 255), NaN -> 0), as floats 0..255, and fed straight into the InceptionV3 extractor; only the
// 2048-d features come back to the host.
import { noGrad, ops, Tensor, tidy, tidyAsync } from '../engine/index.ts';
import { concatFloat32, toFloat32, type HostTensor } from '../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.ts';
import type { Camera } from '../model/camera.ts';
import { cameraFromPose, randomPose } from '../model/camera.ts';
import type { GeneratorConfig } from '../model/config.ts';
import { featureMoments, featureStatistics, fidFromFeatures, frechetDistance, statisticsFromMoments, type FeatureMatrix, type FeatureMoments } from '../model/fid.ts';
import type { InceptionV3 } from '../model/inception.ts';
import { kernelInceptionDistance, type KernelSums } from '../model/kid.ts';
import { readFileBytes, writeFileAtomic } from './files.ts';
import { Progress } from './progress.ts';
import { TorchGenerator } from '../model/torch-random.ts';

export const FEATURE = 'features/2048';
export const FEATURE_DIM = 2048;

/** The first `count` rows of a feature cache; `image_size` from its metadata when it has one. */
export async function readFeatureCache(path: string, count: number): Promise<Float32Array> {
  const { tensors } = parseSafetensors(await readFileBytes(path), path);
  const t = tensors.get(FEATURE);
  if (!t || t.shape.length !== 2 || t.shape[1] !== FEATURE_DIM) throw new Error(`${path}: no [n, ${FEATURE_DIM}] tensor '${FEATURE}'`);
  if (t.shape[0] < count) throw new Error(`${path}: caches ${t.shape[0]} samples, fewer than the ${count} asked for (--num_samples / --eval_samples)`);
  return toFloat32(t, `${path}: ${FEATURE}`).slice(0, count * FEATURE_DIM);
}

/** The image size a cache's features were extracted at (metadata image_size), if it says. */
export async function featureCacheImageSize(path: string): Promise<number | undefined> {
  const { metadata } = parseSafetensors(await readFileBytes(path), path);
  const size = Number(metadata.image_size);
  return Number.isInteger(size) && size > 0 ? size : undefined;
}

export async function writeFeatureCache(path: string, features: Float32Array, source: string, imageSize?: number): Promise<void> {
  const tensor: HostTensor = { dtype: 'F32', shape: [features.length / FEATURE_DIM, FEATURE_DIM], data: new Uint8Array(features.buffer, features.byteOffset, features.byteLength) };
  const metadata: Record<string, string> = { source, extractor: 'inception-v3-compat' };
  if (imageSize !== undefined) metadata.image_size = String(imageSize);
  await writeFileAtomic(path, serializeSafetensors([[FEATURE, tensor]], metadata));
}

/** One shard's part of a generated feature set (`gramhd eval generate --shard I/N`). */
export interface FeatureShard {
  /** [n, 2048], the shard's samples in order (KID draws its subsets from all samples). */
  features: Float32Array;
  moments: FeatureMoments;
  index: number;
  count: number;
  /** Index of the shard's first sample in the whole list, and the whole list's length. */
  firstSample: number;
  totalSamples: number;
  /** The `source` metadata of the whole run's cache, so that the merged cache is the one-run file. */
  source: string;
  imageSize?: number;
}

/** `<tmp_dir>/<name>.shard-I-of-N.safetensors` */
export function featureShardPath(tmpDir: string, name: string, index: number, count: number): string {
  return `${tmpDir}/${name}.shard-${index}-of-${count}.safetensors`;
}

const asBytes = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes a shard: its features, the float64 sum and sum of outer products of its features, and where it sits in the whole list. */
export async function writeFeatureShard(path: string, shard: Omit<FeatureShard, 'moments'>): Promise<FeatureMoments> {
  const n = shard.features.length / FEATURE_DIM;
  const moments = featureMoments({ data: shard.features, n, d: FEATURE_DIM });
  const metadata: Record<string, string> = {
    source: shard.source, extractor: 'inception-v3-compat',
    shard_index: String(shard.index), shard_count: String(shard.count),
    first_sample: String(shard.firstSample), total_samples: String(shard.totalSamples),
  };
  if (shard.imageSize !== undefined) metadata.image_size = String(shard.imageSize);
  await writeFileAtomic(path, serializeSafetensors([
    [FEATURE, { dtype: 'F32', shape: [n, FEATURE_DIM], data: asBytes(shard.features) }],
    ['moments/sum', { dtype: 'F64', shape: [FEATURE_DIM], data: asBytes(moments.sum) }],
    ['moments/outer', { dtype: 'F64', shape: [FEATURE_DIM, FEATURE_DIM], data: asBytes(moments.outer) }],
  ], metadata));
  return moments;
}

export async function readFeatureShard(path: string): Promise<FeatureShard> {
  const { tensors, metadata } = parseSafetensors(await readFileBytes(path), path);
  const f = tensors.get(FEATURE);
  const sum = tensors.get('moments/sum');
  const outer = tensors.get('moments/outer');
  if (!f || f.dtype !== 'F32' || f.shape.length !== 2 || f.shape[1] !== FEATURE_DIM) throw new Error(`${path}: no [n, ${FEATURE_DIM}] F32 tensor '${FEATURE}' (not a feature shard of \`gramhd eval generate --shard\`)`);
  if (!sum || sum.dtype !== 'F64' || !outer || outer.dtype !== 'F64' || outer.shape.join() !== `${FEATURE_DIM},${FEATURE_DIM}`) throw new Error(`${path}: no F64 moments/sum and moments/outer (not a feature shard of \`gramhd eval generate --shard\`)`);
  const int = (key: string) => {
    const v = Number(metadata[key]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${path}: metadata ${key} '${metadata[key]}' is not a non-negative integer`);
    return v;
  };
  const float64 = (t: HostTensor) => new Float64Array(t.data.slice().buffer);
  const n = f.shape[0];
  const imageSize = Number(metadata.image_size);
  return {
    features: toFloat32(f, `${path}: ${FEATURE}`),
    moments: { count: n, d: FEATURE_DIM, sum: float64(sum), outer: float64(outer) },
    index: int('shard_index'), count: int('shard_count'), firstSample: int('first_sample'), totalSamples: int('total_samples'),
    source: metadata.source ?? '', imageSize: Number.isInteger(imageSize) && imageSize > 0 ? imageSize : undefined,
  };
}

/** KID's kernel sums of one subset pair on the GPU: the float32 kernel matrices (as torch-fidelity's
 * numpy float32 ones), summed in float64 on the host. */
export async function kernelSumsGpu(x: Float64Array, y: Float64Array, m: number, d: number): Promise<KernelSums> {
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

export interface Metrics {
  frechet_inception_distance: number;
  kernel_inception_distance_mean: number;
  kernel_inception_distance_std: number;
  num_samples: number;
}

/**
 * FID and KID (torch-fidelity's definitions) between two [count, 2048] feature sets. With
 * `fakeMoments` (merged shards) and at least 2048 samples, the generated side's covariance comes from
 * the summed moments instead of a pass over the features; below 2048 samples FID works in the
 * samples' space, which needs the features themselves.
 */
export async function computeMetrics(real: Float32Array, fake: Float32Array, count: number, kid: { subsets: number; subsetSize: number }, fakeMoments?: FeatureMoments): Promise<Metrics> {
  const a: FeatureMatrix = { data: real, n: count, d: FEATURE_DIM };
  const b: FeatureMatrix = { data: fake, n: count, d: FEATURE_DIM };
  const fid = fakeMoments && count >= FEATURE_DIM && fakeMoments.count === count
    ? frechetDistance(featureStatistics(a), statisticsFromMoments(fakeMoments))
    : fidFromFeatures(a, b);
  const k = await kernelInceptionDistance(a, b, { subsets: kid.subsets, subsetSize: kid.subsetSize, kernelSums: kernelSumsGpu });
  return { frechet_inception_distance: fid, kernel_inception_distance_mean: k.mean, kernel_inception_distance_std: k.std, num_samples: count };
}

/** The metrics on stdout: one JSON line, or the table. */
export function printMetrics(metrics: Metrics, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(metrics));
  } else {
    console.log(`metric  value`);
    console.log(`FID     ${metrics.frechet_inception_distance.toFixed(4)}`);
    console.log(`KID     ${metrics.kernel_inception_distance_mean.toExponential(4)} ± ${metrics.kernel_inception_distance_std.toExponential(4)}`);
  }
}

/**
 * Generator images [B, 3, H, W] in [-1, 1] -> the bytes render's PNG writer stores for them
 * (cli/image-io.ts toByte with clip: f32 x * 0.5 + 0.5, clamped to [0, 1], times 255, truncated;
 * NaN -> 0), as f32 values 0..255 on the GPU. x * 0.5 is exact, so a fused multiply-add rounds the
 * same as the two f32 steps on the host.
 */
export function imagesToPixels(images: Tensor): Tensor {
  return ops.mapElements('rgb8', 'select(0.0, trunc(clamp(a * 0.5 + 0.5, 0.0, 1.0) * 255.0), a == a)', [images]);
}

/** What generation needs of a generator (cli/checkpoint.ts's Renderable fits). */
export interface SampleGenerator {
  readonly config: GeneratorConfig;
  computeAverage(z: Tensor): void;
  /** Images nothing is differentiated through ([B, 3, H, W] in [-1, 1]); lowRes false: GRAM-HD
   * need not render its low-res image. */
  renderVisible(z: Tensor, cameras: readonly Camera[], options: { truncationPsi: number; lockViewDependence: boolean; lowRes: boolean }): Promise<{ image: Tensor }>;
}

export interface GenerateOptions {
  seeds: readonly number[];
  /** Truncation psi (1: none). */
  truncation: number;
  /** Recompute the truncation average per seed from its own stream (render's --average seed);
   * false: the generator's current averages are used (stored ones), or none at psi 1. */
  perSeedAverage: boolean;
  /** Images per forward pass (a per-seed average limits a pass to one seed). */
  batch: number;
  /** Progress bar label (none when undefined). */
  label?: string;
}

/**
 * The 2048-d Inception features of the images `gramhd render --type rand --seeds ...` would write
 * (image k of the result is seed k's, i.e. render's <k:05d>.png), [seeds, 2048]. Only the features
 * leave the GPU.
 */
export async function generatedFeatures(net: InceptionV3, model: SampleGenerator, options: GenerateOptions): Promise<Float32Array> {
  const { seeds, truncation } = options;
  const zDim = model.config.z_dim;
  const perSeedAverage = options.perSeedAverage && truncation !== 1;
  const out = new Float32Array(seeds.length * FEATURE_DIM);
  const progress = options.label === undefined ? null : new Progress(seeds.length, `${options.label} images`);
  let batch: { index: number; z: Float32Array; camera: Camera }[] = [];
  const run = async () => {
    const features = await tidyAsync(async () => {
      const z = Tensor.fromData(concatFloat32(batch.map((j) => j.z)), [batch.length, zDim]);
      const { image } = await model.renderVisible(z, batch.map((j) => j.camera), { truncationPsi: truncation, lockViewDependence: false, lowRes: false });
      const f = noGrad(() => net.forward(imagesToPixels(image)))['2048'];
      return f.toFloat32();
    });
    out.set(features, batch[0].index * FEATURE_DIM);
    progress?.tick(batch.length);
    batch = [];
  };
  for (let index = 0; index < seeds.length; index++) {
    const g = new TorchGenerator(seeds[index]);
    const z = g.randn(zDim);
    let averageZ: Float32Array | null = null;
    if (perSeedAverage) averageZ = g.randn(10000 * zDim);
    else g.skipRandn(10000 * zDim);
    const [pitch, yaw] = randomPose(model.config.pose, g);
    if (averageZ) {
      if (batch.length) await run();
      const latents = averageZ;
      tidy(() => noGrad(() => model.computeAverage(Tensor.fromData(latents, [10000, zDim]))));
    }
    batch.push({ index, z, camera: cameraFromPose(pitch, yaw) });
    if (batch.length === options.batch || perSeedAverage) await run();
  }
  if (batch.length) await run();
  return out;
}

