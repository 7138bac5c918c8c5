// A reconstruction warm start for stage one (not in the authors' code). Each training image gets a
// latent code of its own, optimised together with the generator so that G(code_i, pose_i) renders
// image i at its dataset pose (GLO: Bojanowski et al., "Optimizing the Latent Space of Generative
// Networks", 2018). A GAN of this kind needs tens of thousands of steps before its samples look like
// the data; a regression onto posed images gives the radiance manifolds a head's shape and colours
// within a few thousand, and the adversarial run then resumes from that checkpoint (`gramhd train
// --objective gan --load_dir ...`). Codes start as the images' whitened principal coordinates
// (principal-codes.ts), which tell similar images apart from the first step and share the prior's
// mean and covariance, so that fresh latents land among them. The discriminator is carried along untouched, so a
// checkpoint of this process is also a GAN checkpoint.
import { backward, ops, optim, Tensor, tidyAsync } from '../engine/index.ts';
import { cameraFromPose } from '../model/camera.ts';
import type { GramEncoderDiscriminator } from '../model/discriminator/gram-encoder.ts';
import type { GramGenerator } from '../model/gram.ts';
import { clipGradients, dropGradients, GramProcess, type LossLog, type ProcessOptions, type ProcessSettings } from './gram-process.ts';
import { meanSquaredError } from './losses.ts';

const RECONSTRUCTION_BETAS: [number, number] = [0.9, 0.999];
/** Defaults for GRAM32_SYNTH on the synthetic heads: the generator at 1e-3 diverged after 300
 * steps there. */
export const RECONSTRUCTION_LEARNING_RATES = { lr: 3e-4, codeLr: 3e-3 };

export interface ReconstructionOptions extends ProcessOptions {
  /** Images in the dataset: one code each. */
  datasetSize: number;
  /** The generator's Adam learning rate in this process (the configuration's gen_lr is the GAN's). */
  lr: number;
  /** The codes' Adam learning rate. */
  codeLr: number;
  /** The codes to start from, [datasetSize, z_dim] row-major (train/principal-codes.ts); default:
   * N(0, I) draws from the process's rng. */
  initialCodes?: Float32Array;
  /** Weight of the depth term (0: none; steps then need ground-truth depth maps). */
  depthLambda?: number;
}

export class ReconstructionProcess extends GramProcess {
  /** [datasetSize, z_dim]: row i is image i's latent code. */
  readonly codes: Tensor;
  readonly optimizerCodes: optim.Adam;
  readonly depthLambda: number;

  constructor(generator: GramGenerator, discriminator: GramEncoderDiscriminator, settings: ProcessSettings, options: ReconstructionOptions) {
    super(generator, discriminator, settings, options);
    const { datasetSize, lr, codeLr } = options;
    if (!Number.isInteger(datasetSize) || datasetSize < 1) throw new Error(`reconstruction: dataset size must be a positive integer, got ${datasetSize}`);
    if (!(lr > 0)) throw new Error(`--recon_lr must be positive, got ${lr}`);
    if (!(codeLr > 0)) throw new Error(`--code_lr must be positive, got ${codeLr}`);
    // a regression, not a two-player game: Adam with its usual momentum (the GAN's beta1 is 0)
    this.optimizerG.lr = lr;
    this.depthLambda = options.depthLambda ?? 0;
    if (!(this.depthLambda >= 0)) throw new Error(`--depth_lambda must be non-negative, got ${this.depthLambda}`);
    this.optimizerG.betas = [...RECONSTRUCTION_BETAS];
    const zDim = generator.config.z_dim;
    const initial = options.initialCodes ?? this.rng.normalArray(datasetSize * zDim);
    if (initial.length !== datasetSize * zDim) throw new Error(`reconstruction: ${initial.length} initial code values for ${datasetSize} codes of ${zDim}`);
    this.codes = Tensor.fromData(initial, [datasetSize, zDim]).keep();
    this.codes.requiresGrad = true;
    this.optimizerCodes = new optim.Adam([this.codes], { lr: codeLr, betas: [...RECONSTRUCTION_BETAS], eps: settings.adam_eps });
  }

  /**
   * One step on real images [B, 3, H, W] with their dataset poses [B, 2] (pitch, yaw) and dataset
   * indices: MSE between G(codes[indices], cameras at those poses) and the images, backward into
   * the generator and the batch's codes, clip the generator's gradient as the GAN does, Adam on
   * both, then the EMAs. With a depth weight and ground-truth depths [B, H, W] (0 on the
   * background) the loss adds depthLambda * the mean squared error of the rendered depth over the
   * foreground pixels: it puts the head's opacity where the head is, which colour alone does not
   * (the background plane can paint the whole image). Returns Total, RGB and Depth.
   */
  async reconstructionStep(realImages: Tensor, realPoses: Float32Array, indices: Int32Array, depths?: Float32Array): Promise<LossLog> {
    const params = this.generator.parameters();
    const zDim = this.generator.config.z_dim;
    const b = indices.length;
    if (realImages.shape[0] !== b || realPoses.length !== 2 * b) throw new Error(`reconstruction: ${b} indices for ${realImages.shape[0]} images and ${realPoses.length / 2} poses`);
    for (const i of indices) if (!(i >= 0 && i < this.codes.shape[0])) throw new Error(`reconstruction: image index ${i} outside the ${this.codes.shape[0]} codes`);
    dropGradients(params);
    this.optimizerCodes.zeroGrad();
    const cameras = Array.from({ length: b }, (_, k) => cameraFromPose(realPoses[2 * k], realPoses[2 * k + 1]));
    if (this.depthLambda > 0 && depths?.length !== realImages.size / realImages.shape[1]) throw new Error(`reconstruction: a depth weight needs ${realImages.size / realImages.shape[1]} depth values for the batch, got ${depths?.length ?? 0}`);
    const terms = await tidyAsync(async () => {
      const rows = Tensor.fromData(Int32Array.from({ length: b * zDim }, (_, k) => indices[Math.floor(k / zDim)]), [b, zDim], 'i32');
      const z = ops.gather(this.codes, 0, rows);
      const out = this.generator.forward(z, cameras);
      const target = realImages.shape[1] === 3 ? realImages : ops.narrow(realImages, 1, 0, 3);
      const rgb = meanSquaredError(out.image, target);
      let total = rgb;
      let depthTerm: Tensor | null = null;
      if (this.depthLambda > 0 && depths) {
        const mask = Float32Array.from(depths, (d) => (d > 0 ? 1 : 0));
        const foreground = mask.reduce((s, m) => s + m, 0);
        const gt = Tensor.fromData(depths, out.depth.shape);
        const diff = ops.mul(ops.sub(out.depth, gt), Tensor.fromData(mask, out.depth.shape));
        depthTerm = ops.div(ops.sum(ops.square(diff)), Math.max(1, foreground));
        total = ops.add(rgb, ops.mul(depthTerm, this.depthLambda));
      }
      backward(total);
      return { Total: await total.item(), RGB: await rgb.item(), ...(depthTerm ? { Depth: await depthTerm.item() } : {}) };
    });
    // one exchange for both: the codes of every rank's batch rows, summed into the mean
    await this.reduceGradients?.([...params, this.codes]);
    clipGradients(params, this.settings.grad_clip);
    this.optimizerG.step();
    this.optimizerCodes.step();
    for (const ema of this.emas) ema.update();
    return terms;
  }

  override dispose(): void {
    super.dispose();
    this.optimizerCodes.dispose();
    this.codes.grad?.dispose();
    this.codes.dispose();
  }
}
