// Overwriting a tensor's values in place. Parameters, optimiser moments and EMA shadows keep their
// identity when loaded from a checkpoint, so every reference to them (an optimiser's parameter
// list, a model's fields) stays valid.
import { upload, withEncoder } from '../runtime.ts';
import type { Tensor } from '../tensor.ts';

/** Copies `src` (a tensor of the same shape, or host values) into `dst`, ordered after the GPU work
 * already recorded. */
export function assign(dst: Tensor, src: Tensor | Float32Array): void {
  if (src instanceof Float32Array) {
    if (src.length !== dst.size) throw new Error(`assign: ${src.length} values for a tensor of shape [${dst.shape.join(', ')}]`);
    if (dst.dtype !== 'f32') throw new Error(`assign: float values for an ${dst.dtype} tensor`);
    if (src.length > 0) upload(dst.buffer, src);
    return;
  }
  if (src.size !== dst.size || src.dtype !== dst.dtype) {
    throw new Error(`assign: ${src.dtype} [${src.shape.join(', ')}] into ${dst.dtype} [${dst.shape.join(', ')}]`);
  }
  if (src.buffer === dst.buffer || dst.size === 0) return;
  withEncoder((encoder) => encoder.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, dst.size * 4));
}
