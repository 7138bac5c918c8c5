// `gramhd bench train`: training steps per second at a configuration's full size (random weights,
// random real images), with the time of each stage of the D step and the G step. The stages mirror
// GramProcess.dStep / gStep (and GramHDProcess's generator terms) with a synchronize() after each,
// so every stage's time is the device's work for it plus its host-side encoding; the synchronising
// makes a timed step somewhat slower than an unsynchronised one.
import { cpus } from 'node:os';
import { backward, discardKernelProfile, noGrad, ops, startKernelProfile, stopKernelProfile, synchronize, Tensor, tidy, tidyAsync, type DeviceInfo, type KernelTime } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import type { Camera } from '../../model/camera.ts';
import { isGramHD, type GeneratorConfig } from '../../model/config.ts';
import type { GramEncoderPatchDiscriminator } from '../../model/discriminator/gram-encoder.ts';
import { r1Gradient } from '../../model/discriminator/r1.ts';
import { GramHDGenerator } from '../../model/gramhd.ts';
import { cameraPoses, clipGradients, GramProcess, withFrozen } from '../../train/gram-process.ts';
import { buildModels } from '../../train/loop.ts';
import { GramHDProcess } from '../../train/gramhd-process.ts';
import { consistencyLoss, dLogistic, gNonSaturating, poseLoss, r1Penalty } from '../../train/losses.ts';

/** The stages, in order, as printed. */
export const TRAIN_STAGES = [
  'D: fake generation',
  'D: forward + R1',
  'D: backward',
  'D: clip + Adam',
  'G: generation',
  'G: D forward',
  'G: backward',
  'G: clip + Adam',
  'G: EMA',
] as const;
export type TrainStage = (typeof TRAIN_STAGES)[number];

export interface TrainStageRow {
  stage: TrainStage;
  /** Mean over the timed steps. */
  ms: number;
  /** Share of the mean step. */
  percent: number;
}

export interface TrainBenchReport {
  adapter: string;
  config: string;
  imgSize: number;
  batch: number;
  batchSplit: number;
  warmup: number;
  steps: number;
  /** Timed steps over their total wall-clock time. */
  stepsPerSecond: number;
  /** Mean time of one synchronised D+G step. */
  stepMs: number;
  stages: TrainStageRow[];
  /** Losses of the last timed step (a NaN here would mean the bench trained garbage). */
  losses: { d: number; g: number };
  /** With `kernels`: the slowest kernels of the timed steps (GPU time summed by kernel key). */
  kernels?: KernelTime[];
  context: string[];
}

export interface TrainBenchOptions {
  steps?: number;
  warmup?: number;
  /** Overrides the configuration's batch_size (batch_split is capped to it). */
  batch?: number;
  seed?: number;
  /** Profile the timed steps kernel by kernel and report this many of the slowest. */
  kernels?: number;
  onStep?: (step: number, warm: boolean, ms: number) => void;
}

type Judged = { prediction: Tensor; position: Tensor; patch?: Tensor };

/** Runs one D+G step stage by stage (GramProcess's order and losses), adding each stage's ms. */
async function timedStep(trainer: GramProcess, real: Tensor, realPoses: Tensor, batch: number, times: Map<TrainStage, number>): Promise<{ d: number; g: number }> {
  const s = trainer.settings;
  const generator = trainer.generator;
  const discriminator = trainer.discriminator;
  const hd = generator instanceof GramHDGenerator;
  let mark = performance.now();
  const stage = async (name: TrainStage) => {
    await synchronize();
    const now = performance.now();
    times.set(name, (times.get(name) ?? 0) + now - mark);
    mark = now;
  };
  const split = batch / s.batch_split;
  const part = <T>(xs: readonly T[], k: number) => xs.slice(k * split, (k + 1) * split);

  // ---- D step
  const d = await tidyAsync(async () => {
    const { z, cameras } = trainer.sampleLatents(batch);
    const fakes = noGrad(() => ops.concat(Array.from({ length: s.batch_split }, (_, k) => tidy(() =>
      trainer['renderFakes'](ops.narrow(z, 0, k * split, split), part(cameras, k)))), 0));
    await stage('D: fake generation');
    const input = ops.clone(real);
    input.requiresGrad = true;
    const judgedReal: Judged = discriminator.forward(input);
    const usePatch = s.use_patch_d;
    const r1 = s.r1_lambda > 0 ? r1Penalty(r1Gradient(judgedReal, input, usePatch && s.r1_patch ? s.patch_lambda : 0), s.r1_lambda) : ops.zeros([]);
    const judgedFake: Judged = discriminator.forward(fakes);
    let pos = ops.mul(poseLoss(judgedFake.position, cameraPoses(cameras)), s.pos_lambda);
    if (s.real_pos_lambda > 0) pos = ops.add(pos, ops.mul(poseLoss(judgedReal.position, realPoses), s.real_pos_lambda));
    let total = ops.add(ops.add(dLogistic(judgedReal.prediction, judgedFake.prediction), r1), pos);
    if (usePatch) total = ops.add(total, ops.mul(dLogistic(judgedReal.patch!, judgedFake.patch!), s.patch_lambda));
    await stage('D: forward + R1');
    trainer.optimizerD.zeroGrad();
    backward(total);
    input.grad?.dispose();
    await stage('D: backward');
    clipGradients(discriminator.parameters(), s.grad_clip);
    trainer.optimizerD.step();
    await stage('D: clip + Adam');
    return total.item();
  });

  // ---- G step (per split: generation, D forward, backward; then clip, Adam, EMA)
  const params = generator.parameters();
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
  const divisor = hd ? s.batch_split : 1;
  let g = 0;
  await tidyAsync(async () => {
    const { z, cameras } = trainer.sampleLatents(batch);
    for (let k = 0; k < s.batch_split; k++) {
      g += await tidyAsync(async () => {
        const zk = ops.narrow(z, 0, k * split, split);
        const cams: readonly Camera[] = part(cameras, k);
        const out = generator.forward(zk, cams);
        await stage('G: generation');
        const total = withFrozen(discriminator, () => {
          const judged: Judged = discriminator.forward(out.image);
          let t = ops.add(gNonSaturating(judged.prediction), ops.mul(poseLoss(judged.position, cameraPoses(cams)), s.pos_lambda));
          if (hd) {
            const o = out as ReturnType<GramHDGenerator['forward']>;
            const factor = (generator as GramHDGenerator).scaleFactor;
            t = ops.add(t, ops.mul(ops.add(consistencyLoss(o.image, o.lrImage, factor), consistencyLoss(o.hrRgba ?? o.hrRgbaParts, o.lrRgba, factor)), s.cons_lambda));
            if (s.use_patch_d) t = ops.add(t, ops.mul(gNonSaturating(judged.patch!), s.patch_lambda));
          }
          return divisor !== 1 ? ops.div(t, divisor) : t;
        });
        await stage('G: D forward');
        withFrozen(discriminator, () => backward(total));
        await stage('G: backward');
        return total.item();
      });
      mark = performance.now();
    }
  });
  clipGradients(params, s.grad_clip);
  trainer.optimizerG.step();
  await stage('G: clip + Adam');
  for (const ema of trainer.emas) ema.update();
  await stage('G: EMA');
  return { d, g };
}

/**
 * Builds the configuration's generator and discriminator with random weights and its training
 * process, then runs `warmup` untimed and `steps` timed D+G steps on random images in [-1, 1]
 * with random front-ish poses.
 */
export async function benchTrain(config: GeneratorConfig, info: DeviceInfo, options: TrainBenchOptions = {}): Promise<TrainBenchReport> {
  const settings0 = config.training;
  if (!settings0) throw new Error(`configuration ${config.name ?? ''}: no training block to bench`.replace('  ', ' '));
  const batch = options.batch ?? settings0.batch_size;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got ${batch}`);
  const batchSplit = Math.min(settings0.batch_split, batch);
  if (batch % batchSplit !== 0) throw new Error(`batch ${batch} does not split into ${batchSplit} equal parts (batch_split)`);
  const settings = { ...settings0, batch_size: batch, batch_split: batchSplit };
  const steps = options.steps ?? 3;
  const warmup = options.warmup ?? 1;
  const rng = new Random(options.seed ?? 0);
  const { generator, discriminator } = buildModels(config, options.seed ?? 0);
  const trainer = isGramHD(config)
    ? new GramHDProcess(generator as GramHDGenerator, discriminator as GramEncoderPatchDiscriminator, settings, { rng })
    : new GramProcess(generator, discriminator, settings, { rng });
  const size = config.img_size;
  const real = Tensor.fromData(rng.uniformArray(batch * 3 * size * size, -1, 1), [batch, 3, size, size]).keep();
  const poses = Tensor.fromData(Array.from({ length: batch }, () => [Math.PI / 2 + (rng.uniform() - 0.5) * 0.3, Math.PI / 2 + (rng.uniform() - 0.5) * 0.6]).flat(), [batch, 2]).keep();
  const times = new Map<TrainStage, number>();
  let losses = { d: NaN, g: NaN };
  let timedMs = 0;
  let kernels: KernelTime[] | undefined;
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const warm = i < warmup;
      if (i === warmup && options.kernels) startKernelProfile();
      const stepTimes = new Map<TrainStage, number>();
      const start = performance.now();
      losses = await timedStep(trainer, real, poses, batch, stepTimes);
      const ms = performance.now() - start;
      options.onStep?.(i + 1, warm, ms);
      if (warm) continue;
      timedMs += ms;
      for (const [k, v] of stepTimes) times.set(k, (times.get(k) ?? 0) + v);
    }
    if (options.kernels) kernels = (await stopKernelProfile()).slice(0, options.kernels).map((k) => ({ ...k, ms: k.ms / steps }));
  } finally {
    discardKernelProfile();
    real.dispose();
    poses.dispose();
    trainer.dispose();
    generator.dispose();
    for (const t of discriminator.stateDict().values()) t.dispose();
  }
  const stepMs = steps > 0 ? timedMs / steps : NaN;
  const stageTotal = [...times.values()].reduce((a, b) => a + b, 0) / Math.max(steps, 1);
  return {
    adapter: info.adapter,
    config: config.name ?? '(custom)',
    imgSize: size,
    batch,
    batchSplit,
    warmup,
    steps,
    stepsPerSecond: timedMs > 0 ? (steps * 1000) / timedMs : NaN,
    stepMs,
    stages: TRAIN_STAGES.map((stage) => {
      const ms = (times.get(stage) ?? 0) / Math.max(steps, 1);
      return { stage, ms, percent: stageTotal > 0 ? (100 * ms) / stageTotal : 0 };
    }),
    losses,
    ...(kernels ? { kernels } : {}),
    context: [`cpus: ${cpus().length} x ${cpus()[0]?.model ?? '?'}`, 'each stage ends in synchronize(): times are wall clock per stage, device work plus host encoding'],
  };
}
