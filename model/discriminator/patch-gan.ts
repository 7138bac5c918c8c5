// The PatchGAN discriminator of pix2pix (Isola et al. 2017), GRAM-HD's second opinion on local
// texture: a stack of 4x4 convolutions whose output is a map of per-patch logits.
import { nn, type Tensor } from '../../engine/index.ts';

/** torch.nn.Identity: stands where pix2pix puts its norm layer (GRAM-HD uses none), so that the
 * layers after it keep the authors' Sequential indices. */
class Identity extends nn.Module implements nn.Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export interface PatchGanOptions {
  /** Width of the first layer (pix2pix's ndf, default 64); later layers double it up to 8x. */
  ndf?: number;
  /** Stride-2 convolutions (pix2pix's n_layers, default 3). */
  layers?: number;
  rng?: nn.Random;
}

/** pix2pix's NLayerDiscriminator without normalisation. With n = layers:
 *   conv 4x4/2 (in -> ndf, bias), LeakyReLU 0.2;
 *   for k = 1 .. n-1: conv 4x4/2 (ndf*min(2^(k-1), 8) -> ndf*min(2^k, 8), no bias), norm, LeakyReLU;
 *   conv 4x4/1 (-> ndf*min(2^n, 8), no bias), norm, LeakyReLU;
 *   conv 4x4/1 (-> 1, bias); every conv with padding 1.
 * The middle convs have no bias because pix2pix gives them one only under InstanceNorm. State:
 * `model.<index>.weight` (and `.bias` on the first and the last), e.g. 0, 2, 5, 8, 11 for n = 3. */
export class NLayerDiscriminator extends nn.Module implements nn.Layer {
  model: nn.Sequential;

  constructor(inChannels: number, options: PatchGanOptions = {}) {
    super();
    const { ndf = 64, layers = 3, rng } = options;
    if (!Number.isInteger(layers) || layers < 1) throw new Error(`NLayerDiscriminator: layers must be a positive integer, got ${layers}`);
    const conv4 = (cin: number, cout: number, stride: number, bias: boolean) => new nn.Conv2d(cin, cout, 4, { stride, padding: 1, bias, rng });
    const width = (k: number) => ndf * Math.min(2 ** k, 8);
    const sequence: (nn.Module & nn.Layer)[] = [conv4(inChannels, ndf, 2, true), new nn.LeakyReLU(0.2)];
    for (let k = 1; k < layers; k++) sequence.push(conv4(width(k - 1), width(k), 2, false), new Identity(), new nn.LeakyReLU(0.2));
    sequence.push(conv4(width(layers - 1), width(layers), 1, false), new Identity(), new nn.LeakyReLU(0.2));
    sequence.push(conv4(width(layers), 1, 1, true));
    this.model = new nn.Sequential(...sequence);
  }

  /** [B, C, H, W] -> [B, 1, H / 2^n - 2, W / 2^n - 2] (for H, W divisible by 2^n). */
  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }
}
