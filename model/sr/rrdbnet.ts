// RRDBNet, GRAM-HD's super-resolution network for the background plane
// (generators/super_resolutions/esrgan.py): the ESRGAN trunk, plain-convolution upsampling and, in
// GRAM-HD, a global residual around a bicubic upsampling of the input.
import { nn, ops, type Tensor } from '../../engine/index.ts';
import { chunkedOverBatch, forwardStep, rrdbTrunk, trunkFeatures, trunkFloatsPerSample, type Step } from './rrdb.ts';
import { defaultUpChannels, upsamplingSteps, type SRBuildOptions } from './style-rrdbnet.ts';

const { Module, Conv2d, constant_, defaultRandom } = nn;

/** The `super_resolution.bg` block of a GRAM-HD configuration: the authors' RRDBNet keyword
 * arguments, under their names. */
export interface RRDBNetConfig {
  nf: number;
  /** Number of RRDBs in the trunk. */
  nb: number;
  /** Growth channels of the dense blocks (default 32). */
  gc?: number;
  /** Channels after each x2 upsampling step (default [nf, nf, nf/2, ...]). */
  up_channels?: readonly number[];
  /** Kernel of conv_last (default 3). */
  to_rgb_ks?: number;
  /** Upsample by pixel shuffle (default) or by interpolation (GRAM-HD's background). */
  use_pixel_shuffle?: boolean;
  /** The interpolation without pixel shuffle (default bilinear; align_corners false). */
  interpolate_mode?: ops.InterpolateMode;
  /** out = bicubic_up(x) + 0.2 * net(x), with conv_last zero-initialised (default false). */
  global_residual?: boolean;
}

export class RRDBNet extends Module {
  conv_first: nn.Conv2d;
  RRDB_trunk: nn.Sequential;
  trunk_conv: nn.Conv2d;
  upconvs: nn.Conv2d[];
  HRconv: nn.Conv2d;
  conv_last: nn.Conv2d;

  /** Most images per forward chunk (beyond the adapter's buffer limit, which always applies). */
  maxChunk = Infinity;

  readonly nf: number;
  readonly gc: number;
  readonly scaleFactor: number;
  readonly usePixelShuffle: boolean;
  readonly interpolateMode: ops.InterpolateMode;
  readonly globalResidual: boolean;

  constructor(readonly inChannels: number, readonly outChannels: number, config: RRDBNetConfig, options: SRBuildOptions = {}) {
    super();
    const { nf, nb, gc = 32, to_rgb_ks: rgbKs = 3 } = config;
    const rng = options.rng ?? defaultRandom();
    this.nf = nf;
    this.gc = gc;
    this.scaleFactor = options.scaleFactor ?? 4;
    this.usePixelShuffle = config.use_pixel_shuffle ?? true;
    this.interpolateMode = config.interpolate_mode ?? 'bilinear';
    this.globalResidual = config.global_residual ?? false;
    const steps = upsamplingSteps(this.scaleFactor);
    if (steps === 0) throw new Error('RRDBNet: scale factor 1 has no upsampling step');
    const up = config.up_channels ?? defaultUpChannels(nf, steps);
    if (up.length < steps) throw new Error(`RRDBNet: ${steps} upsampling steps need ${steps} up_channels, got [${up.join(', ')}]`);
    const widen = this.usePixelShuffle ? 4 : 1;
    const conv = (cin: number, cout: number, k: number) => new Conv2d(cin, cout, k, { padding: (k - 1) >> 1, rng });

    this.conv_first = conv(inChannels, nf, 3);
    this.RRDB_trunk = rrdbTrunk(nf, nb, gc, rng);
    this.trunk_conv = conv(nf, nf, 3);
    this.upconvs = Array.from({ length: steps }, (_, i) => conv(i === 0 ? nf : up[i - 1], up[i] * widen, 3));
    const last = up[up.length - 1];
    this.HRconv = conv(last, last, 3);
    this.conv_last = conv(last, outChannels, rgbKs);
    if (this.globalResidual) {
      // the residual starts as exactly the bicubic upsampling
      constant_(this.conv_last.weight, 0);
      if (this.conv_last.bias) constant_(this.conv_last.bias, 0);
    }
  }

  /** x [N, inChannels, H, W] -> [N, outChannels, H*s, W*s]. Chunks the batch so that no tensor
   * exceeds the adapter's buffer limit. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) throw new Error(`RRDBNet: input must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    const [n, , h, w] = x.shape;
    const step = forwardStep(this, [x]);
    return chunkedOverBatch(n, this.floatsPerSample(h, w), this.maxChunk, step, (start, count) =>
      this.run(count === n ? x : ops.narrow(x, 0, start, count), step));
  }

  private run(x: Tensor, step: Step): Tensor {
    let fea = trunkFeatures(x, this.conv_first, this.RRDB_trunk, this.trunk_conv, step);
    for (const conv of this.upconvs) {
      const input = fea;
      // the activation is elementwise, so it commutes with the pixel shuffle (done by the conv's store)
      fea = step(() => this.usePixelShuffle
        ? conv.forward(input, { negativeSlope: 0.2, pixelShuffle: 2 })
        : ops.interpolate(conv.forward(input, { negativeSlope: 0.2 }), { scale: 2 }, this.interpolateMode));
    }
    const out = this.conv_last.forward(this.HRconv.forward(fea, { negativeSlope: 0.2 }));
    if (!this.globalResidual) return out;
    return ops.add(ops.interpolate(x, { scale: this.scaleFactor }, 'bicubic'), ops.mul(out, 0.2));
  }

  /** The largest tensor one image makes, in floats (for chunking). */
  floatsPerSample(h: number, w: number): number {
    let most = trunkFloatsPerSample(this.inChannels, this.nf, this.gc, h, w);
    this.upconvs.forEach((conv, i) => {
      most = Math.max(most, conv.outChannels * (h << i) * (w << i) * (this.usePixelShuffle ? 1 : 4));
    });
    const area = h * w * this.scaleFactor ** 2;
    return Math.max(most, this.HRconv.outChannels * area, this.conv_last.outChannels * area);
  }
}
