// GRAM-HD's training step (the reference's SRGan3DProcess): GRAM's process plus the PatchGAN head
// (its logistic loss weighted by patch_lambda, and R1 through it with r1_patch), the consistency
// between the downsampled high-res outputs and the low-res ones, and generator losses divided by
// batch_split with gradients accumulated over the splits. The GRAM representation is frozen except
// its feature heads (`rf_network.output_feature`), as the authors' training script does.
import { ops, type Tensor } from '../engine/index.ts';
import type { Camera } from '../model/camera.ts';
import type { GramEncoderPatchDiscriminator } from '../model/discriminator/gram-encoder.ts';
import type { GramHDGenerator } from '../model/gramhd.ts';
import { GramProcess, cameraPoses, type ProcessOptions, type ProcessSettings } from './gram-process.ts';
import { consistencyLoss, gNonSaturating, poseLoss } from './losses.ts';

/** Freezes GRAM-HD's representation but for the feature heads; returns the generator. */
export function freezeRepresentation(generator: GramHDGenerator): GramHDGenerator {
  for (const [key, p] of generator.representation.namedParameters()) p.requiresGrad = key.startsWith('rf_network.output_feature.');
  return generator;
}

export class GramHDProcess extends GramProcess {
  declare readonly generator: GramHDGenerator;
  declare readonly discriminator: GramEncoderPatchDiscriminator;

  /** Freezes the representation (before the EMAs are made, so they track only what trains). */
  constructor(generator: GramHDGenerator, discriminator: GramEncoderPatchDiscriminator, settings: ProcessSettings, options: ProcessOptions = {}) {
    super(freezeRepresentation(generator), discriminator, settings, options);
  }

  protected override get divideBySplit(): boolean {
    return true;
  }

  protected override generatorTerms(z: Tensor, cameras: readonly Camera[]): Record<string, Tensor> {
    const s = this.settings;
    const out = this.generator.forward(z, cameras);
    const judged = this.discriminator.forward(out.image);
    const main = gNonSaturating(judged.prediction);
    const pos = ops.mul(poseLoss(judged.position, cameraPoses(cameras)), s.pos_lambda);
    const factor = this.generator.scaleFactor;
    const cons = ops.mul(ops.add(
      consistencyLoss(out.image, out.lrImage, factor),
      consistencyLoss(out.hrRgba ?? out.hrRgbaParts, out.lrRgba, factor),
    ), s.cons_lambda);
    const terms: Record<string, Tensor> = { Main: main, Pos: pos, Cons: cons };
    let total = ops.add(ops.add(main, pos), cons);
    if (s.use_patch_d) {
      terms.Patch = ops.mul(gNonSaturating(judged.patch), s.patch_lambda);
      total = ops.add(total, terms.Patch);
    }
    terms.Total = total;
    return terms;
  }
}
