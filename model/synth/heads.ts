// Procedural heads for synthetic training data: per-image parameters (shape, colours, light) and a
// camera pose drawn from a seeded stream, rendered by the SDF ray marcher of kernels/sdf-heads.ts
// with exactly the renderer's camera (model/camera.ts). Each image has its own stream, seeded from
// (seed, index), so image i is the same whatever the count or batch size.
import { Tensor } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import { dispatch } from '../../engine/runtime.ts';
import { HEAD_VEC4S, SDF_HEADS_WG, sdfHeadsKernel, sdfHeadsUniforms } from '../../kernels/sdf-heads.ts';
import { cameraFromPose, cameraRotation, sampleCameras, type Vec3 } from '../camera.ts';
import { DEFAULT_POSE } from '../config.ts';

/** One head's shape in head units (cranium radius ~0.9, face towards +z), its colours (sRGB in
 * [0, 1]) and its light (in world space, fixed to the head). */
export interface SynthHead {
  /** World units per head unit. */
  scale: number;
  cranium: Vec3;
  jaw: Vec3;
  jawY: number;
  noseLength: number;
  noseWidth: number;
  noseY: number;
  eyeSpacing: number;
  eyeSize: number;
  eyeY: number;
  earSize: number;
  browHeight: number;
  cheek: number;
  mouthWidth: number;
  neckRadius: number;
  /** How far the hair stands off the cranium (relative). */
  hairVolume: number;
  /** Height of the hairline above the eyes at the forehead; large means bald. */
  hairline: number;
  longHair: boolean;
  /** How far long hair falls (0..1). */
  hairLength: number;
  skin: Vec3;
  hair: Vec3;
  iris: Vec3;
  lips: Vec3;
  clothes: Vec3;
  /** Background colour at the top and bottom of the image (equal for a plain background). */
  backgroundTop: Vec3;
  backgroundBottom: Vec3;
  lightDirection: Vec3;
  lightIntensity: number;
  ambient: number;
}

/** A head and the pose it is seen from ((pi/2, pi/2) is the frontal view from +z). */
export interface SynthSample {
  head: SynthHead;
  pitch: number;
  yaw: number;
}

/** Poses are clamped to 3 standard deviations of the FFHQ-like gaussian. */
export const MAX_YAW_OFFSET = 3 * DEFAULT_POSE.h_stddev;
export const MAX_PITCH_OFFSET = 3 * DEFAULT_POSE.v_stddev;

const SKIN_TONES: Vec3[] = [[0.97, 0.82, 0.72], [0.91, 0.71, 0.57], [0.79, 0.58, 0.43], [0.58, 0.4, 0.28], [0.38, 0.25, 0.17]];
const HAIR_COLOURS: Vec3[] = [[0.07, 0.05, 0.04], [0.22, 0.13, 0.07], [0.42, 0.27, 0.14], [0.86, 0.71, 0.45], [0.62, 0.27, 0.1], [0.72, 0.72, 0.72]];
const IRIS_COLOURS: Vec3[] = [[0.3, 0.45, 0.7], [0.38, 0.22, 0.1], [0.35, 0.5, 0.3], [0.15, 0.1, 0.07]];

function pick<T>(rng: Random, items: readonly T[]): T {
  return items[Math.min(items.length - 1, Math.floor(rng.uniform() * items.length))];
}

function jitter(rng: Random, c: Vec3, amount: number): Vec3 {
  return c.map((x) => Math.min(1, Math.max(0, x + rng.uniform(-amount, amount)))) as Vec3;
}

function normalize(v: Vec3): Vec3 {
  const n = Math.hypot(...v);
  return [v[0] / n, v[1] / n, v[2] / n];
}

/** Head parameters from `rng`. */
export function sampleHead(rng: Random): SynthHead {
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  const tone = u(0, SKIN_TONES.length - 1);
  const lo = Math.floor(tone);
  const hi = Math.min(lo + 1, SKIN_TONES.length - 1);
  const skin = jitter(rng, SKIN_TONES[lo].map((x, k) => x + (SKIN_TONES[hi][k] - x) * (tone - lo)) as Vec3, 0.03);
  const backgroundTop: Vec3 = [u(0.1, 0.95), u(0.1, 0.95), u(0.1, 0.95)];
  const gradient = rng.uniform() < 0.5;
  const backgroundBottom: Vec3 = gradient ? [u(0.1, 0.95), u(0.1, 0.95), u(0.1, 0.95)] : backgroundTop;
  const bald = rng.uniform() < 0.06;
  const longHair = !bald && rng.uniform() < 0.35;
  return {
    scale: u(0.08, 0.09),
    cranium: [u(0.72, 0.8), u(0.86, 0.96), u(0.88, 0.96)],
    jaw: [u(0.5, 0.62), u(0.5, 0.6), u(0.56, 0.64)],
    jawY: u(-0.38, -0.3),
    noseLength: u(0.1, 0.2),
    noseWidth: u(0.07, 0.1),
    noseY: u(-0.26, -0.18),
    eyeSpacing: u(0.26, 0.31),
    eyeSize: u(0.08, 0.095),
    eyeY: u(0.02, 0.08),
    earSize: u(0.85, 1.2),
    browHeight: u(0.14, 0.19),
    cheek: u(0.8, 1.2),
    mouthWidth: u(0.15, 0.21),
    neckRadius: u(0.33, 0.42),
    hairVolume: u(0.03, 0.14),
    hairline: bald ? 5 : u(0.24, 0.42),
    longHair,
    hairLength: longHair ? u(0.2, 1) : 0,
    skin,
    hair: jitter(rng, pick(rng, HAIR_COLOURS), 0.05),
    iris: jitter(rng, pick(rng, IRIS_COLOURS), 0.05),
    lips: skin.map((x, k) => x * [0.85, 0.55, 0.55][k]) as Vec3,
    clothes: [u(0.05, 0.9), u(0.05, 0.9), u(0.05, 0.9)],
    backgroundTop,
    backgroundBottom,
    lightDirection: normalize([u(-0.8, 0.8), u(0, 0.9), u(0.3, 1)]),
    lightIntensity: u(0.55, 0.95),
    ambient: u(0.25, 0.45),
  };
}

/** A pose drawn like FFHQ training poses (the reference's 'gaussian': yaw first, then pitch),
 * clamped to 3 standard deviations. */
export function samplePose(rng: Random): { pitch: number; yaw: number } {
  const [camera] = sampleCameras(1, DEFAULT_POSE, rng);
  const clamp = (x: number, mean: number, limit: number) => Math.min(mean + limit, Math.max(mean - limit, x));
  return { pitch: clamp(camera.pitch, DEFAULT_POSE.v_mean, MAX_PITCH_OFFSET), yaw: clamp(camera.yaw, DEFAULT_POSE.h_mean, MAX_YAW_OFFSET) };
}

/** The generator of image `index` of the data set made with `seed`. */
export function imageRandom(seed: number, index: number): Random {
  return new Random((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

/** Image `index` of the data set made with `seed`: its pose, then its head, from its own stream. */
export function synthSample(seed: number, index: number): SynthSample {
  const rng = imageRandom(seed, index);
  const pose = samplePose(rng);
  return { head: sampleHead(rng), ...pose };
}

/** The kernel's parameter rows, HEAD_VEC4S vec4 per sample (colours converted to linear light,
 * since the kernel shades linearly and writes sqrt as its gamma). */
export function packHeads(samples: readonly SynthSample[], radius = 1): Float32Array {
  const out = new Float32Array(samples.length * HEAD_VEC4S * 4);
  const linear = (c: Vec3): Vec3 => [c[0] * c[0], c[1] * c[1], c[2] * c[2]];
  samples.forEach(({ head: h, pitch, yaw }, i) => {
    const camera = cameraFromPose(pitch, yaw, radius);
    const rot = cameraRotation(camera.origin);
    const rows: number[][] = [
      [h.scale, ...h.cranium],
      [...h.jaw, h.jawY],
      [h.noseLength, h.noseWidth, h.noseY, h.eyeSpacing],
      [h.eyeSize, h.eyeY, h.earSize, h.hairVolume],
      [h.hairline, h.hairLength, h.neckRadius, h.mouthWidth],
      [...linear(h.skin), 0],
      [...linear(h.hair), 0],
      [...linear(h.iris), 0],
      [...linear(h.lips), 0],
      [...linear(h.clothes), 0],
      [...linear(h.backgroundTop), 0],
      [...linear(h.backgroundBottom), 0],
      [...h.lightDirection, h.lightIntensity],
      [h.ambient, h.browHeight, h.cheek, h.longHair ? 1 : 0],
      [...camera.origin, 0],
      [rot[0], rot[1], rot[2], 0],
      [rot[3], rot[4], rot[5], 0],
      [rot[6], rot[7], rot[8], 0],
    ];
    rows.forEach((row, r) => out.set(row, (i * HEAD_VEC4S + r) * 4));
  });
  return out;
}

export interface RenderHeadsOptions {
  /** Field of view in degrees (the configurations' 12). */
  fov?: number;
  /** Samples per pixel along each axis (2 = 4 samples, anti-aliased). */
  supersample?: number;
  /** Also return the depth of each pixel's centre ray. */
  depth?: boolean;
}

export interface RenderedHeads {
  /** Per image, 8-bit RGB, row-major HWC. */
  images: Uint8Array[];
  /** Per image (when asked), [H, W] distance along the unit ray from the camera origin to the
   * surface (not z-depth); 0 where the ray misses the head (background). */
  depths: Float32Array[] | null;
}

/** Renders the samples as size x size images in one dispatch. */
export async function renderHeads(samples: readonly SynthSample[], size: number, options: RenderHeadsOptions = {}): Promise<RenderedHeads> {
  const { fov = 12, supersample = 2, depth = false } = options;
  const count = samples.length;
  const pixels = size * size;
  const params = Tensor.fromData(packHeads(samples), [count * HEAD_VEC4S * 4]);
  const rgba = Tensor.empty([count * pixels], 'i32');
  const depthTensor = Tensor.empty([depth ? count * pixels : 1]);
  try {
    const focal = 1 / Math.tan((fov * Math.PI) / 360);
    dispatch(sdfHeadsKernel, [params.buffer, rgba.buffer, depthTensor.buffer], sdfHeadsUniforms(count, size, size, supersample, focal, depth), Math.ceil((count * pixels) / SDF_HEADS_WG));
    const bytes = new Uint8Array((await rgba.data()).buffer);
    const images = Array.from({ length: count }, (_, i) => {
      const rgb = new Uint8Array(pixels * 3);
      for (let p = 0; p < pixels; p++) {
        const src = (i * pixels + p) * 4;
        rgb[p * 3] = bytes[src];
        rgb[p * 3 + 1] = bytes[src + 1];
        rgb[p * 3 + 2] = bytes[src + 2];
      }
      return rgb;
    });
    let depths: Float32Array[] | null = null;
    if (depth) {
      const all = await depthTensor.toFloat32();
      depths = Array.from({ length: count }, (_, i) => all.slice(i * pixels, (i + 1) * pixels));
    }
    return { images, depths };
  } finally {
    params.dispose();
    rgba.dispose();
    depthTensor.dispose();
  }
}
