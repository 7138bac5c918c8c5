// The training loop (the authors' train.py around a GramProcess / GramHDProcess): batches from the
// dataset loader, one D step and one G step per iteration, then every sample_interval a snapshot of
// the EMA generator (5x5 grids, fixed and tilted cameras), and every save_interval one checkpoint
// file `<step>.safetensors` holding everything a resumed run needs: G/, D/, ema/, ema2/, optG/,
// optD/ tensors, and in the metadata the step, configuration, seed, RNG state and the optimiser and
// EMA scalars. A resumed run continues exactly as the uninterrupted one would have. Node only.
//
// Test hook: the environment variable GRAMHD_TEST_NAN_AT_STEP=N makes step N report a NaN
// discriminator loss (after its D step ran), so the tests can check that a NaN stops the run
// without saving anything. GRAMHD_TEST_HASH_INTERVAL=K makes every rank log a hash of its weights,
// EMAs and optimiser states every K steps ("rank R step S state HASH"), so that the data-parallel
// test can check the ranks stay identical.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { noGrad, ops, Tensor, tidyAsync } from '../engine/index.ts';
import { fromFloat32, toFloat32, type HostTensor } from '../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.ts';
import { parseTorchPt } from '../engine/io/torch-pt.ts';
import { assign } from '../engine/nn/assign.ts';
import type { Module, StateValue } from '../engine/nn/module.ts';
import { Random } from '../engine/nn/random.ts';
import { ExponentialMovingAverage } from '../engine/optim/ema.ts';
import { cameraFromPose, type Camera } from '../model/camera.ts';
import { CONFIG_NAMES, isGramHD, type GeneratorConfig, type TrainingConfig } from '../model/config.ts';
import { configFromText } from '../model/checkpoint.ts';
import { GramEncoderDiscriminator, GramEncoderPatchDiscriminator } from '../model/discriminator/gram-encoder.ts';
import { GramGenerator } from '../model/gram.ts';
import { GramHDGenerator } from '../model/gramhd.ts';
import { readFileBytes, writeFileAtomic } from './files.ts';
import { encodePng, tileGrid, toByte, type Rgb8 } from './image-io.ts';
import { Progress } from './progress.ts';
import { FEATURE_DIM, generatedFeatures, readFeatureCache } from './eval-features.ts';
import { fidFromFeatures } from '../model/fid.ts';
import { InceptionV3 } from '../model/inception.ts';
import { openDataset } from './dataset.ts';
import { createLoader } from './loader.ts';
import { GramProcess, type LossLog } from './gram-process.ts';
import { GramHDProcess } from './gramhd-process.ts';
import { principalCodes } from './principal-codes.ts';
import { RECONSTRUCTION_LEARNING_RATES, ReconstructionProcess } from './reconstruction-process.ts';
import { assertRanksAgree, singleProcess, type Collective } from './collective.ts';
import { averageGradients, averageLosses, broadcastModules, hashTensors, newExchangeStats } from './data-parallel.ts';

export interface TrainOptions {
  /** Required for a fresh run; a resumed run defaults to the checkpoint's configuration. */
  config?: GeneratorConfig;
  dataDir: string;
  outputDir: string;
  /** Directory holding `<step>.safetensors` checkpoints to resume from. */
  loadDir?: string;
  /** Which checkpoint of loadDir (default: the highest step). */
  setStep?: number;
  totalStep: number;
  sampleInterval: number;
  saveInterval: number;
  /** Stage-one checkpoint (GRAM-HD only): its EMA representation weights start the GRAM-HD one. */
  gramCkpt?: string;
  /** Seeds initialisation, the training stream, the data order and the fixed snapshot z (default 0).
   * A resumed run keeps its checkpoint's seed. */
  seed?: number;
  /** Loader threads decoding images (default 0: on the training thread, between GPU waits). */
  workers?: number;
  /** Snapshot grid side (default 5: 25 images). */
  gridSize?: number;
  /** Latents averaged for the snapshots' truncation (default 10000). */
  averageCount?: number;
  /** Images per forward pass in snapshots (default 5). */
  snapshotBatch?: number;
  /** Draw the progress bar on stderr (default true). */
  progress?: boolean;
  /** Where messages go (default console.error). */
  log?: (message: string) => void;
  /** Test hook: step whose D loss reads as NaN (default: env GRAMHD_TEST_NAN_AT_STEP). */
  nanAtStep?: number;
  /** Every `interval` steps: FID of `samples` EMA samples (seeds 0..samples-1 drawn as `gramhd
   * render --type rand` draws them, untruncated) against the first `samples` features of the
   * `realCache` feature cache (from `gramhd eval`), logged as FID in log.jsonl. */
  evaluation?: { interval: number; samples: number; realCache: string; inceptionWeights: string; batch?: number };
  /**
   * Data-parallel world (default: a single process). Every rank runs train() with the same options;
   * each draws its own latents and cameras and reads its own shard of every epoch (batch_size per
   * rank), gradients are averaged over the ranks before clipping and Adam, and only rank 0 writes
   * snapshots, log.jsonl, losses.svg and checkpoints. --load_dir must be readable by every rank.
   */
  world?: Collective;
  /** 'gan' (default): the authors' adversarial process. 'reconstruction': the stage-one warm start
   * of train/reconstruction-process.ts, one code per image, no flips; its checkpoints resume as GAN
   * runs. Default: the --load_dir checkpoint's, else 'gan'. */
  objective?: Objective;
  /** Learning rates of the reconstruction objective, the generator's and the codes': a fresh run
   * defaults to RECONSTRUCTION_LEARNING_RATES, a resumed one to the checkpoint's; given ones win. */
  reconstruction?: { lr?: number; codeLr?: number; depthLambda?: number };
}

export interface TrainResult {
  /** The last completed step. */
  step: number;
  /** Steps written as checkpoints during this run. */
  saved: number[];
  /** Mean steps per second of this run. */
  stepsPerSecond: number;
}

/** A loss that became NaN or infinite: the run stops without saving. */
export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(readonly step: number, readonly term: string, readonly value: number) {
    super(`step ${step}: loss ${term} is ${value}; training stopped (nothing saved after the last checkpoint)`);
  }
}

const CHECKPOINT_FORMAT = 'gramhd-train-1';
const CHECKPOINT_RE = /^(\d+)\.safetensors$/;
/** The reconstruction objective's per-image latent codes [images, z_dim] in a checkpoint. */
const CODES_KEY = 'codes/latent';

/** The reference's snapshot cameras: front (0, 0, 1) and tilted (-sin 0.5, 0, cos 0.5). */
export const FRONT_CAMERA: Camera = cameraFromPose(Math.PI / 2, Math.PI / 2);
export const TILTED_CAMERA: Camera = cameraFromPose(Math.PI / 2, Math.PI / 2 + 0.5);

// ------------------------------------------------------------------ checkpoints

/** Steps of the complete checkpoints in `dir` (ascending). Temporaries never match the pattern. */
export function checkpointSteps(dir: string): number[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .map((f) => CHECKPOINT_RE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export function checkpointPath(dir: string, step: number): string {
  return join(dir, `${step}.safetensors`);
}

/** Everything a checkpoint holds, on the host. */
export interface TrainCheckpoint {
  step: number;
  seed: number;
  config: GeneratorConfig;
  rng: { s: number[]; spare: number | null };
  /** Tensors by prefixed key (G/, D/, ema/, ema2/, optG/, optD/). */
  tensors: Map<string, HostTensor>;
  /** Numbers of the optimiser and EMA states by prefixed key. */
  scalars: Record<string, number>;
  /** The objective that wrote it (checkpoints from before the reconstruction objective: 'gan'). */
  objective: Objective;
}

export type Objective = 'gan' | 'reconstruction';

type StateMap = Map<string, Tensor | number>;

async function collectState(prefix: string, state: Map<string, Tensor | number>, tensors: [string, HostTensor][], scalars: Record<string, number>): Promise<void> {
  for (const [key, value] of state) {
    if (typeof value === 'number') scalars[prefix + key] = value;
    else tensors.push([prefix + key, fromFloat32([...value.shape], await value.toFloat32())]);
  }
}

/** Writes `<step>.safetensors` atomically (temporary file, then rename). */
export async function saveCheckpoint(dir: string, step: number, seed: number, process: GramProcess, config: GeneratorConfig, rng: Random): Promise<string> {
  const tensors: [string, HostTensor][] = [];
  const scalars: Record<string, number> = {};
  await collectState('G/', process.generator.stateDict(), tensors, scalars);
  await collectState('D/', process.discriminator.stateDict(), tensors, scalars);
  const emaPrefixes = ['ema/', 'ema2/'];
  for (let i = 0; i < process.emas.length; i++) await collectState(emaPrefixes[i] ?? `ema${i + 1}/`, process.emas[i].stateDict(), tensors, scalars);
  await collectState('optG/', process.optimizerG.stateDict(), tensors, scalars);
  await collectState('optD/', process.optimizerD.stateDict(), tensors, scalars);
  if (process instanceof ReconstructionProcess) {
    tensors.push([CODES_KEY, fromFloat32([...process.codes.shape], await process.codes.toFloat32())]);
    await collectState('optC/', process.optimizerCodes.stateDict(), tensors, scalars);
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    objective: process instanceof ReconstructionProcess ? 'reconstruction' : 'gan',
    step: String(step),
    seed: String(seed),
    config: JSON.stringify(config),
    rng: JSON.stringify(rng.getState()),
    scalars: JSON.stringify(scalars),
  };
  const path = checkpointPath(dir, step);
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
  return path;
}

/** Reads a checkpoint written by saveCheckpoint; every problem is one line naming the file. */
/** A run checkpoint's metadata config is a configuration name or JSON (saveCheckpoint writes JSON). */
function badConfig(path: string, value: string | undefined): never {
  throw new Error(`${path}: metadata config ${JSON.stringify(value ?? '')} is neither a configuration name (${CONFIG_NAMES.join(', ')}) nor JSON`);
}

export async function readCheckpoint(path: string): Promise<TrainCheckpoint> {
  const { tensors, metadata } = parseSafetensors(await readFileBytes(path), path);
  if (metadata.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: not a training checkpoint (metadata format ${JSON.stringify(metadata.format)}, expected ${CHECKPOINT_FORMAT})`);
  const json = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key]);
    } catch {
      throw new Error(`${path}: metadata ${key} is missing or not JSON`);
    }
  };
  const step = Number(metadata.step);
  const seed = Number(metadata.seed);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: metadata step ${JSON.stringify(metadata.step)} is not a step number`);
  return {
    step,
    seed: Number.isInteger(seed) ? seed : 0,
    config: configFromText(metadata.config ?? '', `${path}: metadata config`) ?? badConfig(path, metadata.config),
    rng: json('rng') as TrainCheckpoint['rng'],
    tensors,
    scalars: json('scalars') as Record<string, number>,
    objective: metadata.objective === 'reconstruction' ? 'reconstruction' : 'gan',
  };
}

function hostValues(ckpt: TrainCheckpoint, prefix: string, where: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, t] of ckpt.tensors) if (key.startsWith(prefix)) out.set(key.slice(prefix.length), { shape: t.shape, data: toFloat32(t, `${where}: ${key}`) });
  return out;
}

/** An optimiser or EMA state map (tensors uploaded; the caller disposes them after loading). */
function uploadedState(ckpt: TrainCheckpoint, prefix: string, where: string): StateMap {
  const out: StateMap = new Map();
  for (const [key, v] of hostValues(ckpt, prefix, where)) out.set(key, Tensor.fromData(v.data, v.shape).keep());
  for (const [key, v] of Object.entries(ckpt.scalars)) if (key.startsWith(prefix)) out.set(key.slice(prefix.length), v);
  return out;
}

function loadInto(target: { loadStateDict(s: StateMap): void }, ckpt: TrainCheckpoint, prefix: string, where: string): void {
  const state = uploadedState(ckpt, prefix, where);
  try {
    target.loadStateDict(state);
  } catch (e) {
    throw new Error(`${where}: ${prefix}: ${(e as Error).message}`);
  } finally {
    for (const v of state.values()) if (v instanceof Tensor) v.dispose();
  }
}

function loadModule(module: Module, ckpt: TrainCheckpoint, prefix: string, where: string): void {
  try {
    module.loadStateDict(hostValues(ckpt, prefix, where) as Map<string, StateValue>);
  } catch (e) {
    throw new Error(`${where}: ${prefix}: ${(e as Error).message}`);
  }
}

/**
 * The stage-one representation weights for GRAM-HD: from our training checkpoint, the generator
 * with its first EMA (decay 0.999) copied in; from a plain generator file (.safetensors or the
 * authors' .pt), its weights as stored. Returns `representation.`-stripped keys.
 */
async function stageOneRepresentation(path: string, log: (m: string) => void): Promise<Map<string, StateValue>> {
  const bytes = await readFileBytes(path);
  let state: Map<string, { shape: number[]; data: Float32Array }>;
  if (extname(path) === '.safetensors') {
    const { tensors, metadata } = parseSafetensors(bytes, path);
    if (metadata.format === CHECKPOINT_FORMAT) {
      const ckpt = await readCheckpoint(path);
      if (isGramHD(ckpt.config)) throw new Error(`${path}: --gram_ckpt must be a stage-one (GRAM) checkpoint, this one is GRAM-HD`);
      const gram = new GramGenerator(ckpt.config, new Random(0));
      try {
        loadModule(gram, ckpt, 'G/', path);
        const ema = new ExponentialMovingAverage(gram, ckpt.config.training?.ema_decays[0] ?? 0.999);
        try {
          loadInto(ema, ckpt, 'ema/', path);
          ema.copyTo(gram);
        } finally {
          ema.dispose();
        }
        state = new Map();
        for (const [key, t] of gram.representation.stateDict()) state.set(key, { shape: [...t.shape], data: await t.toFloat32() });
      } finally {
        gram.dispose();
      }
      log(`${path}: GRAM-HD representation from the stage-one EMA at step ${ckpt.step}`);
      return state;
    }
    state = new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: toFloat32(t, `${path}: ${k}`) }]));
  } else {
    state = new Map([...parseTorchPt(bytes, path)].map(([k, t]) => [k, { shape: t.shape, data: toFloat32(t, `${path}: ${k}`) }]));
  }
  const out = new Map<string, StateValue>();
  for (const [key, v] of state) if (key.startsWith('representation.')) out.set(key.slice('representation.'.length), v);
  if (out.size === 0) throw new Error(`${path}: no representation.* weights (expected a GRAM generator or training checkpoint)`);
  log(`${path}: GRAM-HD representation from the stored generator weights (no EMA in this file)`);
  return out;
}

// ------------------------------------------------------------------ snapshots

function gridToRgb(values: Float32Array, shape: readonly number[], mode: 'minmax' | 'unit'): Rgb8[] {
  const [b, c, h, w] = shape;
  if (c !== 3) throw new Error(`snapshot: expected 3 channels, got [${shape.join(', ')}]`);
  let lo = Infinity;
  let hi = -Infinity;
  if (mode === 'minmax') {
    for (const v of values) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  const range = hi > lo ? hi - lo : 1;
  const plane = h * w;
  const images: Rgb8[] = [];
  for (let i = 0; i < b; i++) {
    const data = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = values[(i * 3 + ch) * plane + p];
        // min-max: (v - min) / (max - min) in [0, 1], written like toByte's [-1, 1] input
        data[p * 3 + ch] = mode === 'minmax' ? toByte(Number.isFinite(v) ? ((v - lo) / range) * 2 - 1 : NaN, true) : toByte(v, true);
      }
    }
    images.push({ width: w, height: h, data });
  }
  return images;
}

/**
 * Renders the fixed z through the first EMA's weights (swapped in, then the live weights restored)
 * at truncation 0.7, with averages from `averageCount` normals of the training stream.
 */
async function snapshot(process: GramProcess, fixedZ: Float32Array, rng: Random, dir: string, step: number, opts: { grid: number; averageCount: number; batch: number }): Promise<void> {
  const generator = process.generator;
  const hd = generator instanceof GramHDGenerator;
  const trainable = generator.parameters().filter((p) => p.requiresGrad);
  const backup = noGrad(() => trainable.map((p) => ops.clone(p).keep()));
  const zDim = generator.config.z_dim;
  const count = opts.grid * opts.grid;
  try {
    process.emas[0]?.copyTo(generator);
    generator.computeTruncationAverage(rng, opts.averageCount);
    for (const [name, camera] of [['fixed', FRONT_CAMERA], ['tilted', TILTED_CAMERA]] as const) {
      const lr: Float32Array[] = [];
      const sr: Float32Array[] = [];
      let lrShape: number[] = [];
      let srShape: number[] = [];
      for (let start = 0; start < count; start += opts.batch) {
        const n = Math.min(opts.batch, count - start);
        await tidyAsync(async () => {
          const z = Tensor.fromData(fixedZ.subarray(start * zDim, (start + n) * zDim), [n, zDim]);
          const cams = Array.from({ length: n }, () => camera);
          const out = noGrad(() => generator.forward(z, cams, { truncationPsi: 0.7 }));
          const low = hd ? (out as ReturnType<GramHDGenerator['forward']>).lrImage : out.image;
          lr.push(await low.toFloat32());
          lrShape = [...low.shape];
          if (hd) {
            sr.push(await out.image.toFloat32());
            srShape = [...out.image.shape];
          }
        });
      }
      const write = async (parts: Float32Array[], shape: number[], suffix: string) => {
        const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          all.set(p, at);
          at += p.length;
        }
        const images = gridToRgb(all, [count, ...shape.slice(1)], hd ? 'unit' : 'minmax');
        await writeFileAtomic(join(dir, `${step}_${name}${suffix}.png`), encodePng(tileGrid(images, opts.grid, opts.grid)));
      };
      await write(lr, lrShape, '');
      if (hd) await write(sr, srShape, '_sr');
    }
  } finally {
    trainable.forEach((p, i) => assign(p, backup[i]));
    for (const b of backup) b.dispose();
  }
}

/**
 * FID of `samples` images of the first EMA's weights (swapped in, then the live weights restored),
 * generated untruncated by the `gramhd eval generate` code, against `real` [samples, 2048].
 */
async function emaFid(process: GramProcess, net: InceptionV3, real: Float32Array, samples: number, batch: number): Promise<number> {
  const generator = process.generator;
  const trainable = generator.parameters().filter((p) => p.requiresGrad);
  const backup = noGrad(() => trainable.map((p) => ops.clone(p).keep()));
  try {
    process.emas[0]?.copyTo(generator);
    const fake = await generatedFeatures(net, {
      config: generator.config,
      computeAverage: (z) => { generator.computeTruncationAverage(z); },
      renderVisible: (z, cameras, options) => generator.renderVisible(z, cameras, options),
    }, { seeds: Array.from({ length: samples }, (_, k) => k), truncation: 1, perSeedAverage: false, batch });
    return fidFromFeatures({ data: real, n: samples, d: FEATURE_DIM }, { data: fake, n: samples, d: FEATURE_DIM });
  } finally {
    trainable.forEach((p, i) => assign(p, backup[i]));
    for (const b of backup) b.dispose();
  }
}

// ------------------------------------------------------------------ loss curves

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function niceNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An SVG of every loss term against the step: one panel for D_* terms, one for G_*, each with
 * axes, tick labels and a legend. Long runs are averaged into at most `maxPoints` bins per line. */
export function lossCurvesSvg(records: readonly Record<string, number>[], maxPoints = 500): string {
  const width = 900;
  const panelHeight = 320;
  const margin = { left: 70, right: 170, top: 30, bottom: 40 };
  // the GAN's two panels, or the reconstruction objective's one (a run resumed from it has all three)
  const present = ([['D_', 'Discriminator'], ['G_', 'Generator'], ['R_', 'Reconstruction']] as [string, string][])
    .filter(([prefix]) => records.some((r) => Object.keys(r).some((k) => k.startsWith(prefix))));
  const groups: [string, string][] = present.length ? present : [['D_', 'Discriminator'], ['G_', 'Generator']];
  const panels: string[] = [];
  const steps = records.map((r) => r.step);
  const x0 = steps.length ? Math.min(...steps) : 0;
  const x1 = steps.length ? Math.max(...steps) : 1;
  groups.forEach(([prefix, title], gi) => {
    const terms = [...new Set(records.flatMap((r) => Object.keys(r).filter((k) => k.startsWith(prefix))))];
    const top = gi * panelHeight;
    const plotW = width - margin.left - margin.right;
    const plotH = panelHeight - margin.top - margin.bottom;
    const lines = terms.map((term) => {
      const pts = records.filter((r) => Number.isFinite(r[term])).map((r) => [r.step, r[term]] as [number, number]);
      if (pts.length <= maxPoints) return pts;
      const per = pts.length / maxPoints;
      return Array.from({ length: maxPoints }, (_, b) => {
        const bin = pts.slice(Math.floor(b * per), Math.floor((b + 1) * per));
        return [bin.reduce((s, p) => s + p[0], 0) / bin.length, bin.reduce((s, p) => s + p[1], 0) / bin.length] as [number, number];
      });
    });
    const ys = lines.flat().map((p) => p[1]);
    let y0 = ys.length ? Math.min(...ys) : 0;
    let y1 = ys.length ? Math.max(...ys) : 1;
    if (y1 - y0 < 1e-12) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const sx = (x: number) => margin.left + (x1 > x0 ? ((x - x0) / (x1 - x0)) * plotW : plotW / 2);
    const sy = (y: number) => top + margin.top + (1 - (y - y0) / (y1 - y0)) * plotH;
    const parts: string[] = [];
    parts.push(`<text x="${margin.left}" y="${top + 18}" font-size="14" font-weight="bold">${title} losses</text>`);
    parts.push(`<rect x="${margin.left}" y="${top + margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
    for (let i = 0; i <= 4; i++) {
      const yv = y0 + ((y1 - y0) * i) / 4;
      const y = sy(yv).toFixed(1);
      parts.push(`<line x1="${margin.left - 5}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#ddd"/>`);
      parts.push(`<text x="${margin.left - 8}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${niceNumber(yv)}</text>`);
      const xv = x0 + ((x1 - x0) * i) / 4;
      const x = sx(xv).toFixed(1);
      parts.push(`<line x1="${x}" y1="${top + margin.top + plotH}" x2="${x}" y2="${top + margin.top + plotH + 5}" stroke="#444"/>`);
      parts.push(`<text x="${x}" y="${top + margin.top + plotH + 18}" font-size="11" text-anchor="middle">${niceNumber(Math.round(xv))}</text>`);
    }
    parts.push(`<text x="${margin.left + plotW / 2}" y="${top + panelHeight - 4}" font-size="12" text-anchor="middle">step</text>`);
    lines.forEach((pts, i) => {
      const color = PALETTE[i % PALETTE.length];
      if (pts.length) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
      const ly = top + margin.top + 10 + i * 18;
      const lx = margin.left + plotW + 15;
      parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
      parts.push(`<text x="${lx + 26}" y="${ly}" font-size="12" dominant-baseline="middle">${escapeXml(terms[i])}</text>`);
    });
    panels.push(parts.join('\n'));
  });
  const height = panelHeight * groups.length;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${panels.join('\n')}\n</svg>\n`;
}

// ------------------------------------------------------------------ the loop

export function buildModels(config: GeneratorConfig, seed: number): { generator: GramGenerator; discriminator: GramEncoderDiscriminator } {
  const hd = isGramHD(config);
  const generator = hd ? new GramHDGenerator(config, new Random(seed)) : new GramGenerator(config, new Random(seed));
  const dc = config.discriminator;
  const patch = dc ? dc.class === 'GramEncoderPatchDiscriminator' : hd;
  const options = {
    maxChannels: dc?.max_channels ?? 400,
    rng: new Random((seed + 0x3c6ef372) >>> 0),
    ...(dc?.patch_ndf != null ? { patchNdf: dc.patch_ndf } : {}),
    ...(dc?.patch_layers != null ? { patchLayers: dc.patch_layers } : {}),
  };
  const imgSize = dc?.img_size ?? config.img_size;
  if (imgSize !== config.img_size) throw new Error(`configuration: discriminator img_size ${imgSize} differs from the generator's img_size ${config.img_size}`);
  const discriminator = patch ? new GramEncoderPatchDiscriminator(imgSize, options) : new GramEncoderDiscriminator(imgSize, options);
  return { generator, discriminator };
}

function checkInterval(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

/** Reads log.jsonl, keeping the records up to `step` (a killed run may have logged beyond its
 * last checkpoint), and rewrites it so the resumed run's lines follow on. */
function truncateLog(path: string, step: number): Record<string, number>[] {
  if (!existsSync(path)) return [];
  const kept: Record<string, number>[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Record<string, number>;
      if (typeof r.step === 'number' && r.step <= step) kept.push(r);
    } catch {
      // a line cut short by a kill
    }
  }
  writeFileSync(path, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return kept;
}

/**
 * Trains from scratch (or from --load_dir's checkpoint) up to `totalStep`, writing snapshots,
 * checkpoints, log.jsonl and losses.svg into outputDir. Throws NonFiniteLossError on a NaN/Inf loss
 * (nothing saved for that step); the engine's device-lost error surfaces from the next read-back.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? ((m: string) => console.error(m));
  checkInterval('--total_step', options.totalStep);
  checkInterval('--sample_interval', options.sampleInterval);
  checkInterval('--save_interval', options.saveInterval);
  const evaluation = options.evaluation;
  if (evaluation) {
    checkInterval('--eval_interval', evaluation.interval);
    if (!Number.isInteger(evaluation.samples) || evaluation.samples < 2) throw new Error(`--eval_samples must be an integer >= 2, got ${evaluation.samples}`);
  }
  const envNan = process.env.GRAMHD_TEST_NAN_AT_STEP;
  const nanAtStep = options.nanAtStep ?? (envNan ? Number(envNan) : undefined);
  const hashInterval = Number(process.env.GRAMHD_TEST_HASH_INTERVAL ?? 0);

  // the checkpoint to resume from, if any
  let ckpt: TrainCheckpoint | null = null;
  if (options.loadDir !== undefined) {
    if (!existsSync(options.loadDir) || !statSync(options.loadDir).isDirectory()) throw new Error(`--load_dir ${options.loadDir}: no such directory`);
    const steps = checkpointSteps(options.loadDir);
    if (steps.length === 0) throw new Error(`--load_dir ${options.loadDir}: no checkpoint (<step>.safetensors) in it`);
    const step = options.setStep ?? steps[steps.length - 1];
    if (!steps.includes(step)) throw new Error(`--set_step ${step}: no ${step}.safetensors in ${options.loadDir} (steps there: ${steps.join(', ')})`);
    ckpt = await readCheckpoint(checkpointPath(options.loadDir, step));
  }
  const config = options.config ?? ckpt?.config;
  if (!config) throw new Error('--config is required for a new run (a resumed run takes the checkpoint\'s)');
  const settings: TrainingConfig | undefined = config.training;
  if (!settings) throw new Error(`configuration ${config.name ?? ''}: no training block (batch_size, learning rates, loss weights)`.replace('  ', ' '));
  const hd = isGramHD(config);
  const objective: Objective = options.objective ?? ckpt?.objective ?? 'gan';
  const reconstruct = objective === 'reconstruction';
  if (reconstruct && hd) throw new Error('--objective reconstruction is for stage-one (GRAM) configurations');
  if (options.gramCkpt !== undefined && !hd) throw new Error('--gram_ckpt is for GRAM-HD configurations (it seeds their representation from a stage-one run)');
  const seed = ckpt?.seed ?? options.seed ?? 0;
  const startStep = ckpt?.step ?? 0;
  const world = options.world ?? singleProcess;
  const leader = world.rank === 0;
  // ranks that disagree would reach different collectives and hang: stop them all with one message
  assertRanksAgree(world, 'the configuration, objective, seed, start step and step counts', JSON.stringify({ config, objective, seed, startStep, total: options.totalStep, sample: options.sampleInterval, save: options.saveInterval, eval: evaluation?.interval ?? null }));

  // data first: a bad --data_dir fails before any GPU work
  const layout = settings.dataset === 'AFHQCats' ? 'afhq' : 'ffhq';
  const dataset = openDataset(options.dataDir, { imgSize: config.img_size, layout, warn: log });
  mkdirSync(options.outputDir, { recursive: true });

  const { generator, discriminator } = buildModels(config, seed);
  // rank 0's stream is the single-process one (and the one checkpoints store); other ranks draw
  // their own latents and cameras from a stream of (seed, rank, start step)
  const rng = new Random(leader ? (seed + 0x9e3779b9) >>> 0 : (Math.imul(seed ^ 0x85ebca6b, 0x27d4eb2f) + Math.imul(world.rank, 0x165667b1) + Math.imul(startStep + 1, 0x9e3779b1)) >>> 0);
  let trainer: GramProcess | null = null;
  let inception: InceptionV3 | null = null;
  // one code per image: a mirrored image would ask one code for two heads
  const loader = createLoader(dataset, { batchSize: settings.batch_size, seed, startStep, workers: options.workers ?? 0, warn: log, rank: world.rank, worldSize: world.size, flip: !reconstruct });
  const exchange = newExchangeStats();
  try {
    if (ckpt) {
      const where = checkpointPath(options.loadDir!, ckpt.step);
      loadModule(generator, ckpt, 'G/', where);
      loadModule(discriminator, ckpt, 'D/', where);
    } else if (options.gramCkpt !== undefined) {
      const rep = await stageOneRepresentation(options.gramCkpt, log);
      const { missingKeys, unexpectedKeys } = (() => {
        try {
          return generator.representation.loadStateDict(rep, { strict: false });
        } catch (e) {
          throw new Error(`${options.gramCkpt}: ${(e as Error).message}`);
        }
      })();
      const notFeature = missingKeys.filter((k) => !k.startsWith('rf_network.output_feature.'));
      if (notFeature.length || unexpectedKeys.length) {
        throw new Error(`${options.gramCkpt}: representation does not fit: missing ${notFeature.join(', ') || 'none'}; unexpected ${unexpectedKeys.join(', ') || 'none'}`);
      }
    }
    // DDP's start: every rank takes rank 0's weights (and so the EMAs made from them below)
    await broadcastModules(world, [generator, discriminator]);
    const reduceGradients = world.size > 1 ? (params: readonly Tensor[]) => averageGradients(world, params, exchange) : undefined;
    // the reconstruction objective's first codes: the images' principal coordinates (a resumed run
    // has its codes in the checkpoint)
    let initialCodes: Float32Array | undefined;
    const depthLambda = reconstruct ? options.reconstruction?.depthLambda ?? 0 : 0;
    if (depthLambda > 0) dataset.depth(0); // a dataset without depth maps fails here, not mid-run
    if (reconstruct && !ckpt?.tensors.has(CODES_KEY)) {
      const dim = 3 * config.img_size * config.img_size;
      const pixels = new Float32Array(dataset.length * dim);
      for (let i = 0; i < dataset.length; i++) dataset.imageInto(i, false, pixels, i * dim);
      initialCodes = principalCodes(pixels, dataset.length, dim, config.z_dim, new Random((seed ^ 0xc0de5eed) >>> 0));
      if (leader) log(`reconstruction: initial codes from the principal subspace of ${dataset.length} images`);
    }
    trainer = hd
      ? new GramHDProcess(generator as GramHDGenerator, discriminator as GramEncoderPatchDiscriminator, settings, { rng, reduceGradients })
      : reconstruct
        ? new ReconstructionProcess(generator, discriminator, settings, {
          rng, reduceGradients, datasetSize: dataset.length,
          lr: options.reconstruction?.lr ?? RECONSTRUCTION_LEARNING_RATES.lr, codeLr: options.reconstruction?.codeLr ?? RECONSTRUCTION_LEARNING_RATES.codeLr,
          initialCodes, depthLambda,
        })
        : new GramProcess(generator, discriminator, settings, { rng, reduceGradients });
    if (ckpt) {
      const where = checkpointPath(options.loadDir!, ckpt.step);
      const prefixes = ['ema/', 'ema2/'];
      trainer.emas.forEach((ema, i) => loadInto(ema, ckpt!, prefixes[i] ?? `ema${i + 1}/`, where));
      // the generator's optimiser belongs to its objective: one switching objectives starts afresh
      // with the new objective's learning rate and betas
      if (ckpt.objective === objective) loadInto(trainer.optimizerG, ckpt, 'optG/', where);
      else if (leader) log(`${where}: written by the ${ckpt.objective} objective; the generator's optimiser starts afresh for ${objective}`);
      loadInto(trainer.optimizerD, ckpt, 'optD/', where);
      const codes = ckpt.tensors.get(CODES_KEY);
      if (trainer instanceof ReconstructionProcess && codes) {
        // a checkpoint of the reconstruction objective: its codes and their optimiser go on
        if (codes.shape.join() !== trainer.codes.shape.join()) throw new Error(`${where}: ${CODES_KEY} is [${codes.shape.join(', ')}], this dataset needs [${trainer.codes.shape.join(', ')}] (one code per image)`);
        const stored = Tensor.fromData(toFloat32(codes, `${where}: ${CODES_KEY}`), codes.shape);
        try {
          assign(trainer.codes, stored);
        } finally {
          stored.dispose();
        }
        loadInto(trainer.optimizerCodes, ckpt, 'optC/', where);
      }
      if (trainer instanceof ReconstructionProcess) {
        // learning rates given for this resumption replace the stored ones (e.g. after a divergence)
        if (options.reconstruction?.lr !== undefined) trainer.optimizerG.lr = options.reconstruction.lr;
        if (options.reconstruction?.codeLr !== undefined) trainer.optimizerCodes.lr = options.reconstruction.codeLr;
      }
      if (leader) rng.setState(ckpt.rng);
      if (leader) log(`resumed from ${where} (step ${ckpt.step})${world.size > 1 ? ` on ${world.size} ranks` : ''}`);
    }

    // FID evaluation: the real features and the extractor, loaded once
    let realFeatures: Float32Array | null = null;
    if (evaluation && leader) {
      realFeatures = await readFeatureCache(evaluation.realCache, evaluation.samples);
      inception = InceptionV3.fromTorchPt(await readFileBytes(evaluation.inceptionWeights), evaluation.inceptionWeights);
    }

    // snapshot latents: drawn once from the seed, outside the training stream
    const gridSize = options.gridSize ?? 5;
    const fixedZ = new Random((seed ^ 0x5eed5eed) >>> 0).normalArray(gridSize * gridSize * config.z_dim);
    const logPath = join(options.outputDir, 'log.jsonl');
    const records = leader ? truncateLog(logPath, startStep) : [];
    const saved: number[] = [];
    const total = options.totalStep - startStep;
    const progress = options.progress === false || total <= 0 || !leader ? null : new Progress(total, 'steps');
    const runStart = performance.now();
    let step = startStep;
    const b = settings.batch_size;
    const s = config.img_size;
    while (step < options.totalStep) {
      const t0 = performance.now();
      const next = step + 1;
      const batch = await loader.next();
      const images = Tensor.fromData(batch.images, [b, 3, s, s]).keep();
      const reconstruction = trainer instanceof ReconstructionProcess ? trainer : null;
      const gPrefix = reconstruction ? 'R_' : 'G_';
      // the world's mean losses: every rank sees a NaN of any rank and stops at the same step
      const checked = (losses: LossLog, prefix: string): LossLog => {
        const mean = averageLosses(world, losses);
        for (const [term, v] of Object.entries(mean)) if (!Number.isFinite(v)) throw new NonFiniteLossError(next, `${prefix}${term}`, v);
        return mean;
      };
      let first: LossLog;
      const exchanged = { ...exchange };
      try {
        if (reconstruction) {
          let depths: Float32Array | undefined;
          if (depthLambda > 0) {
            depths = new Float32Array(b * s * s);
            batch.indices.forEach((index, k) => depths!.set(dataset.depth(index), k * s * s));
          }
          first = await reconstruction.reconstructionStep(images, batch.poses, batch.indices, depths);
        } else {
          const poses = Tensor.fromData(batch.poses, [b, 2]).keep();
          try {
            first = await trainer.dStep(images, poses);
          } finally {
            poses.dispose();
          }
        }
      } finally {
        images.dispose();
      }
      if (nanAtStep === next) first.Total = NaN;
      const dLog: LossLog = reconstruction ? {} : checked(first, 'D_');
      const gLog: LossLog = reconstruction ? checked(first, 'R_') : checked(await trainer.gStep(b), 'G_');
      step = next;
      const seconds = (performance.now() - t0) / 1000;
      const record: Record<string, number> = { step };
      for (const [k, v] of Object.entries(dLog)) record[`D_${k}`] = v;
      for (const [k, v] of Object.entries(gLog)) record[`${gPrefix}${k}`] = v;
      // images span [-1, 1]: a peak-to-peak of 2
      if (gPrefix === 'R_') record.PSNR = 10 * Math.log10(4 / gLog.RGB);
      record.steps_per_s = 1 / seconds;
      record.seconds = (performance.now() - runStart) / 1000;
      if (world.size > 1) {
        // this step's gradient exchanges (D and G): bytes per rank; waits for this rank's backward
        // and for the slowest rank; then the exchange proper: packed readback, allreduce, upload
        record.exchange_mb = (exchange.bytes - exchanged.bytes) / 1e6;
        record.gpu_wait_ms = exchange.gpuWaitMs - exchanged.gpuWaitMs;
        record.rank_wait_ms = exchange.rankWaitMs - exchanged.rankWaitMs;
        record.readback_ms = exchange.readbackMs - exchanged.readbackMs;
        record.allreduce_ms = exchange.allreduceMs - exchanged.allreduceMs;
        record.upload_ms = exchange.uploadMs - exchanged.uploadMs;
      }
      if (hashInterval > 0 && step % hashInterval === 0) {
        const state = [generator.stateDict(), discriminator.stateDict(), ...trainer.emas.map((e) => e.stateDict()), trainer.optimizerG.stateDict(), trainer.optimizerD.stateDict()]
          .flatMap((m) => [...m.values()].filter((v): v is Tensor => v instanceof Tensor));
        log(`rank ${world.rank} step ${step} state ${await hashTensors(state)}`);
      }
      if (!leader) {
        progress?.tick();
        continue;
      }
      if (evaluation && inception && realFeatures && step % evaluation.interval === 0) {
        record.FID = await emaFid(trainer, inception, realFeatures, evaluation.samples, evaluation.batch ?? options.snapshotBatch ?? 5);
        log(`step ${step}: FID ${record.FID.toFixed(4)} (${evaluation.samples} EMA samples)`);
      }
      records.push(record);
      appendFileSync(logPath, JSON.stringify(record) + '\n');
      if (step % options.sampleInterval === 0) {
        await snapshot(trainer, fixedZ, rng, options.outputDir, step, { grid: gridSize, averageCount: options.averageCount ?? 10000, batch: options.snapshotBatch ?? 5 });
        await writeFileAtomic(join(options.outputDir, 'losses.svg'), new TextEncoder().encode(lossCurvesSvg(records)));
      }
      if (step % options.saveInterval === 0 || step === options.totalStep) {
        await saveCheckpoint(options.outputDir, step, seed, trainer, config, rng);
        saved.push(step);
      }
      progress?.tick();
    }
    const elapsed = (performance.now() - runStart) / 1000;
    return { step, saved, stepsPerSecond: elapsed > 0 ? (step - startStep) / elapsed : 0 };
  } finally {
    await loader.close();
    inception?.dispose();
    trainer?.dispose();
    generator.dispose();
    for (const t of discriminator.stateDict().values()) t.dispose();
  }
}
