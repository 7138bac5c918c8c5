// The golden `train_gram` and `train_gramhd` cases: one discriminator step then one generator step
// of the reference training processes (Gan3DProcess, SRGan3DProcess) from the stored weights, with
// the stored latents, cameras and real images. Every loss term, every clipped gradient and every
// parameter after Adam is compared.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ops, tidyAsync, Tensor } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import type { Camera } from '../../model/camera.ts';
import { parseConfig } from '../../model/config.ts';
import { GramEncoderDiscriminator, GramEncoderPatchDiscriminator } from '../../model/discriminator/gram-encoder.ts';
import { GramGenerator } from '../../model/gram.ts';
import { GramHDGenerator } from '../../model/gramhd.ts';
import { GramProcess, type LossLog, type ProcessSettings } from '../../train/gram-process.ts';
import { GramHDProcess } from '../../train/gramhd-process.ts';
import { singleProcess, type Collective } from '../../train/collective.ts';
import { averageGradients, averageLosses } from '../../train/data-parallel.ts';
import { compareOutput, goldenInput, goldenState, goldenTensor, type GoldenCase, type VerifyRow } from './compare.ts';

interface TrainCaseConfig {
  process: { class: 'Gan3DProcess' | 'SRGan3DProcess'; kwargs: Record<string, number | boolean> };
  batch_size: number;
  gen_lr: number;
  disc_lr: number;
  betas: [number, number];
  grad_clip: number;
  discriminator: { img_size: number; max_channels: number; patch_ndf: number | null };
}

/** The process settings of a case's config (the reference's defaults where its kwargs are silent). */
export function trainSettings(config: TrainCaseConfig): ProcessSettings {
  const k = config.process.kwargs;
  const num = (key: string, fallback: number) => (typeof k[key] === 'number' ? k[key] as number : fallback);
  const bool = (key: string) => k[key] === true;
  return {
    batch_split: num('batch_split', 1),
    gen_lr: config.gen_lr,
    disc_lr: config.disc_lr,
    betas: config.betas,
    adam_eps: 1e-8,
    grad_clip: config.grad_clip,
    r1_lambda: num('r1_lambda', 10),
    pos_lambda: num('pos_lambda', 15),
    real_pos_lambda: num('real_pos_lambda', 1),
    cons_lambda: num('cons_lambda', 0),
    use_patch_d: bool('use_patch_d'),
    patch_lambda: num('patch_lambda', 0),
    r1_patch: bool('r1_patch'),
    ema_decays: [0.999, 0.9999],
  };
}

function camerasOf(golden: GoldenCase, suffix: 'd' | 'g'): Camera[] {
  const origins = goldenTensor(golden, `in/camera_origin_${suffix}`);
  const poses = goldenTensor(golden, `in/camera_pose_${suffix}`);
  return Array.from({ length: origins.shape[0] }, (_, b) => ({
    origin: [origins.data[3 * b], origins.data[3 * b + 1], origins.data[3 * b + 2]],
    pitch: poses.data[2 * b],
    yaw: poses.data[2 * b + 1],
  }));
}

/** The generator configuration: the train cases use the gram_small / gramhd_small models, whose
 * configuration sits in the same manifest.json. */
function generatorConfig(golden: GoldenCase, hd: boolean) {
  const manifest = JSON.parse(readFileSync(join(dirname(golden.file), 'manifest.json'), 'utf8'));
  const name = hd ? 'gramhd_small' : 'gram_small';
  if (!manifest[name]) throw new Error(`${golden.name}: manifest.json has no ${name} case to take the generator configuration from`);
  return parseConfig(manifest[name].config, `${name} config`);
}

/** The case's process with the stored weights loaded; in a world of N ranks, each holding 1/N of
 * the batch and of its splits, with gradients averaged over the ranks. */
export function goldenTrainProcess(golden: GoldenCase, world: Collective = singleProcess): GramProcess {
  const config = golden.entry.config as unknown as TrainCaseConfig;
  const hd = config.process.class === 'SRGan3DProcess';
  const settings = { ...trainSettings(config) };
  if (settings.batch_split % world.size !== 0 || config.batch_size % world.size !== 0) {
    throw new Error(`case ${golden.name}: batch ${config.batch_size} with batch_split ${settings.batch_split} does not split over ${world.size} ranks`);
  }
  settings.batch_split /= world.size;
  const options = world.size > 1 ? { reduceGradients: (params: readonly Tensor[]) => averageGradients(world, params) } : {};
  const dc = config.discriminator;
  const generator = hd ? new GramHDGenerator(generatorConfig(golden, true), new Random(0)) : new GramGenerator(generatorConfig(golden, false), new Random(0));
  const discriminator = dc.patch_ndf
    ? new GramEncoderPatchDiscriminator(dc.img_size, { maxChannels: dc.max_channels, patchNdf: dc.patch_ndf, rng: new Random(1) })
    : new GramEncoderDiscriminator(dc.img_size, { maxChannels: dc.max_channels, rng: new Random(1) });
  generator.loadStateDict(goldenState(golden, 'param/G/'));
  discriminator.loadStateDict(goldenState(golden, 'param/D/'));
  return hd
    ? new GramHDProcess(generator as GramHDGenerator, discriminator as GramEncoderPatchDiscriminator, settings, options)
    : new GramProcess(generator, discriminator, settings, options);
}

/** Seconds per step of the last trainCase run (for reports). */
export const lastTrainTimings = { dStep: 0, gStep: 0 };

/**
 * The loss log of the whole batch from the ranks' logs: GRAM-HD's terms are means over the splits
 * (the world's mean); GRAM logs the last split's g_loss, which sits on the last rank.
 */
function worldLog(world: Collective, log: LossLog, lastSplitOnly: boolean): LossLog {
  if (world.size === 1) return log;
  if (!lastSplitOnly) return averageLosses(world, log);
  const keys = Object.keys(log).sort();
  const values = new Float64Array(keys.map((k) => log[k]));
  world.broadcast(values, world.size - 1);
  return Object.fromEntries(keys.map((k, i) => [k, values[i]]));
}

export async function trainCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const world = golden.world ?? singleProcess;
  const process = goldenTrainProcess(golden, world);
  const hd = process instanceof GramHDProcess;
  // this rank's contiguous part of the batch (rank r holds elements r*B/N .. (r+1)*B/N - 1)
  const part = (t: Tensor) => {
    if (world.size === 1) return t;
    const n = t.shape[0] / world.size;
    return ops.narrow(t, 0, world.rank * n, n);
  };
  const partOf = <T>(list: T[]) => {
    const n = list.length / world.size;
    return list.slice(world.rank * n, (world.rank + 1) * n);
  };
  const outputs = Object.keys(golden.entry.outputs);
  const rows: VerifyRow[] = [];
  const compareLosses = async (prefix: string, log: LossLog) => {
    for (const output of outputs.filter((o) => o.startsWith(prefix))) {
      const value = log[output.slice(prefix.length)];
      if (value === undefined) throw new Error(`case ${golden.name}: the process logs no '${output.slice(prefix.length)}' (${output})`);
      const t = Tensor.fromData([value], []);
      rows.push(await compareOutput(golden, output, t, 'forward'));
      t.dispose();
    }
  };
  const compareModule = async (gradPrefix: string, afterPrefix: string, named: [string, Tensor][]) => {
    const byKey = new Map(named);
    for (const output of outputs.filter((o) => o.startsWith(gradPrefix) || o.startsWith(afterPrefix))) {
      const isGrad = output.startsWith(gradPrefix);
      const key = output.slice((isGrad ? gradPrefix : afterPrefix).length);
      const p = byKey.get(key);
      if (!p) throw new Error(`case ${golden.name}: no parameter '${key}' (${output})`);
      if (isGrad && !p.grad) throw new Error(`case ${golden.name}: parameter '${key}' has no gradient`);
      rows.push(await compareOutput(golden, output, isGrad ? p.grad! : p, 'gradient'));
    }
  };
  try {
    await tidyAsync(async () => {
      const real = part(goldenInput(golden, 'in/real_images'));
      const realPoses = part(goldenInput(golden, 'in/real_poses'));
      let start = performance.now();
      // D's losses are batch means: the world's mean of the ranks' equal parts
      const dLog = averageLosses(world, await process.dStep(real, realPoses, { z: part(goldenInput(golden, 'in/z_d')), cameras: partOf(camerasOf(golden, 'd')) }));
      lastTrainTimings.dStep = (performance.now() - start) / 1000;
      await compareLosses('out/d_loss/', dLog);
      await compareModule('out/d_grad_clipped/', 'out/D_after/', process.discriminator.namedParameters());
      const zG = part(goldenInput(golden, 'in/z_g'));
      start = performance.now();
      const gLog = worldLog(world, await process.gStep(zG.shape[0], { z: zG, cameras: partOf(camerasOf(golden, 'g')) }), !hd);
      lastTrainTimings.gStep = (performance.now() - start) / 1000;
      await compareLosses('out/g_loss/', gLog);
      await compareModule('out/g_grad_clipped/', 'out/G_after/', process.generator.namedParameters());
    });
  } finally {
    process.dispose();
    process.generator.dispose();
    for (const p of process.discriminator.parameters()) p.dispose();
  }
  const covered = new Set(rows.map((r) => r.output));
  const missed = outputs.filter((o) => !covered.has(o));
  if (missed.length) throw new Error(`case ${golden.name}: outputs not compared: ${missed.join(', ')}`);
  return rows;
}
