// Model and training configurations. Keys are the authors' (configs.py, and the `config` objects of
// test/golden/manifest.json), so a configuration is the same JSON in both projects: the seven named
// configurations of the paper, and free-form ones parsed (and checked) from JSON.

export type SigmaClampMode = 'softplus' | 'relu' | 'none';
export type RgbClampMode = 'widen_sigmoid' | 'sigmoid' | 'none';
export type PoseSampling = 'gaussian' | 'uniform' | 'fixed';

/** The manifold (sample) network and the radiance network. */
export interface RepresentationConfig {
  hidden_dim: number;
  sigma_clamp_mode: SigmaClampMode;
  rgb_clamp_mode: RgbClampMode;
  hidden_dim_sample: number;
  layer_num_sample: number;
  center: [number, number, number];
  init_radius: number;
}

export interface RendererConfig {
  num_samples: number;
  num_manifolds: number;
  levels_start: number;
  levels_end: number;
}

export interface CameraConfig {
  /** Vertical field of view in degrees. */
  fov: number;
  ray_start: number;
  ray_end: number;
}

/** The distribution training cameras are drawn from: yaw (h) then pitch (v), in radians. */
export interface PoseDistribution {
  sample_dist: PoseSampling;
  h_mean: number;
  v_mean: number;
  h_stddev: number;
  v_stddev: number;
}

/** StyleRRDBNet: super-resolves the manifold images (rgb, alpha, features). */
export interface ForegroundSRConfig {
  w_dim: number;
  nf: number;
  nb: number;
  gc: number;
  up_channels: number[];
  to_rgb_ks: number;
}

/** RRDBNet: super-resolves the background plane. */
export interface BackgroundSRConfig {
  nf: number;
  nb: number;
  gc: number;
  up_channels: number[];
  use_pixel_shuffle: boolean;
  global_residual: boolean;
}

export interface SuperResolutionConfig {
  fg: ForegroundSRConfig;
  bg: BackgroundSRConfig;
}

export interface DiscriminatorConfig {
  class: 'GramEncoderDiscriminator' | 'GramEncoderPatchDiscriminator';
  img_size: number;
  /** Channel cap of the encoder (400 in the paper; the golden cases use 32). */
  max_channels: number;
  /** Width of the PatchGAN's first conv, min(64, 2^(14 - log2 img)); null without a patch head. */
  patch_ndf: number | null;
  /** Stride-2 convs of the PatchGAN, max(3, log2 img - 6); null without a patch head. */
  patch_layers: number | null;
}

/** The reference training process (processes.py) and optimiser settings. */
export interface TrainingConfig {
  process: 'Gan3DProcess' | 'SRGan3DProcess';
  /** Per GPU; the reference averages gradients over GPUs. */
  batch_size: number;
  batch_split: number;
  gen_lr: number;
  disc_lr: number;
  betas: [number, number];
  adam_eps: number;
  grad_clip: number;
  r1_lambda: number;
  pos_lambda: number;
  real_pos_lambda: number;
  /** Consistency between the downsampled high-res and the low-res render (GRAM-HD; 0 for GRAM). */
  cons_lambda: number;
  use_patch_d: boolean;
  patch_lambda: number;
  r1_patch: boolean;
  /** The two generator EMAs (torch_ema schedule). */
  ema_decays: number[];
  dataset: 'FFHQ' | 'AFHQCats';
  z_dist: 'gaussian';
}

interface CommonConfig {
  /** The configuration's name when it is a named one. */
  name?: string;
  z_dim: number;
  img_size: number;
  representation: RepresentationConfig;
  renderer: RendererConfig;
  camera: CameraConfig;
  pose: PoseDistribution;
  /** Present in the named configurations; free-form ones may leave it out. */
  discriminator?: DiscriminatorConfig;
  training?: TrainingConfig;
}

/** Stage one: GRAM at img_size. */
export interface GramConfig extends CommonConfig {
  generator: 'GramGenerator';
}

/** Stage two: GRAM-HD renders manifolds at lr_img_size and super-resolves them to img_size. */
export interface GramHDConfig extends CommonConfig {
  generator: 'GramHDGenerator';
  /** Width of the radiance network's feature head (`output_feature`). */
  feature_dim: number;
  lr_img_size: number;
  super_resolution: SuperResolutionConfig;
}

export type GeneratorConfig = GramConfig | GramHDConfig;

// ---- the named configurations (configs.py) ----

const REPRESENTATION: RepresentationConfig = {
  hidden_dim: 256,
  sigma_clamp_mode: 'softplus',
  rgb_clamp_mode: 'widen_sigmoid',
  hidden_dim_sample: 128,
  layer_num_sample: 3,
  center: [0, 0, -1.5],
  init_radius: 0,
};
const RENDERER: RendererConfig = { num_samples: 64, num_manifolds: 24, levels_start: 23, levels_end: 8 };
const CAMERA: CameraConfig = { fov: 12, ray_start: 0.88, ray_end: 1.12 };
export const DEFAULT_POSE: PoseDistribution = { sample_dist: 'gaussian', h_mean: Math.PI / 2, v_mean: Math.PI / 2, h_stddev: 0.3, v_stddev: 0.155 };
const DISCRIMINATOR_CHANNEL_CAP = 400;

function discriminator(img: number, patch: boolean): DiscriminatorConfig {
  const log2 = Math.log2(img);
  return {
    class: patch ? 'GramEncoderPatchDiscriminator' : 'GramEncoderDiscriminator',
    img_size: img,
    max_channels: DISCRIMINATOR_CHANNEL_CAP,
    patch_ndf: patch ? Math.min(64, 2 ** (14 - log2)) : null,
    patch_layers: patch ? Math.max(3, log2 - 6) : null,
  };
}

function gram64(dataset: TrainingConfig['dataset']): GramConfig {
  return {
    name: `GRAM64_${dataset === 'FFHQ' ? 'FFHQ' : 'AFHQ'}`,
    generator: 'GramGenerator',
    z_dim: 256,
    img_size: 64,
    representation: { ...REPRESENTATION, center: [...REPRESENTATION.center] },
    renderer: { ...RENDERER },
    camera: { ...CAMERA },
    pose: { ...DEFAULT_POSE },
    discriminator: discriminator(64, false),
    training: {
      process: 'Gan3DProcess', batch_size: 8, batch_split: 1, gen_lr: 2e-5, disc_lr: 2e-4, betas: [0, 0.9], adam_eps: 1e-8,
      grad_clip: 0.3, r1_lambda: 1, pos_lambda: 15, real_pos_lambda: 15, cons_lambda: 0,
      use_patch_d: false, patch_lambda: 0, r1_patch: false, ema_decays: [0.999, 0.9999], dataset, z_dist: 'gaussian',
    },
  };
}

interface HDSize {
  img: number;
  batch: number;
  r1: number;
  cons: number;
  fgUp: number[];
  bgUp: number[];
}

function gramhd(dataset: TrainingConfig['dataset'], s: HDSize): GramHDConfig {
  return {
    name: `GRAMHD${s.img}_${dataset === 'FFHQ' ? 'FFHQ' : 'AFHQ'}`,
    generator: 'GramHDGenerator',
    z_dim: 256,
    img_size: s.img,
    lr_img_size: 64,
    feature_dim: 32,
    representation: { ...REPRESENTATION, center: [...REPRESENTATION.center] },
    renderer: { ...RENDERER },
    camera: { ...CAMERA },
    pose: { ...DEFAULT_POSE },
    super_resolution: {
      fg: { w_dim: 256, nf: 64, nb: 8, gc: 32, up_channels: [...s.fgUp], to_rgb_ks: 1 },
      bg: { nf: 64, nb: 4, gc: 32, up_channels: [...s.bgUp], use_pixel_shuffle: false, global_residual: true },
    },
    discriminator: discriminator(s.img, true),
    training: {
      process: 'SRGan3DProcess', batch_size: s.batch, batch_split: s.batch, gen_lr: 2e-4, disc_lr: 2e-4, betas: [0, 0.9], adam_eps: 1e-8,
      grad_clip: 0.3, r1_lambda: s.r1, pos_lambda: 15, real_pos_lambda: 15, cons_lambda: s.cons,
      use_patch_d: true, patch_lambda: 0.1, r1_patch: true, ema_decays: [0.999, 0.9999], dataset, z_dist: 'gaussian',
    },
  };
}

const HD256: HDSize = { img: 256, batch: 4, r1: 3, cons: 1, fgUp: [64, 64], bgUp: [64, 32] };
const HD512: HDSize = { img: 512, batch: 2, r1: 5, cons: 3, fgUp: [64, 64, 32], bgUp: [64, 32, 16] };
const HD1024: HDSize = { img: 1024, batch: 2, r1: 10, cons: 10, fgUp: [64, 64, 32, 16], bgUp: [64, 32, 16, 8] };

// ---- small configurations for gramhd's own synthetic heads (`gramhd data synth`) ----
// Sized for training on two CPU cores (lavapipe) in hours, not GPU-days: 32x32 stage one with
// hidden width 32, 12 manifolds and batch 4, and a 32 -> 128 GRAM-HD stage with a slim SR network. The
// data's poses follow FFHQ's distribution and its layout is AFHQ's (poses/NNNNN_pose.npy).

function gram32Synth(): GramConfig {
  return {
    name: 'GRAM32_SYNTH',
    generator: 'GramGenerator',
    z_dim: 64,
    img_size: 32,
    representation: { ...REPRESENTATION, hidden_dim: 32, hidden_dim_sample: 32, center: [...REPRESENTATION.center] },
    renderer: { num_samples: 16, num_manifolds: 12, levels_start: 23, levels_end: 8 },
    camera: { ...CAMERA },
    pose: { ...DEFAULT_POSE },
    discriminator: { class: 'GramEncoderDiscriminator', img_size: 32, max_channels: 32, patch_ndf: null, patch_layers: null },
    training: {
      process: 'Gan3DProcess', batch_size: 4, batch_split: 1, gen_lr: 5e-5, disc_lr: 2e-4, betas: [0, 0.9], adam_eps: 1e-8,
      grad_clip: 0.3, r1_lambda: 1, pos_lambda: 15, real_pos_lambda: 15, cons_lambda: 0,
      use_patch_d: false, patch_lambda: 0, r1_patch: false, ema_decays: [0.999, 0.9999], dataset: 'AFHQCats', z_dist: 'gaussian',
    },
  };
}

function gramhd128Synth(): GramHDConfig {
  const stageOne = gram32Synth();
  return {
    ...stageOne,
    name: 'GRAMHD128_SYNTH',
    generator: 'GramHDGenerator',
    img_size: 128,
    lr_img_size: 32,
    feature_dim: 16,
    super_resolution: {
      fg: { w_dim: 64, nf: 32, nb: 2, gc: 16, up_channels: [32, 32], to_rgb_ks: 1 },
      bg: { nf: 32, nb: 1, gc: 16, up_channels: [32, 16], use_pixel_shuffle: false, global_residual: true },
    },
    discriminator: { ...discriminator(128, true), max_channels: 64 },
    training: {
      ...stageOne.training!, process: 'SRGan3DProcess', batch_size: 4, batch_split: 4, gen_lr: 2e-4, r1_lambda: 3, cons_lambda: 1,
      use_patch_d: true, patch_lambda: 0.1, r1_patch: true,
    },
  };
}

const NAMED: Record<string, () => GeneratorConfig> = {
  GRAM64_FFHQ: () => gram64('FFHQ'),
  GRAM64_AFHQ: () => gram64('AFHQCats'),
  GRAMHD256_FFHQ: () => gramhd('FFHQ', HD256),
  GRAMHD256_AFHQ: () => gramhd('AFHQCats', HD256),
  GRAMHD512_FFHQ: () => gramhd('FFHQ', HD512),
  GRAMHD512_AFHQ: () => gramhd('AFHQCats', HD512),
  GRAMHD1024_FFHQ: () => gramhd('FFHQ', HD1024),
  GRAM32_SYNTH: gram32Synth,
  GRAMHD128_SYNTH: gramhd128Synth,
};

export const CONFIG_NAMES: readonly string[] = Object.keys(NAMED);

/** A fresh copy of a named configuration. */
export function configByName(name: string): GeneratorConfig {
  const make = NAMED[name];
  if (!make) throw new Error(`unknown configuration '${name}' (valid names: ${CONFIG_NAMES.join(', ')})`);
  return make();
}

export function isGramHD(config: GeneratorConfig): config is GramHDConfig {
  return config.generator === 'GramHDGenerator';
}

// ---- free-form configurations from JSON ----

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(readonly where: string) {}

  fail(path: string, problem: string): never {
    throw new Error(`${this.where}: ${path ? `${path}: ` : ''}${problem}`);
  }

  object(value: unknown, path: string): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, `expected an object, got ${describe(value)}`);
    return value as Json;
  }

  number(o: Json, key: string, path: string, fallback?: number): number {
    const v = o[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(join(path, key), v === undefined ? 'missing number' : `expected a number, got ${describe(v)}`);
    return v;
  }

  /** A positive integer (sizes and counts). */
  count(o: Json, key: string, path: string, fallback?: number, min = 1): number {
    const v = this.number(o, key, path, fallback);
    if (!Number.isInteger(v) || v < min) this.fail(join(path, key), `expected an integer >= ${min}, got ${v}`);
    return v;
  }

  boolean(o: Json, key: string, path: string, fallback?: boolean): boolean {
    const v = o[key] ?? fallback;
    if (typeof v !== 'boolean') this.fail(join(path, key), v === undefined ? 'missing boolean' : `expected true or false, got ${describe(v)}`);
    return v;
  }

  choice<T extends string>(o: Json, key: string, path: string, options: readonly T[], fallback?: T): T {
    const v = o[key] ?? fallback;
    if (typeof v !== 'string' || !options.includes(v as T)) this.fail(join(path, key), `expected one of ${options.join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  counts(o: Json, key: string, path: string): number[] {
    const v = o[key];
    if (!Array.isArray(v) || v.length === 0) this.fail(join(path, key), `expected a non-empty list of channel counts, got ${describe(v)}`);
    return v.map((x, i) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) this.fail(`${join(path, key)}[${i}]`, `expected an integer >= 1, got ${describe(x)}`);
      return x;
    });
  }

  /** Rejects keys the configuration does not know (typos would otherwise be silently ignored). */
  known(o: Json, path: string, keys: readonly string[]): void {
    const unknown = Object.keys(o).filter((k) => !keys.includes(k) && k !== 'note' && k !== 'description');
    if (unknown.length) this.fail(path, `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (expected ${keys.join(', ')})`);
  }
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
const describe = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function readRepresentation(r: ConfigReader, v: unknown): RepresentationConfig {
  const p = 'representation';
  const o = r.object(v, p);
  r.known(o, p, ['hidden_dim', 'sigma_clamp_mode', 'rgb_clamp_mode', 'hidden_dim_sample', 'layer_num_sample', 'center', 'init_radius']);
  const center = o.center ?? REPRESENTATION.center;
  if (!Array.isArray(center) || center.length !== 3 || center.some((c) => typeof c !== 'number')) r.fail(`${p}.center`, `expected three numbers, got ${describe(center)}`);
  return {
    hidden_dim: r.count(o, 'hidden_dim', p),
    sigma_clamp_mode: r.choice(o, 'sigma_clamp_mode', p, ['softplus', 'relu', 'none'] as const, 'softplus'),
    rgb_clamp_mode: r.choice(o, 'rgb_clamp_mode', p, ['widen_sigmoid', 'sigmoid', 'none'] as const, 'widen_sigmoid'),
    hidden_dim_sample: r.count(o, 'hidden_dim_sample', p),
    layer_num_sample: r.count(o, 'layer_num_sample', p, REPRESENTATION.layer_num_sample),
    center: [center[0], center[1], center[2]],
    init_radius: r.number(o, 'init_radius', p, 0),
  };
}

function readRenderer(r: ConfigReader, v: unknown): RendererConfig {
  const p = 'renderer';
  const o = r.object(v, p);
  r.known(o, p, ['num_samples', 'num_manifolds', 'levels_start', 'levels_end']);
  return {
    num_samples: r.count(o, 'num_samples', p, undefined, 3),
    num_manifolds: r.count(o, 'num_manifolds', p, undefined, 2),
    levels_start: r.number(o, 'levels_start', p),
    levels_end: r.number(o, 'levels_end', p),
  };
}

function readCamera(r: ConfigReader, v: unknown): CameraConfig {
  const p = 'camera';
  const o = r.object(v ?? CAMERA, p);
  r.known(o, p, ['fov', 'ray_start', 'ray_end']);
  return { fov: r.number(o, 'fov', p), ray_start: r.number(o, 'ray_start', p), ray_end: r.number(o, 'ray_end', p) };
}

function readPose(r: ConfigReader, v: unknown): PoseDistribution {
  const p = 'pose';
  const o = r.object(v ?? DEFAULT_POSE, p);
  r.known(o, p, ['sample_dist', 'h_mean', 'v_mean', 'h_stddev', 'v_stddev']);
  return {
    sample_dist: r.choice(o, 'sample_dist', p, ['gaussian', 'uniform', 'fixed'] as const, 'gaussian'),
    h_mean: r.number(o, 'h_mean', p, DEFAULT_POSE.h_mean),
    v_mean: r.number(o, 'v_mean', p, DEFAULT_POSE.v_mean),
    h_stddev: r.number(o, 'h_stddev', p, DEFAULT_POSE.h_stddev),
    v_stddev: r.number(o, 'v_stddev', p, DEFAULT_POSE.v_stddev),
  };
}

function readSuperResolution(r: ConfigReader, v: unknown): SuperResolutionConfig {
  const o = r.object(v, 'super_resolution');
  r.known(o, 'super_resolution', ['fg', 'bg']);
  const fp = 'super_resolution.fg';
  const fg = r.object(o.fg, fp);
  r.known(fg, fp, ['w_dim', 'nf', 'nb', 'gc', 'up_channels', 'to_rgb_ks']);
  const bp = 'super_resolution.bg';
  const bg = r.object(o.bg, bp);
  r.known(bg, bp, ['nf', 'nb', 'gc', 'up_channels', 'use_pixel_shuffle', 'global_residual']);
  return {
    fg: {
      w_dim: r.count(fg, 'w_dim', fp), nf: r.count(fg, 'nf', fp), nb: r.count(fg, 'nb', fp, undefined, 0), gc: r.count(fg, 'gc', fp),
      up_channels: r.counts(fg, 'up_channels', fp), to_rgb_ks: r.count(fg, 'to_rgb_ks', fp, 1),
    },
    bg: {
      nf: r.count(bg, 'nf', bp), nb: r.count(bg, 'nb', bp, undefined, 0), gc: r.count(bg, 'gc', bp), up_channels: r.counts(bg, 'up_channels', bp),
      use_pixel_shuffle: r.boolean(bg, 'use_pixel_shuffle', bp, false), global_residual: r.boolean(bg, 'global_residual', bp, true),
    },
  };
}

function readDiscriminator(r: ConfigReader, v: unknown): DiscriminatorConfig {
  const p = 'discriminator';
  const o = r.object(v, p);
  r.known(o, p, ['class', 'img_size', 'max_channels', 'patch_ndf', 'patch_layers']);
  const cls = r.choice(o, 'class', p, ['GramEncoderDiscriminator', 'GramEncoderPatchDiscriminator'] as const);
  const img = r.count(o, 'img_size', p);
  const defaults = discriminator(img, cls === 'GramEncoderPatchDiscriminator');
  const optionalCount = (key: 'patch_ndf' | 'patch_layers') => (o[key] === null ? null : o[key] === undefined ? defaults[key] : r.count(o, key, p));
  return { class: cls, img_size: img, max_channels: r.count(o, 'max_channels', p, DISCRIMINATOR_CHANNEL_CAP), patch_ndf: optionalCount('patch_ndf'), patch_layers: optionalCount('patch_layers') };
}

function readTraining(r: ConfigReader, v: unknown): TrainingConfig {
  const p = 'training';
  const o = r.object(v, p);
  const keys = ['process', 'batch_size', 'batch_split', 'gen_lr', 'disc_lr', 'betas', 'adam_eps', 'grad_clip', 'r1_lambda', 'pos_lambda',
    'real_pos_lambda', 'cons_lambda', 'use_patch_d', 'patch_lambda', 'r1_patch', 'ema_decays', 'dataset', 'z_dist'];
  r.known(o, p, keys);
  const betas = o.betas ?? [0, 0.9];
  if (!Array.isArray(betas) || betas.length !== 2 || betas.some((b) => typeof b !== 'number')) r.fail(`${p}.betas`, `expected two numbers, got ${describe(betas)}`);
  const ema = o.ema_decays ?? [0.999, 0.9999];
  if (!Array.isArray(ema) || ema.some((d) => typeof d !== 'number' || d < 0 || d >= 1)) r.fail(`${p}.ema_decays`, `expected decays in [0, 1), got ${describe(ema)}`);
  return {
    process: r.choice(o, 'process', p, ['Gan3DProcess', 'SRGan3DProcess'] as const),
    batch_size: r.count(o, 'batch_size', p),
    batch_split: r.count(o, 'batch_split', p, 1),
    gen_lr: r.number(o, 'gen_lr', p),
    disc_lr: r.number(o, 'disc_lr', p),
    betas: [betas[0], betas[1]],
    adam_eps: r.number(o, 'adam_eps', p, 1e-8),
    grad_clip: r.number(o, 'grad_clip', p, 0.3),
    r1_lambda: r.number(o, 'r1_lambda', p),
    pos_lambda: r.number(o, 'pos_lambda', p, 15),
    real_pos_lambda: r.number(o, 'real_pos_lambda', p, 15),
    cons_lambda: r.number(o, 'cons_lambda', p, 0),
    use_patch_d: r.boolean(o, 'use_patch_d', p, false),
    patch_lambda: r.number(o, 'patch_lambda', p, 0),
    r1_patch: r.boolean(o, 'r1_patch', p, false),
    ema_decays: [...ema],
    dataset: r.choice(o, 'dataset', p, ['FFHQ', 'AFHQCats'] as const, 'FFHQ'),
    z_dist: r.choice(o, 'z_dist', p, ['gaussian'] as const, 'gaussian'),
  };
}

/**
 * A configuration from JSON text or a parsed object, in the shape of the golden manifest's `config`
 * objects (the authors' keys). Absent camera and pose blocks take the paper's values; every value
 * present is checked, and an error names the key at fault.
 */
export function parseConfig(json: unknown, where = 'config'): GeneratorConfig {
  const r = new ConfigReader(where);
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (e) {
      r.fail('', `not valid JSON (${(e as Error).message})`);
    }
  }
  const o = r.object(value, '');
  const generator = r.choice(o, 'generator', '', ['GramGenerator', 'GramHDGenerator'] as const);
  const hd = generator === 'GramHDGenerator';
  r.known(o, '', ['name', 'generator', 'z_dim', 'img_size', 'representation', 'renderer', 'camera', 'pose', 'discriminator', 'training',
    ...(hd ? ['feature_dim', 'lr_img_size', 'super_resolution'] : [])]);
  if (o.name !== undefined && typeof o.name !== 'string') r.fail('name', `expected a string, got ${describe(o.name)}`);
  const common: CommonConfig = {
    ...(typeof o.name === 'string' ? { name: o.name } : {}),
    z_dim: r.count(o, 'z_dim', ''),
    img_size: r.count(o, 'img_size', ''),
    representation: readRepresentation(r, o.representation),
    renderer: readRenderer(r, o.renderer),
    camera: readCamera(r, o.camera),
    pose: readPose(r, o.pose),
    ...(o.discriminator !== undefined ? { discriminator: readDiscriminator(r, o.discriminator) } : {}),
    ...(o.training !== undefined ? { training: readTraining(r, o.training) } : {}),
  };
  if (!hd) return { ...common, generator };
  const config: GramHDConfig = {
    ...common,
    generator,
    feature_dim: r.count(o, 'feature_dim', ''),
    lr_img_size: r.count(o, 'lr_img_size', '', 64),
    super_resolution: readSuperResolution(r, o.super_resolution),
  };
  const scale = config.img_size / config.lr_img_size;
  if (!Number.isInteger(Math.log2(scale))) r.fail('img_size', `${config.img_size} is not lr_img_size ${config.lr_img_size} times a power of two`);
  for (const part of ['fg', 'bg'] as const) {
    const ups = config.super_resolution[part].up_channels.length;
    if (ups !== Math.log2(scale)) r.fail(`super_resolution.${part}.up_channels`, `${ups} upsampling steps for a x${scale} super-resolution (needs ${Math.log2(scale)})`);
  }
  return config;
}
