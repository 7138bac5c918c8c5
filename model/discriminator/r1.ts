// The input gradient that the R1 penalty (Mescheder et al. 2018) measures on real images.
import { grad, ops, type Tensor } from '../../engine/index.ts';
import type { DiscriminatorOutput } from './gram-encoder.ts';

/** The scalar whose gradient R1 takes: sum_b prediction_b, plus with a patch head and r1_patch
 * patchLambda * sum_b mean_p patch_bp (GRAM-HD's SRGan3DProcess.train_D). */
export function r1Objective(out: DiscriminatorOutput & { patch?: Tensor }, patchLambda = 0): Tensor {
  const main = ops.sum(out.prediction);
  if (!patchLambda) return main;
  if (!out.patch) throw new Error('r1Objective: a patch weight was given but the discriminator has no patch output');
  return ops.add(main, ops.mul(ops.sum(ops.mean(out.patch, -1)), patchLambda));
}

/** d r1Objective / d images [B, C, H, W], itself differentiable (createGraph), so that the penalty
 * 0.5 * r1 * mean_b |grad_b|^2 can be backpropagated to the discriminator's weights. `images` must
 * have requiresGrad set before the forward pass that produced `out`. */
export function r1Gradient(out: DiscriminatorOutput & { patch?: Tensor }, images: Tensor, patchLambda = 0): Tensor {
  return grad(r1Objective(out, patchLambda), [images], { createGraph: true })[0];
}
