// GRAM's discriminator block: two CoordConvs with LeakyReLU 0.2, an identity path (1x1 conv when the
// width changes) and the sum scaled by 1/sqrt(2) to keep the variance.
import { nn, ops, type Tensor } from '../../engine/index.ts';
import { CoordConv } from './coord-conv.ts';

export interface ResidualCoordConvBlockOptions {
  kernelSize?: number;
  stride?: number;
  /** Average-pool 2x2 both paths before the sum (every block of the discriminators does). */
  downsample?: boolean;
  rng?: nn.Random;
}

/** State: `network.0.conv.*`, `network.2.conv.*` and, when inChannels != outChannels, `proj.*`. */
export class ResidualCoordConvBlock extends nn.Module implements nn.Layer {
  network: nn.Sequential;
  proj: nn.Conv2d | null;
  readonly downsample: boolean;

  constructor(inChannels: number, outChannels: number, options: ResidualCoordConvBlockOptions = {}) {
    super();
    const { kernelSize = 3, stride = 1, downsample = false, rng } = options;
    const padding = Math.floor(kernelSize / 2);
    this.network = new nn.Sequential(
      new CoordConv(inChannels, outChannels, kernelSize, { stride, padding, rng }),
      new nn.LeakyReLU(0.2),
      new CoordConv(outChannels, outChannels, kernelSize, { padding, rng }),
      new nn.LeakyReLU(0.2),
    );
    this.proj = inChannels !== outChannels ? new nn.Conv2d(inChannels, outChannels, 1, { rng }) : null;
    this.downsample = downsample;
  }

  /** [B, in, H, W] -> [B, out, H/2, W/2] with downsample (else [B, out, H, W]). */
  forward(x: Tensor): Tensor {
    let y = this.network.forward(x);
    let identity = x;
    // the authors' order: pool both paths, then project the pooled identity
    if (this.downsample) {
      y = ops.avgPool2d(y, 2);
      identity = ops.avgPool2d(identity, 2);
    }
    if (this.proj) identity = this.proj.forward(identity);
    return ops.div(ops.add(y, identity), Math.SQRT2);
  }
}
