// CoordConv (Liu et al. 2018) as GRAM's discriminator uses it: the convolution also sees where each
// pixel is, through two extra input channels of coordinates in [-1, 1].
import { nn, ops, type Tensor } from '../../engine/index.ts';

/** x [B, C, H, W] -> [B, C + 2, H, W]: cat[x, row, col] with row = i / (H - 1) * 2 - 1 varying along
 * the height and col = j / (W - 1) * 2 - 1 along the width (the authors' AddCoords, whose
 * "xx_channel" is, after its two transposes, the row coordinate). */
export function addCoords(x: Tensor): Tensor {
  if (x.rank !== 4) throw new Error(`addCoords: input must be [B, C, H, W], got [${x.shape.join(', ')}]`);
  const [b, , h, w] = x.shape;
  // computed on the GPU (an upload would end the batch of pending dispatches); as in torch, float
  // index / (n - 1) first, then * 2 - 1
  const coordinate = (n: number, shape: number[]) => ops.expand(ops.reshape(ops.sub(ops.mul(ops.div(ops.arange(n), n - 1), 2), 1), shape), [b, 1, h, w]);
  return ops.concat([x, coordinate(h, [1, 1, h, 1]), coordinate(w, [1, 1, 1, w])], 1);
}

/** A Conv2d over addCoords(x): weight [out, in + 2, k, k]. State: `conv.weight`, `conv.bias`. */
export class CoordConv extends nn.Module implements nn.Layer {
  conv: nn.Conv2d;

  constructor(inChannels: number, outChannels: number, kernelSize: number, options: nn.Conv2dLayerOptions = {}) {
    super();
    this.conv = new nn.Conv2d(inChannels + 2, outChannels, kernelSize, options);
  }

  /** [B, in, H, W] -> [B, out, Ho, Wo] */
  forward(x: Tensor): Tensor {
    return this.conv.forward(addCoords(x));
  }
}
