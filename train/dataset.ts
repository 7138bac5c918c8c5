// A folder of face/cat images with per-image poses, as the authors' FFHQ and AFHQCats datasets read
// them (GRAM-HD datasets.py): every image is Lanczos-resized to imgSize x imgSize, scaled to
// [-1, 1], and mirrored together with its yaw when the sample is flipped (after the resize, as
// F.hflip on the tensor). Node only (fs).
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { Random } from '../engine/nn/random.ts';
import { decodeImage, sniffImageFormat } from './image-decode.ts';
import { resizeLanczos } from './lanczos.ts';
import { readMatAngle, readNpyDepth, readNpyPose } from './pose-files.ts';

/** 'ffhq': poses/<name>.mat with an 'angle' array; 'afhq': poses/<name>_pose.npy. */
export type DatasetLayout = 'ffhq' | 'afhq';

export interface DatasetOptions {
  /** Output side length; images are resized to imgSize x imgSize. */
  imgSize: number;
  /** Pose-file convention; 'auto' (the default) picks the one with more matching files. */
  layout?: DatasetLayout | 'auto';
  /** Where skipped files are reported (default console.warn). */
  warn?: (message: string) => void;
}

/** One training example. */
export interface Sample {
  /** [3, imgSize, imgSize], values in [-1, 1]. */
  image: Float32Array;
  /** [pitch, yaw] in radians, as the generator's camera takes them. */
  pose: [number, number];
}

/** Everything a dataset needs to be rebuilt without rescanning (plain data, for worker threads). */
export interface DatasetDescription {
  dir: string;
  imgSize: number;
  layout: DatasetLayout;
  /** Image paths, sorted by file name. */
  images: string[];
  /** The two stored pose numbers per image: (a0, a1) of 'angle' or (p0, p1) of the .npy. */
  rawPoses: number[];
}

const imageExtensions = new Set(['.png', '.jpg', '.jpeg']);
/** More skipped files than this are summarised in one line. */
const maxWarnings = 10;

/**
 * The [pitch, yaw] the authors' read_pose / read_pose_npy return, rounded to float32 as their
 * torch.tensor(..., dtype=torch.float32) is.
 * ffhq: (-(a0 - 0.1) + pi/2, a1 + pi/2), flipped yaw -a1 + pi/2.
 * afhq: (p0 + 0.14, p1), flipped yaw pi - p1.
 */
export function poseFromStored(layout: DatasetLayout, stored: [number, number], flip: boolean): [number, number] {
  const [a, b] = stored;
  if (layout === 'ffhq') {
    return [Math.fround(-(a - 0.1) + Math.PI / 2), Math.fround((flip ? -b : b) + Math.PI / 2)];
  }
  return [Math.fround(a + 0.14), Math.fround(flip ? -b + Math.PI : b)];
}

/** ToTensor then Normalize([0.5], [0.5]) of one byte, in float32 as torch computes it. */
const byteToUnit = Float32Array.from({ length: 256 }, (_, u) =>
  Math.fround(Math.fround(Math.fround(u / 255) - 0.5) / 0.5),
);

function poseFileFor(dir: string, name: string, layout: DatasetLayout): string {
  return join(dir, 'poses', layout === 'ffhq' ? `${name}.mat` : `${name}_pose.npy`);
}

/** Reads the first bytes of a file (to check an image's signature without decoding it). */
function readHead(file: string, n: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const head = new Uint8Array(n);
    const got = readSync(fd, head, 0, n, 0);
    return head.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Images paired with poses; decoding happens per sample. */
export class ImageDataset {
  readonly dir: string;
  readonly imgSize: number;
  readonly layout: DatasetLayout;
  readonly images: readonly string[];
  private readonly rawPoses: Float64Array;

  constructor(description: DatasetDescription) {
    this.dir = description.dir;
    this.imgSize = description.imgSize;
    this.layout = description.layout;
    this.images = description.images;
    this.rawPoses = Float64Array.from(description.rawPoses);
  }

  get length(): number {
    return this.images.length;
  }

  /** A plain-data copy that `new ImageDataset(...)` accepts (e.g. in a worker thread). */
  describe(): DatasetDescription {
    const { dir, imgSize, layout } = this;
    return { dir, imgSize, layout, images: [...this.images], rawPoses: Array.from(this.rawPoses) };
  }

  /** The pose of sample `index`, its yaw mirrored when `flip`. */
  pose(index: number, flip: boolean): [number, number] {
    return poseFromStored(this.layout, [this.rawPoses[2 * index], this.rawPoses[2 * index + 1]], flip);
  }

  /**
   * Decodes, resizes and normalises image `index` into `out` at `offset` as [3, S, S], mirrored
   * left-right when `flip`. Throws an error naming the file if it cannot be decoded.
   */
  imageInto(index: number, flip: boolean, out: Float32Array, offset = 0): void {
    const file = this.images[index];
    const decoded = decodeImage(file, readFileSync(file));
    const size = this.imgSize;
    const { data } = resizeLanczos(decoded, size, size);
    const plane = size * size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const src = (y * size + (flip ? size - 1 - x : x)) * 3;
        const dst = offset + y * size + x;
        out[dst] = byteToUnit[data[src]];
        out[dst + plane] = byteToUnit[data[src + 1]];
        out[dst + 2 * plane] = byteToUnit[data[src + 2]];
      }
    }
  }

  /** Where image `index`'s ground-truth depth map would be (`gramhd data synth --depth`). */
  depthPath(index: number): string {
    return join(this.dir, 'depth', `${basename(this.images[index], extname(this.images[index]))}.npy`);
  }

  /** Image `index`'s depth map [imgSize, imgSize] (distance along the unit ray, 0 on the
   * background), unmirrored; an error naming the file if it is missing or of another size. */
  depth(index: number): Float32Array {
    const file = this.depthPath(index);
    if (!existsSync(file)) throw new Error(`${file}: no depth map (write the dataset with gramhd data synth --depth)`);
    return readNpyDepth(file, readFileSync(file), this.imgSize);
  }

  sample(index: number, flip: boolean): Sample {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new RangeError(`${this.dir}: sample index ${index} outside [0, ${this.length})`);
    }
    const image = new Float32Array(3 * this.imgSize * this.imgSize);
    this.imageInto(index, flip, image);
    return { image, pose: this.pose(index, flip) };
  }
}

/**
 * Scans `dir` for PNG/JPEG images and their pose files and reads every pose. Images without a
 * pose, unreadable poses and files that are not images are skipped with a warning naming them;
 * a folder with no usable pair is an error. Image pixels are decoded later, per sample.
 */
export function openDataset(dir: string, options: DatasetOptions): ImageDataset {
  const { imgSize } = options;
  const warn = options.warn ?? ((m: string) => console.warn(m));
  if (!Number.isInteger(imgSize) || imgSize < 1) throw new Error(`${dir}: imgSize must be a positive integer, got ${imgSize}`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such directory`);
  const names = readdirSync(dir)
    .filter((f) => imageExtensions.has(extname(f).toLowerCase()))
    .sort();

  let layout: DatasetLayout;
  if (options.layout === undefined || options.layout === 'auto') {
    const count = (l: DatasetLayout): number =>
      names.filter((f) => existsSync(poseFileFor(dir, basename(f, extname(f)), l))).length;
    layout = count('afhq') > count('ffhq') ? 'afhq' : 'ffhq';
  } else {
    layout = options.layout;
  }

  const skipped: string[] = [];
  const images: string[] = [];
  const rawPoses: number[] = [];
  for (const f of names) {
    const image = join(dir, f);
    const poseFile = poseFileFor(dir, basename(f, extname(f)), layout);
    if (!existsSync(poseFile)) {
      skipped.push(`${image}: no pose file ${poseFile}`);
      continue;
    }
    try {
      if (!sniffImageFormat(readHead(image, 8))) throw new Error(`${image}: not a PNG or JPEG image`);
      const bytes = readFileSync(poseFile);
      rawPoses.push(...(layout === 'ffhq' ? readMatAngle(poseFile, bytes) : readNpyPose(poseFile, bytes)));
      images.push(image);
    } catch (e) {
      skipped.push((e as Error).message);
    }
  }
  for (const m of skipped.slice(0, maxWarnings)) warn(`skipping ${m}`);
  if (skipped.length > maxWarnings) warn(`skipping ${skipped.length - maxWarnings} more files in ${dir}`);
  if (images.length === 0) {
    throw new Error(`${dir}: no image with a pose file (expected poses/<name>.mat or poses/<name>_pose.npy)`);
  }
  return new ImageDataset({ dir, imgSize, layout, images, rawPoses });
}

/** A seed for (seed, epoch, stream): distinct streams for shuffling and flipping. */
function epochSeed(seed: number, epoch: number, stream: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35)) >>> 0;
}

/**
 * The sample indices of one epoch for one data-parallel rank, like torch's DistributedSampler:
 * a seeded permutation (Fisher-Yates), padded by wrapping to a multiple of worldSize, then every
 * worldSize-th entry from `rank`.
 */
export function epochOrder(length: number, epoch: number, seed: number, rank = 0, worldSize = 1): Int32Array {
  if (!(worldSize >= 1 && rank >= 0 && rank < worldSize)) throw new Error(`rank ${rank} outside world of ${worldSize}`);
  const rng = new Random(epochSeed(seed, epoch, 0));
  const perm = Int32Array.from({ length }, (_, i) => i);
  for (let i = length - 1; i > 0; i--) {
    const j = Math.floor((rng.nextUint32() / 4294967296) * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const perRank = Math.ceil(length / worldSize);
  return Int32Array.from({ length: perRank }, (_, k) => perm[(rank + k * worldSize) % length]);
}

/** Per position of an epoch's order: whether that sample is mirrored (probability 1/2). */
export function epochFlips(count: number, epoch: number, seed: number, rank = 0): Uint8Array {
  const rng = new Random(epochSeed(seed, epoch, 1 + rank));
  return Uint8Array.from({ length: count }, () => (rng.uniform() < 0.5 ? 1 : 0));
}
