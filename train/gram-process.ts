// GRAM's stage-one training step (the reference's Gan3DProcess): one discriminator step, then one
// generator step, each ending in global gradient-norm clipping and an Adam step, then the two
// generator EMAs. GRAM-HD's process (gramhd-process.ts) extends this one with the patch head, the
// consistency losses and the loss division of batch_split.
import { backward, noGrad, ops, optim, Tensor, tidy, tidyAsync } from '../engine/index.ts';
import type { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import type { Camera } from '../model/camera.ts';
import type { TrainingConfig } from '../model/config.ts';
import type { DiscriminatorOutput, GramEncoderDiscriminator } from '../model/discriminator/gram-encoder.ts';
import { r1Gradient } from '../model/discriminator/r1.ts';
import type { GramGenerator } from '../model/gram.ts';
import { dLogistic, dLogisticTerms, gNonSaturating, poseLoss, r1Penalty } from './losses.ts';

/** The settings a process reads, under the configuration's keys (TrainingConfig). */
export type ProcessSettings = Pick<TrainingConfig,
  'batch_split' | 'gen_lr' | 'disc_lr' | 'betas' | 'adam_eps' | 'grad_clip' | 'r1_lambda' | 'pos_lambda'
  | 'real_pos_lambda' | 'cons_lambda' | 'use_patch_d' | 'patch_lambda' | 'r1_patch' | 'ema_decays'>;

/** Latent codes and cameras for one step; drawn from the process's RNG when not given. */
export interface StepLatents {
  /** [B, z_dim] */
  z: Tensor;
  /** One per element; their (pitch, yaw) are the pose-loss targets. */
  cameras: readonly Camera[];
}

/** Loss terms as numbers, under the reference's log names (Total always present). */
export type LossLog = Record<string, number>;

/** What D returns for a batch: the patch logits [B, P] only with a patch head. */
type JudgedImages = DiscriminatorOutput & { patch?: Tensor };

/** (pitch, yaw) of each camera as a [B, 2] tensor, the generator's `gen_positions`. */
export function cameraPoses(cameras: readonly Camera[]): Tensor {
  return Tensor.fromData(cameras.flatMap((c) => [c.pitch, c.yaw]), [cameras.length, 2]);
}

/** torch's clip_grad_norm_ on .grad in place: every parameter's gradient is replaced by its clipped
 * value (kept), so the clipped gradients stay inspectable until the next zeroGrad. */
export function clipGradients(params: readonly Tensor[], maxNorm: number): void {
  tidy(() => {
    const { grads } = optim.clipGradNorm(params.map((p) => p.grad), maxNorm);
    params.forEach((p, i) => {
      const clipped = grads[i];
      if (!clipped || !p.grad) return;
      p.grad.dispose();
      p.grad = clipped.keep();
    });
  });
}

/** Drops every parameter's gradient (torch's zero_grad(set_to_none=True) over a list). */
export function dropGradients(params: readonly Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

/** Runs fn with every parameter of `module` frozen, restoring each flag afterwards. */
export function withFrozen<T>(module: Module, fn: () => T): T {
  const params = module.parameters();
  const flags = params.map((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad = false;
  try {
    return fn();
  } finally {
    params.forEach((p, i) => { p.requiresGrad = flags[i]; });
  }
}

export interface ProcessOptions {
  /** Source of the latents and cameras when a step is not given them. */
  rng?: Random;
  /** Generator EMAs to update after each gStep, e.g. restored from a checkpoint (default: fresh
   * ones with settings.ema_decays over the generator's current weights). */
  emas?: optim.ExponentialMovingAverage[];
  /** Called after each backward, before clipping: data-parallel training replaces every gradient by
   * its mean over the ranks here (train/data-parallel.ts averageGradients). */
  reduceGradients?: (params: readonly Tensor[]) => Promise<void>;
}

/**
 * Gan3DProcess. The optimisers hold every parameter in one group, as torch does; parameters that
 * do not require gradients get none and are skipped by Adam. After dStep the discriminator's
 * parameters hold their clipped gradients in .grad, after gStep the generator's (the reference
 * zeroes G's right after its step; here they are dropped at the start of the next gStep).
 */
export class GramProcess {
  readonly optimizerG: optim.Adam;
  readonly optimizerD: optim.Adam;
  /** The generator EMAs (torch_ema schedule), updated after each gStep; create the process after
   * loading the generator's weights, or pass EMAs in, so the shadows start from the right values. */
  readonly emas: optim.ExponentialMovingAverage[];
  readonly rng: Random;
  protected readonly reduceGradients?: (params: readonly Tensor[]) => Promise<void>;

  constructor(readonly generator: GramGenerator, readonly discriminator: GramEncoderDiscriminator, readonly settings: ProcessSettings, options: ProcessOptions = {}) {
    if (!Number.isInteger(settings.batch_split) || settings.batch_split < 1) throw new Error(`training: batch_split must be a positive integer, got ${settings.batch_split}`);
    this.rng = options.rng ?? defaultRandom();
    const adam = (lr: number) => ({ lr, betas: settings.betas, eps: settings.adam_eps });
    this.optimizerG = new optim.Adam(generator.parameters(), adam(settings.gen_lr));
    this.optimizerD = new optim.Adam(discriminator.parameters(), adam(settings.disc_lr));
    this.emas = options.emas ?? settings.ema_decays.map((d) => new optim.ExponentialMovingAverage(generator, d));
    this.reduceGradients = options.reduceGradients;
  }

  /** Whether generator losses are divided by batch_split (SRGan3DProcess) or summed (Gan3DProcess). */
  protected get divideBySplit(): boolean {
    return false;
  }

  /** z_sampler then, per split, the generator's own camera draws (the reference's RNG order). */
  sampleLatents(batchSize: number): StepLatents {
    const zDim = this.generator.config.z_dim;
    const z = Tensor.fromData(this.rng.normalArray(batchSize * zDim), [batchSize, zDim]);
    const split = this.splitSize(batchSize);
    const cameras: Camera[] = [];
    for (let s = 0; s < this.settings.batch_split; s++) cameras.push(...this.generator.sampleCameras(split, this.rng));
    return { z, cameras };
  }

  protected splitSize(batchSize: number): number {
    const split = Math.floor(batchSize / this.settings.batch_split);
    if (split < 1 || split * this.settings.batch_split !== batchSize) throw new Error(`training: batch ${batchSize} does not split into ${this.settings.batch_split} equal parts`);
    return split;
  }

  /** The generator's images [b, 3, H, W] for the discriminator (the high-res ones in GRAM-HD). */
  protected renderFakes(z: Tensor, cameras: readonly Camera[]): Tensor {
    return this.generator.forward(z, cameras).image;
  }

  /** The generator's loss terms for one split, undivided: Total plus named parts. */
  protected generatorTerms(z: Tensor, cameras: readonly Camera[]): Record<string, Tensor> {
    const image = this.generator.forward(z, cameras).image;
    const judged: JudgedImages = this.discriminator.forward(image);
    const main = gNonSaturating(judged.prediction);
    const pos = ops.mul(poseLoss(judged.position, cameraPoses(cameras)), this.settings.pos_lambda);
    return { Total: ops.add(main, pos), Main: main, Pos: pos };
  }

  /**
   * One discriminator step on real images [B, C, H, W] (the first 3 channels are used) with their
   * dataset poses [B, 2]: fakes without gradient from `latents` (or fresh ones), one D(real) forward
   * for both R1 and the loss, zero_grad, backward, clip, Adam. Returns Total, Main, R1, Pos (and
   * Patch with a patch head), and Real = softplus(-D(real)).mean and Fake = softplus(D(fake)).mean,
   * the two halves of Main (logged as D_Real, D_Fake).
   */
  async dStep(realImages: Tensor, realPoses: Tensor, latents?: StepLatents): Promise<LossLog> {
    const s = this.settings;
    const params = this.discriminator.parameters();
    const terms = await tidyAsync(async () => {
      const { z, cameras } = latents ?? this.sampleLatents(realImages.shape[0]);
      const b = z.shape[0];
      const split = this.splitSize(b);
      const fakes = noGrad(() => ops.concat(Array.from({ length: s.batch_split }, (_, k) => tidy(() =>
        this.renderFakes(ops.narrow(z, 0, k * split, split), cameras.slice(k * split, (k + 1) * split)))), 0));
      const real = ops.clone(realImages.shape[1] === 3 ? realImages : ops.narrow(realImages, 1, 0, 3));
      real.requiresGrad = true;
      const judgedReal: JudgedImages = this.discriminator.forward(real);
      const usePatch = s.use_patch_d;
      if (usePatch && !judgedReal.patch) throw new Error('training: use_patch_d needs a discriminator with a patch head');
      const r1 = s.r1_lambda > 0
        ? r1Penalty(r1Gradient(judgedReal, real, usePatch && s.r1_patch ? s.patch_lambda : 0), s.r1_lambda)
        : ops.zeros([]);
      const judgedFake: JudgedImages = this.discriminator.forward(fakes);
      let pos = ops.mul(poseLoss(judgedFake.position, cameraPoses(cameras)), s.pos_lambda);
      if (s.real_pos_lambda > 0) pos = ops.add(pos, ops.mul(poseLoss(judgedReal.position, realPoses), s.real_pos_lambda));
      const logistic = dLogisticTerms(judgedReal.prediction, judgedFake.prediction);
      const main = logistic.total;
      // D_Real + D_Fake = Main (logged apart to show the two halves separating)
      const out: Record<string, Tensor> = { Main: main, Real: logistic.real, Fake: logistic.fake, R1: r1, Pos: pos };
      let total = ops.add(ops.add(main, r1), pos);
      if (usePatch) {
        out.Patch = ops.mul(dLogistic(judgedReal.patch!, judgedFake.patch!), s.patch_lambda);
        total = ops.add(total, out.Patch);
      }
      out.Total = total;
      this.optimizerD.zeroGrad();
      backward(total);
      real.grad?.dispose();
      await this.reduceGradients?.(params);
      clipGradients(params, s.grad_clip);
      this.optimizerD.step();
      return readLosses(out);
    });
    return terms;
  }

  /**
   * One generator step on `batchSize` fresh latents (or the given ones): per split, the loss
   * (divided by batch_split in GRAM-HD) is backpropagated and the gradients accumulate; then clip,
   * Adam and the EMA updates. The discriminator is held frozen meanwhile (torch accumulates its
   * gradients too, which its next zero_grad discards). Returns the reference's log: GRAM's Total is
   * the last split's g_loss; GRAM-HD's terms are summed over splits after the division.
   */
  async gStep(batchSize: number, latents?: StepLatents): Promise<LossLog> {
    const s = this.settings;
    const params = this.generator.parameters();
    dropGradients(params);
    const log: LossLog = {};
    await tidyAsync(async () => {
      const { z, cameras } = latents ?? this.sampleLatents(batchSize);
      const split = this.splitSize(z.shape[0]);
      const divisor = this.divideBySplit ? s.batch_split : 1;
      for (let k = 0; k < s.batch_split; k++) {
        const terms = await tidyAsync(async () => {
          const parts = withFrozen(this.discriminator, () => {
            const t = this.generatorTerms(ops.narrow(z, 0, k * split, split), cameras.slice(k * split, (k + 1) * split));
            if (divisor !== 1) t.Total = ops.div(t.Total, divisor);
            backward(t.Total);
            return t;
          });
          return readLosses(parts);
        });
        for (const [name, value] of Object.entries(terms)) {
          if (this.divideBySplit) log[name] = (log[name] ?? 0) + (name === 'Total' ? value : value / divisor);
          else log[name] = value;
        }
      }
    });
    await this.reduceGradients?.(params);
    clipGradients(params, s.grad_clip);
    this.optimizerG.step();
    for (const ema of this.emas) ema.update();
    return log;
  }

  /** Frees the optimiser states and EMAs (the networks belong to the caller). */
  dispose(): void {
    this.optimizerG.dispose();
    this.optimizerD.dispose();
    for (const ema of this.emas) ema.dispose();
    dropGradients(this.generator.parameters());
    dropGradients(this.discriminator.parameters());
  }
}

async function readLosses(terms: Record<string, Tensor>): Promise<LossLog> {
  const out: LossLog = {};
  for (const [name, t] of Object.entries(terms)) out[name] = await t.item();
  return out;
}
