// Gradient-norm clipping like torch.nn.utils.clip_grad_norm_ (2-norm): the total norm is the norm
// of the per-tensor norms, and every gradient is multiplied by min(max_norm / (total + 1e-6), 1),
// the factor staying on the GPU so nothing is read back.
import { noGrad } from '../autograd.ts';
import * as ops from '../ops/index.ts';
import type { Tensor } from '../tensor.ts';

/** Returns the clipped gradients (new tensors; null stays null, as a parameter without .grad) and
 * the total norm before clipping, a scalar tensor. */
export function clipGradNorm(grads: readonly (Tensor | null)[], maxNorm: number): { grads: (Tensor | null)[]; totalNorm: Tensor } {
  return noGrad(() => {
    const present = grads.filter((g): g is Tensor => g !== null);
    if (present.length === 0) return { grads: [...grads], totalNorm: ops.zeros([]) };
    const totalNorm = ops.norm(ops.stack(present.map((g) => ops.norm(g)), 0));
    const coef = ops.minimum(ops.div(maxNorm, ops.add(totalNorm, 1e-6)), 1);
    return { grads: grads.map((g) => g && ops.mul(g, coef)), totalNorm };
  });
}
