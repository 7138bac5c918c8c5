// The loss terms of the reference training processes (processes/processes.py), as small pure
// functions of tensors. Each returns a scalar tensor ([]) that can be differentiated.
import { ops, type Tensor } from '../engine/index.ts';

/** Discriminator logistic loss: softplus(D(fake)).mean + softplus(-D(real)).mean. Also the patch
 * head's loss (before patch_lambda), with the [B, P] patch logits. */
export function dLogistic(realLogits: Tensor, fakeLogits: Tensor): Tensor {
  return dLogisticTerms(realLogits, fakeLogits).total;
}

/** dLogistic with its two halves: real = softplus(-D(real)).mean, fake = softplus(D(fake)).mean,
 * total = fake + real (the same tensor dLogistic returns, computed the same way). */
export function dLogisticTerms(realLogits: Tensor, fakeLogits: Tensor): { real: Tensor; fake: Tensor; total: Tensor } {
  const fake = ops.mean(ops.softplus(fakeLogits));
  const real = ops.mean(ops.softplus(ops.neg(realLogits)));
  return { real, fake, total: ops.add(fake, real) };
}

/** Generator non-saturating loss: softplus(-D(fake)).mean (whole-image or patch logits). */
export function gNonSaturating(fakeLogits: Tensor): Tensor {
  return ops.mean(ops.softplus(ops.neg(fakeLogits)));
}

/** R1 penalty 0.5 * r1Lambda * mean_b |grad_b|^2 of the input gradient [B, C, H, W] (r1.ts). */
export function r1Penalty(inputGradient: Tensor, r1Lambda: number): Tensor {
  const perSample = ops.sum(ops.square(ops.flatten(inputGradient, 1)), 1);
  return ops.mul(ops.mean(perSample), 0.5 * r1Lambda);
}

/** nn.MSELoss (mean reduction) between predicted [B, 2] and target (pitch, yaw) poses. */
export function poseLoss(predicted: Tensor, target: Tensor): Tensor {
  return meanSquaredError(predicted, target);
}

export function meanSquaredError(a: Tensor, b: Tensor): Tensor {
  return ops.mean(ops.square(ops.sub(a, b)));
}

/**
 * GRAM-HD's consistency: mean((bicubic_down(high, factor) - low)^2). The high-res tensor may come as
 * pieces along dim 0 (textures too large for one buffer); the mean is then taken over all of them,
 * `low` [N, C, h, w] holding the matching rows in the same order.
 */
export function consistencyLoss(high: Tensor | readonly Tensor[], low: Tensor, factor: number): Tensor {
  const parts = Array.isArray(high) ? high : [high as Tensor];
  if (parts.length === 1) return meanSquaredError(ops.bicubicDownsample(parts[0], factor), low);
  let start = 0;
  let total: Tensor | null = null;
  for (const part of parts) {
    const n = part.shape[0];
    const sq = ops.sum(ops.square(ops.sub(ops.bicubicDownsample(part, factor), ops.narrow(low, 0, start, n))));
    total = total ? ops.add(total, sq) : sq;
    start += n;
  }
  if (start !== low.shape[0]) throw new Error(`consistencyLoss: ${start} high-res rows for ${low.shape[0]} low-res ones`);
  return ops.div(total!, low.size);
}
