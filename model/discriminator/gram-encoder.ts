// GRAM's discriminator (pi-GAN's progressive CoordConv encoder, built for one resolution) and
// GRAM-HD's variant with a PatchGAN beside it. Both judge an image real or fake and also regress its
// camera pose, which the position losses tie to the sampled and the dataset poses.
import { nn, ops, type Tensor } from '../../engine/index.ts';
import { NLayerDiscriminator } from './patch-gan.ts';
import { ResidualCoordConvBlock } from './residual-coord-conv-block.ts';

export interface GramEncoderOptions {
  /** The widest layer (the authors hard-code 400; the golden's small case uses 32). */
  maxChannels?: number;
  /** Channels of the input image (3). */
  imgChannels?: number;
  rng?: nn.Random;
}

export interface DiscriminatorOutput {
  /** [B, 1] real/fake logit. */
  prediction: Tensor;
  /** [B, 2] predicted camera pose (pitch, yaw); the authors call it position. */
  position: Tensor;
}

export interface PatchDiscriminatorOutput extends DiscriminatorOutput {
  /** [B, P] PatchGAN logits, the [B, 1, h, w] map flattened per sample as the authors return it. */
  patch: Tensor;
}

/** 1x1 conv from the image to the first width, then LeakyReLU 0.2. State: `model.0.*`. */
export class AdapterBlock extends nn.Module implements nn.Layer {
  model: nn.Sequential;

  constructor(inChannels: number, outChannels: number, rng?: nn.Random) {
    super();
    this.model = new nn.Sequential(new nn.Conv2d(inChannels, outChannels, 1, { rng }), new nn.LeakyReLU(0.2));
  }

  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }
}

function log2Exact(imgSize: number, who: string): number {
  const l = Math.log2(imgSize);
  if (!Number.isInteger(l) || l < 2 || l > 12) throw new Error(`${who}: img_size must be a power of two from 4 to 4096, got ${imgSize}`);
  return l;
}

/** GramEncoderDiscriminator(img_size). The encoder of pi-GAN is laid out for 8192 down to 2 pixels
 * with widths 2^i for the block at 2^(13-i) pixels; this one keeps only the blocks from img_size
 * down, i = 13 - log2(img_size) .. 11, each halving the resolution:
 *   fromRGB: 1x1 conv 3 -> w(13 - log2 img) + LeakyReLU 0.2
 *   layers.k: ResidualCoordConvBlock(w(i) -> w(i+1), downsample)
 *   final_layer: 2x2 conv on the 2x2 map, w(12) -> 3 = prediction (1) + position (2)
 * with w(i) = min(maxChannels, 2^i). State in the authors' order: layers, fromRGB, final_layer. */
export class GramEncoderDiscriminator extends nn.Module {
  layers: ResidualCoordConvBlock[];
  fromRGB: AdapterBlock;
  final_layer: nn.Conv2d;
  readonly imgSize: number;
  readonly imgChannels: number;
  readonly maxChannels: number;

  constructor(imgSize: number, options: GramEncoderOptions = {}) {
    super();
    const { maxChannels = 400, imgChannels = 3, rng } = options;
    const l = log2Exact(imgSize, new.target.name);
    const width = (i: number) => Math.min(maxChannels, 2 ** i);
    // built in the authors' order, so the default initialisation draws in the same sequence
    this.layers = [];
    for (let i = 13 - l; i < 12; i++) this.layers.push(new ResidualCoordConvBlock(width(i), width(i + 1), { downsample: true, rng }));
    this.fromRGB = new AdapterBlock(imgChannels, width(13 - l), rng);
    this.final_layer = new nn.Conv2d(width(12), 1 + 2, 2, { rng });
    this.imgSize = imgSize;
    this.imgChannels = imgChannels;
    this.maxChannels = maxChannels;
  }

  /** images [B, C, img, img] -> prediction [B, 1], position [B, 2]. */
  forward(images: Tensor): DiscriminatorOutput {
    const [b, c, h, w] = images.shape;
    if (images.rank !== 4 || c !== this.imgChannels || h !== this.imgSize || w !== this.imgSize) {
      throw new Error(`${this.constructor.name}: images must be [B, ${this.imgChannels}, ${this.imgSize}, ${this.imgSize}], got [${images.shape.join(', ')}]`);
    }
    let x = this.fromRGB.forward(images);
    for (const layer of this.layers) x = layer.forward(x);
    const out = ops.reshape(this.final_layer.forward(x), [b, 3]);
    return { prediction: ops.narrow(out, 1, 0, 1), position: ops.narrow(out, 1, 1, 2) };
  }
}

export interface GramEncoderPatchOptions extends GramEncoderOptions {
  /** First PatchGAN width (default min(64, 2^(14 - log2 img))). */
  patchNdf?: number;
  /** PatchGAN stride-2 layers (default max(3, log2 img - 6)). */
  patchLayers?: number;
}

/** GramEncoderPatchDiscriminator(img_size, norm_layer=nn.Identity): the encoder above plus
 * `patchgan`, a PatchGAN on the same image (GRAM-HD passes nn.Identity as its norm layer, the only
 * one supported here). */
export class GramEncoderPatchDiscriminator extends GramEncoderDiscriminator {
  patchgan: NLayerDiscriminator;

  constructor(imgSize: number, options: GramEncoderPatchOptions = {}) {
    super(imgSize, options);
    const l = Math.log2(imgSize);
    const { patchNdf = Math.min(64, 2 ** (14 - l)), patchLayers = Math.max(3, l - 6), imgChannels = 3, rng } = options;
    this.patchgan = new NLayerDiscriminator(imgChannels, { ndf: patchNdf, layers: patchLayers, rng });
  }

  /** images [B, C, img, img] -> prediction [B, 1], position [B, 2], patch [B, P]. */
  override forward(images: Tensor): PatchDiscriminatorOutput {
    const { prediction, position } = super.forward(images);
    const patch = ops.reshape(this.patchgan.forward(images), [images.shape[0], -1]);
    return { prediction, position, patch };
  }
}
