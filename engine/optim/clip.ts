// Gradient-norm clipping like torch.nn.utils.clip_grad_norm_ (2-norm): the total norm is the norm
// of the per-tensor norms, and every gradient is multiplied by min(max_norm / (total + 1e-6), 1),
// the factor staying on the GPU so nothing is read back. The total is computed as the square root
// of the sum of the per-tensor sums of squares (one dispatch per tensor, each into its slot).
import { sumOfSquaresKernel, sumOfSquaresUniforms } from '../../kernels/optim.ts';
import { noGrad } from '../autograd.ts';
import * as ops from '../ops/index.ts';
import { dispatch } from '../runtime.ts';
import type { Tensor } from '../tensor.ts';

/** Returns the clipped gradients (new tensors; null stays null, as a parameter without .grad) and
 * the total norm before clipping, a scalar tensor. */
export function clipGradNorm(grads: readonly (Tensor | null)[], maxNorm: number): { grads: (Tensor | null)[]; totalNorm: Tensor } {
  return noGrad(() => {
    const present = grads.filter((g): g is Tensor => g !== null);
    if (present.length === 0) return { grads: [...grads], totalNorm: ops.zeros([]) };
    const sums = ops.zeros([present.length]);
    present.forEach((g, slot) => {
      if (g.size > 0) dispatch(sumOfSquaresKernel, [g.buffer, sums.buffer], sumOfSquaresUniforms(g.size, slot), [1, 1, 1]);
    });
    const totalNorm = ops.sqrt(ops.sum(sums));
    const coef = ops.minimum(ops.div(maxNorm, ops.add(totalNorm, 1e-6)), 1);
    return { grads: grads.map((g) => g && ops.mul(g, coef)), totalNorm };
  });
}
