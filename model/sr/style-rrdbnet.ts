// StyleRRDBNet, GRAM-HD's super-resolution network for the radiance manifolds
// (generators/super_resolutions/styleesrgan.py): an ESRGAN trunk of plain convolutions, then
// StyleGAN2-modulated upsampling convolutions whose styles come from the network's own mapping
// network, fed the same latent z as the radiance network.
import { nn, noGrad, ops, Tensor, tidy } from '../../engine/index.ts';
import { chunkedOverBatch, forwardStep, rrdbTrunk, trunkFeatures, trunkFloatsPerSample, type Step } from './rrdb.ts';

const { Module, Conv2d, Linear, LeakyReLU, Sequential, kaimingNormal_, defaultRandom } = nn;
type Random = nn.Random;

/** The `super_resolution.fg` block of a GRAM-HD configuration: the authors' StyleRRDBNet keyword
 * arguments, under their names. */
export interface StyleRRDBNetConfig {
  /** Latent size the mapping network takes (z_dim). */
  w_dim: number;
  nf: number;
  /** Number of RRDBs in the trunk. */
  nb: number;
  /** Growth channels of the dense blocks (default 32). */
  gc?: number;
  /** Channels after each x2 upsampling step (default [nf, nf, nf/2, ...]). */
  up_channels?: readonly number[];
  /** Kernel of the upsampling convolutions after the first, and of HRconv (default 3). */
  up_sample_ks?: number;
  /** Kernel of conv_last (default 3; GRAM-HD uses 1). */
  to_rgb_ks?: number;
  /** Upsample by pixel shuffle (default) or by bilinear interpolation. */
  use_pixel_shuffle?: boolean;
}

export interface SRBuildOptions {
  /** Output size / input size, a power of two (default 4). */
  scaleFactor?: number;
  /** Initialisation generator (default: the global one). */
  rng?: Random;
}

/** The authors' default up_channels: [nf, nf, nf/2, nf/2, ...] for log2(scale) steps. */
export function defaultUpChannels(nf: number, steps: number): number[] {
  return [nf, nf, ...Array<number>(Math.max(0, steps - 2)).fill(Math.floor(nf / 2))];
}

/** log2 of the scale factor, which must be a power of two. */
export function upsamplingSteps(scaleFactor: number): number {
  const steps = Math.log2(scaleFactor);
  if (!Number.isInteger(steps) || steps < 0) throw new Error(`super-resolution: scale factor ${scaleFactor} is not a power of two`);
  return steps;
}

/** ModConv2D: an nn.Conv2d (torch's default initialisation, state weight [O, C, k, k] and bias [O])
 * whose forward is a per-sample modulated, demodulated convolution with stride 1. */
export class ModulatedConv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, readonly padding: number, rng?: Random) {
    super();
    const conv = new Conv2d(inChannels, outChannels, kernelSize, { rng });
    this.weight = conv.weight;
    this.bias = conv.bias;
  }

  /** x [N, C, H, W], style [N, C] -> [N, O, H', W'], with what follows the convolution where given
   * (see ops.ConvEpilogue). */
  forward(x: Tensor, style: Tensor, epilogue?: ops.ConvEpilogue): Tensor {
    return ops.modulatedConv2d(x, this.weight, style, { padding: this.padding, bias: this.bias, epilogue });
  }
}

/** The SR network's MappingNetwork: z -> 256 -> 256 -> 256 (LeakyReLU 0.2 after each) -> styles.
 * Kaiming-normal weights (a = 0.2, fan_in); the biases keep torch's default. */
export class StyleMappingNetwork extends Module {
  network: nn.Sequential;

  constructor(zDim: number, hiddenDim: number, outputDim: number, rng: Random = defaultRandom()) {
    super();
    const linears = [new Linear(zDim, hiddenDim, { rng }), new Linear(hiddenDim, hiddenDim, { rng }), new Linear(hiddenDim, hiddenDim, { rng }), new Linear(hiddenDim, outputDim, { rng })];
    for (const linear of linears) kaimingNormal_(linear.weight, { a: 0.2 }, rng);
    this.network = new Sequential(
      linears[0], new LeakyReLU(0.2),
      linears[1], new LeakyReLU(0.2),
      linears[2], new LeakyReLU(0.2),
      linears[3],
    );
  }

  /** z [B, zDim] -> styles [B, outputDim] */
  forward(z: Tensor): Tensor {
    return this.network.forward(z);
  }

  /** w: the output before the last Linear, [B, hiddenDim] (what truncation averages). */
  w(z: Tensor): Tensor {
    return this.network.layers.slice(0, -1).reduce((h, layer) => layer.forward(h), z);
  }

  /** The last Linear: w [B, hiddenDim] -> styles [B, outputDim]. */
  fromW(w: Tensor): Tensor {
    return this.network.layers[this.network.layers.length - 1].forward(w);
  }
}

/** StyleRRDBNet with its mapping network (use_mapping_network=True, as GRAM-HD builds it).
 * forward() returns the raw output; the manifold renderer applies withAlphaSigmoid. */
export class StyleRRDBNet extends Module {
  conv_first: nn.Conv2d;
  RRDB_trunk: nn.Sequential;
  trunk_conv: nn.Conv2d;
  upconvs: ModulatedConv2d[];
  HRconv: ModulatedConv2d;
  conv_last: ModulatedConv2d;
  mapping_network: StyleMappingNetwork;
  /** Truncation centre [1, styleDim] (the authors' avg_style attribute: not in the state dict). */
  avgStyle: Tensor | null = null;
  /** Most images per forward chunk (beyond the adapter's buffer limit, which always applies). */
  maxChunk = Infinity;

  readonly nf: number;
  readonly gc: number;
  readonly wDim: number;
  readonly scaleFactor: number;
  readonly upChannels: readonly number[];
  readonly usePixelShuffle: boolean;
  /** Total style width: the in-channels of every modulated convolution, in the order consumed. */
  readonly styleDim: number;

  constructor(readonly inChannels: number, readonly outChannels: number, config: StyleRRDBNetConfig, options: SRBuildOptions = {}) {
    super();
    const { nf, nb, gc = 32, up_sample_ks: upKs = 3, to_rgb_ks: rgbKs = 3, use_pixel_shuffle: pixelShuffle = true } = config;
    const rng = options.rng ?? defaultRandom();
    this.nf = nf;
    this.gc = gc;
    this.wDim = config.w_dim;
    this.scaleFactor = options.scaleFactor ?? 4;
    const steps = upsamplingSteps(this.scaleFactor);
    if (steps === 0) throw new Error('StyleRRDBNet: scale factor 1 has no upsampling step');
    this.upChannels = config.up_channels ?? defaultUpChannels(nf, steps);
    if (this.upChannels.length < steps) throw new Error(`StyleRRDBNet: ${steps} upsampling steps need ${steps} up_channels, got [${this.upChannels.join(', ')}]`);
    this.usePixelShuffle = pixelShuffle;
    const widen = pixelShuffle ? 4 : 1;

    this.conv_first = new Conv2d(inChannels, nf, 3, { padding: 1, rng });
    this.RRDB_trunk = rrdbTrunk(nf, nb, gc, rng);
    this.trunk_conv = new Conv2d(nf, nf, 3, { padding: 1, rng });
    // step 0 is always 3x3; later steps and HRconv use up_sample_ks
    this.upconvs = Array.from({ length: steps }, (_, i) => i === 0
      ? new ModulatedConv2d(nf, this.upChannels[0] * widen, 3, 1, rng)
      : new ModulatedConv2d(this.upChannels[i - 1], this.upChannels[i] * widen, upKs, (upKs - 1) >> 1, rng));
    const last = this.upChannels[this.upChannels.length - 1];
    this.HRconv = new ModulatedConv2d(last, last, upKs, (upKs - 1) >> 1, rng);
    this.conv_last = new ModulatedConv2d(last, outChannels, rgbKs, (rgbKs - 1) >> 1, rng);
    this.styleDim = [...this.upconvs, this.HRconv, this.conv_last].reduce((s, conv) => s + conv.inChannels, 0);
    this.mapping_network = new StyleMappingNetwork(config.w_dim, 256, this.styleDim, rng);
  }

  /** Styles for latents z [B, w_dim] -> [B, styleDim]; with psi < 1, lerp(avgStyle, style, psi). */
  style(z: Tensor, truncationPsi = 1): Tensor {
    const style = this.mapping_network.forward(z);
    if (truncationPsi >= 1) return style;
    if (!this.avgStyle) throw new Error('StyleRRDBNet: truncation needs avgStyle (computeAvgStyle or setAvgStyle first)');
    return ops.lerp(this.avgStyle, style, truncationPsi);
  }

  /** Sets the truncation centre from a stored value [styleDim] or [1, styleDim] (null clears it). */
  setAvgStyle(avgStyle: Tensor | null): void {
    this.avgStyle?.dispose();
    this.avgStyle = null;
    if (!avgStyle) return;
    if (avgStyle.size !== this.styleDim) throw new Error(`StyleRRDBNet: avgStyle [${avgStyle.shape.join(', ')}] should hold ${this.styleDim} values`);
    this.avgStyle = tidy(() => noGrad(() => ops.clone(ops.reshape(avgStyle, [1, this.styleDim])))).keep();
  }

  /**
   * get_avg_w: the truncation centre as from_w(mean of w over latents) (the last layer is linear,
   * so this is also the mean style). Latents are a tensor [N, w_dim] (GRAM-HD passes the same z the
   * radiance network averaged over) or a count of standard-normal latents drawn from `rng`; either
   * way they go through the mapping network `chunk` at a time. Sets and returns avgStyle.
   */
  computeAvgStyle(latents: Tensor | number = 10000, options: { rng?: Random; chunk?: number } = {}): Tensor {
    const zDim = this.wDim;
    const n = typeof latents === 'number' ? latents : latents.shape[0];
    if (typeof latents !== 'number' && (latents.rank !== 2 || latents.shape[1] !== zDim)) {
      throw new Error(`StyleRRDBNet.computeAvgStyle: latents must be [N, ${zDim}], got [${latents.shape.join(', ')}]`);
    }
    if (!Number.isInteger(n) || n < 1) throw new Error(`StyleRRDBNet.computeAvgStyle: needs at least one latent, got ${n}`);
    const chunk = options.chunk ?? 2500;
    const rng = options.rng ?? defaultRandom();
    const avg = tidy(() => noGrad(() => {
      let total: Tensor | null = null;
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        const previous: Tensor | null = total;
        total = tidy((): Tensor => {
          const z = typeof latents === 'number' ? Tensor.fromData(rng.normalArray(count * zDim), [count, zDim]) : ops.narrow(latents, 0, start, count);
          const part = ops.sum(this.mapping_network.w(z), 0, true);
          return previous ? ops.add(previous, part) : part;
        });
      }
      return this.mapping_network.fromW(ops.div(total!, n));
    }));
    this.setAvgStyle(avg);
    avg.dispose();
    return this.avgStyle!;
  }

  /** x [B*L, inChannels, H, W] (the L manifolds of element 0 first), z [B, w_dim] ->
   * raw [B*L, outChannels, H*s, W*s]. */
  forward(x: Tensor, z: Tensor, truncationPsi = 1): Tensor {
    return this.forwardWithStyle(x, this.style(z, truncationPsi));
  }

  /** As forward, from styles [B, styleDim]: element b's style drives its L = N/B images. Chunks
   * the batch so that no tensor exceeds the adapter's buffer limit. */
  forwardWithStyle(x: Tensor, style: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) throw new Error(`StyleRRDBNet: input must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    const [n, , h, w] = x.shape;
    if (style.rank !== 2 || style.shape[1] !== this.styleDim || n % style.shape[0] !== 0) {
      throw new Error(`StyleRRDBNet: style must be [B, ${this.styleDim}] with B dividing the ${n} images, got [${style.shape.join(', ')}]`);
    }
    const b = style.shape[0];
    const perImage = b === n ? style : ops.reshape(ops.expand(ops.reshape(style, [b, 1, this.styleDim]), [b, n / b, this.styleDim]), [n, this.styleDim]);
    const step = forwardStep(this, [x, style]);
    const part = (t: Tensor, start: number, count: number) => (count === n ? t : ops.narrow(t, 0, start, count));
    return chunkedOverBatch(n, this.floatsPerSample(h, w), this.maxChunk, step, (start, count) =>
      this.run(part(x, start, count), part(perImage, start, count), step));
  }

  private run(x: Tensor, style: Tensor, step: Step): Tensor {
    let fea = trunkFeatures(x, this.conv_first, this.RRDB_trunk, this.trunk_conv, step);
    let start = 0;
    const take = (conv: ModulatedConv2d) => {
      const s = ops.narrow(style, 1, start, conv.inChannels);
      start += conv.inChannels;
      return s;
    };
    for (const conv of this.upconvs) {
      const input = fea;
      // the activation is elementwise, so it commutes with the pixel shuffle (done by the conv's store)
      fea = step(() => this.usePixelShuffle
        ? conv.forward(input, take(conv), { negativeSlope: 0.2, pixelShuffle: 2 })
        : ops.interpolate(conv.forward(input, take(conv), { negativeSlope: 0.2 }), { scale: 2 }, 'bilinear'));
    }
    fea = this.HRconv.forward(fea, take(this.HRconv), { negativeSlope: 0.2 });
    return this.conv_last.forward(fea, take(this.conv_last));
  }

  /** The largest tensor one image makes, in floats (for chunking). */
  floatsPerSample(h: number, w: number): number {
    let most = trunkFloatsPerSample(this.inChannels, this.nf, this.gc, h, w);
    this.upconvs.forEach((conv, i) => {
      const area = (h << i) * (w << i);
      most = Math.max(most, conv.outChannels * area * (this.usePixelShuffle ? 1 : 4), conv.outChannels * conv.inChannels * conv.kernelSize ** 2);
    });
    const area = h * w * this.scaleFactor ** 2;
    return Math.max(most, this.HRconv.outChannels * area, this.conv_last.outChannels * area);
  }
}

/** The renderer's view of the raw output [N, 4, H, W]: rgb unchanged, sigmoid on the alpha channel 3. */
export function withAlphaSigmoid(raw: Tensor): Tensor {
  if (raw.rank !== 4 || raw.shape[1] !== 4) throw new Error(`withAlphaSigmoid: expects [N, 4, H, W], got [${raw.shape.join(', ')}]`);
  return ops.concat([ops.narrow(raw, 1, 0, 3), ops.sigmoid(ops.narrow(raw, 1, 3, 1))], 1);
}
