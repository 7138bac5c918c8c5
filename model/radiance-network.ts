// The radiance network (pi-GAN's FiLM SIREN as GRAM uses it): eight FiLM-SIREN layers conditioned
// by the mapping network; after layers 1..7 a sigma head and an rgb head add to the output (the rgb
// head of layer 7 reads a view-dependent color layer instead), and GRAM-HD adds a feature head.
import { ops, type Tensor } from '../engine/index.ts';
import { uniform_ } from '../engine/nn/init.ts';
import { Linear } from '../engine/nn/layers.ts';
import { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import type { RgbClampMode, SigmaClampMode } from './config.ts';
import { filmSiren } from './film-siren.ts';
import { MappingNetwork, type FilmCodes } from './mapping.ts';
import { WARP_SCALE } from './sample-network.ts';
import { release, step } from './scope.ts';

const FILM_LAYERS = 8;
/** Mapping outputs are turned into frequencies as freq * 15 + 30. */
const FREQ_SCALE = 15;
const FREQ_SHIFT = 30;
/** widen_sigmoid: sigmoid(x) * (1 + 2 eps) - eps. */
const WIDEN_EPS = 1e-3;

/** sin(freq * (W x + b) + phase) with its FiLM codes passed in. */
export class FiLMLayer extends Module {
  layer: Linear;

  constructor(inFeatures: number, outFeatures: number, rng: Random) {
    super();
    this.layer = new Linear(inFeatures, outFeatures, { rng });
  }

  /** x [B, N, in], freq and phase [B, out] -> [B, N, out] */
  forward(x: Tensor, freq: Tensor, phase: Tensor): Tensor {
    return filmSiren(x, this.layer.weight, this.layer.bias!, freq, phase);
  }

  /** forward() of x whose features past in_features are zeros (appended so that its rows are whole
   * vec4s), against the weight padded with as many zero columns: the same values. */
  forwardZeroTail(x: Tensor, freq: Tensor, phase: Tensor): Tensor {
    const extra = x.shape[x.rank - 1] - this.layer.inFeatures;
    if (extra === 0) return this.forward(x, freq, phase);
    return filmSiren(x, ops.pad(this.layer.weight, [0, 0, 0, extra]), this.layer.bias!, freq, phase);
  }
}

export interface RadianceNetworkOptions {
  zDim: number;
  hiddenDim: number;
  /** Width of the GRAM-HD feature head; 0 for GRAM. */
  featureDim: number;
  sigmaClamp: SigmaClampMode;
  rgbClamp: RgbClampMode;
}

export interface Radiance {
  /** [B, N, 4]: rgb in the widened [0, 1] range, then density. */
  rgbSigma: Tensor;
  /** [B, N, feature_dim] when asked for. */
  feature?: Tensor;
}

/** uniform(+-sqrt(6/in)/25) on the weight: SIREN's init for a sine of frequency ~25. */
function frequencyInit(l: Linear, rng: Random): void {
  const bound = Math.sqrt(6 / l.inFeatures) / 25;
  uniform_(l.weight, -bound, bound, rng);
}

export class RadianceNetwork extends Module {
  network: FiLMLayer[];
  color_layer: FiLMLayer[];
  output_sigma: Linear[];
  output_color: Linear[];
  /** Only in GRAM-HD (featureDim > 0), where it is the one trainable part. */
  output_feature: Linear[] | null;
  mapping_network: MappingNetwork;

  constructor(readonly options: RadianceNetworkOptions, rng: Random = defaultRandom()) {
    super();
    const h = options.hiddenDim;
    const heads = (out: number) => Array.from({ length: FILM_LAYERS - 1 }, () => new Linear(h, out, { rng }));
    this.network = Array.from({ length: FILM_LAYERS }, (_, k) => new FiLMLayer(k === 0 ? 3 : h, h, rng));
    this.color_layer = [new FiLMLayer(h + 3, h, rng)];
    this.output_sigma = heads(1);
    this.output_color = heads(3);
    this.output_feature = options.featureDim > 0 ? heads(options.featureDim) : null;
    this.mapping_network = new MappingNetwork(options.zDim, 256, (FILM_LAYERS + 1) * h * 2, rng);
    // SIREN init on the weights of every FiLM layer and head (biases keep torch's default), then
    // the first layer's uniform(+-1/in)
    for (const film of [...this.network, ...this.color_layer]) frequencyInit(film.layer, rng);
    for (const head of [...this.output_sigma, ...this.output_color, ...(this.output_feature ?? [])]) frequencyInit(head, rng);
    const first = this.network[0].layer;
    uniform_(first.weight, -1 / first.inFeatures, 1 / first.inFeatures, rng);
  }

  /** Width of the FiLM codes the mapping network makes: frequencies and phases for 8 + 1 layers. */
  get codeDim(): number {
    return (FILM_LAYERS + 1) * this.options.hiddenDim;
  }

  /**
   * The heads after FiLM layer k (1..7) as one [B, N, 4 (+ feature_dim)] term, channels [sigma,
   * rgb, feature]: the heads that read the layer's output share one matmul (their weights stacked);
   * after the last layer the rgb head reads the color layer instead.
   */
  /** The view-dependent color layer on [directions, y] (3 + hidden features), padded with zeros
   * to a multiple of 4: the fused FiLM kernel then reads its rows as vec4s (on GRAM64 on lavapipe
   * the layer went ~1.4 -> 1.1 s), and the concat is made anyway. */
  private colorLayer(directions: Tensor, y: Tensor, freq: Tensor, phase: Tensor): Tensor {
    const width = directions.shape[directions.rank - 1] + y.shape[y.rank - 1];
    const extra = (4 - (width % 4)) % 4;
    const parts = extra ? [directions, y, ops.zeros([...y.shape.slice(0, -1), extra])] : [directions, y];
    return this.color_layer[0].forwardZeroTail(ops.concat(parts, -1), freq, phase);
  }

  private headsAt(k: number, y: Tensor, color: Tensor | null, feature: boolean): Tensor {
    const fromY = [this.output_sigma[k - 1], ...(color ? [] : [this.output_color[k - 1]]), ...(feature ? [this.output_feature![k - 1]] : [])];
    const stacked = ops.linear(y, ops.concat(fromY.map((l) => l.weight), 0), ops.concat(fromY.map((l) => l.bias!), 0));
    if (!color) return stacked;
    const rgb = this.output_color[k - 1].forward(color);
    return ops.concat([ops.narrow(stacked, -1, 0, 1), rgb, ...(feature ? [ops.narrow(stacked, -1, 1, this.options.featureDim)] : [])], -1);
  }

  /**
   * points [B, N, 3] (world space), view directions [B, N, 3] and the FiLM codes of each batch
   * element ([B, codeDim] each, as the mapping network makes them) -> rgb and density [B, N, 4],
   * plus the feature head's sum when `feature` is asked for.
   */
  forward(points: Tensor, directions: Tensor, codes: FilmCodes, options: { feature?: boolean } = {}): Radiance {
    const b = points.shape[0];
    const h = this.options.hiddenDim;
    if (points.rank !== 3 || points.shape[2] !== 3 || directions.shape.join() !== points.shape.join()) {
      throw new Error(`radiance network: points [${points.shape.join(', ')}] and directions [${directions.shape.join(', ')}] must both be [B, N, 3]`);
    }
    if (codes.frequencies.shape.join() !== `${b},${this.codeDim}`) {
      throw new Error(`radiance network: FiLM codes must be [${b}, ${this.codeDim}], got [${codes.frequencies.shape.join(', ')}]`);
    }
    const wantFeature = options.feature ?? false;
    if (wantFeature && !this.output_feature) throw new Error('radiance network: no feature head (feature_dim is 0)');
    const freq = ops.add(ops.mul(codes.frequencies, FREQ_SCALE), FREQ_SHIFT);
    const codesOf = (k: number) => [ops.narrow(freq, 1, k * h, h), ops.narrow(codes.phase_shifts, 1, k * h, h)] as const;

    let x = ops.mul(points, WARP_SCALE);
    // the heads' sum, channels [sigma, rgb, feature]
    let heads: Tensor | null = null;
    for (let k = 0; k < FILM_LAYERS; k++) {
      const next = step(() => {
        const y = this.network[k].forward(x, ...codesOf(k));
        if (k === 0) return { y, heads };
        const last = k === FILM_LAYERS - 1;
        const color = last ? this.colorLayer(directions, y, ...codesOf(FILM_LAYERS)) : null;
        const term = this.headsAt(k, y, color, wantFeature);
        return { y, heads: heads ? ops.add(heads, term) : term };
      });
      release(x, ...(k > 1 ? [heads] : []));
      ({ y: x, heads } = next);
    }
    const sum = heads!;
    const rgbSigma = ops.concat([clampRgb(ops.narrow(sum, -1, 1, 3), this.options.rgbClamp), clampSigma(ops.narrow(sum, -1, 0, 1), this.options.sigmaClamp)], -1);
    const feature = wantFeature ? ops.narrow(sum, -1, 4, this.options.featureDim) : null;
    release(x, sum);
    return feature ? { rgbSigma, feature } : { rgbSigma };
  }
}

function clampRgb(rgb: Tensor, mode: RgbClampMode): Tensor {
  if (mode === 'sigmoid') return ops.sigmoid(rgb);
  if (mode === 'widen_sigmoid') return ops.sub(ops.mul(ops.sigmoid(rgb), 1 + 2 * WIDEN_EPS), WIDEN_EPS);
  return rgb;
}

function clampSigma(sigma: Tensor, mode: SigmaClampMode): Tensor {
  if (mode === 'softplus') return ops.softplus(sigma);
  if (mode === 'relu') return ops.relu(sigma);
  return sigma;
}
