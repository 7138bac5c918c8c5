// The basic layers (Linear, Conv2d, activations, Sequential) with PyTorch's state_dict names and default initialisation. Activation modules
// hold no state but take an index in a Sequential, as in torch, so that the keys of the layers after
// them match the authors' (`network.0.weight`, `network.2.weight` around a LeakyReLU at 1).
import * as ops from '../ops/index.ts';
import type { ConvEpilogue } from '../ops/conv.ts';
import { Tensor } from '../tensor.ts';
import { Module, parameter } from './module.ts';
import { defaultRandom, type Random } from './random.ts';

/** A module that maps one tensor to one tensor. */
export interface Layer {
  forward(x: Tensor): Tensor;
}

export interface LinearOptions {
  /** Whether the layer adds a bias (default true). */
  bias?: boolean;
  /** The generator to initialise from (default: the global one, see manualSeed). */
  rng?: Random;
}

/** y = x W^T + b, like torch.nn.Linear. */
export class Linear extends Module implements Layer {
  /** [out, in] */
  weight: Tensor;
  /** [out], or null without bias. */
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super();
    const rng = options.rng ?? defaultRandom();
    // torch: kaiming_uniform_(a=sqrt(5)) gives bound gain*sqrt(3/fan_in) with gain = sqrt(2/(1+5)),
    // i.e. 1/sqrt(fan_in); the bias uses the same bound. Weight is drawn first.
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.weight = parameter(Tensor.fromData(rng.uniformArray(outFeatures * inFeatures, -bound, bound), [outFeatures, inFeatures]));
    this.bias = (options.bias ?? true) ? parameter(Tensor.fromData(rng.uniformArray(outFeatures, -bound, bound), [outFeatures])) : null;
  }

  /** [..., in] -> [..., out] */
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dLayerOptions extends ops.Conv2dOptions {
  /** Whether the layer adds a bias (default true). */
  bias?: boolean;
  /** The generator to initialise from (default: the global one, see manualSeed). */
  rng?: Random;
}

/** torch.nn.Conv2d: weight [out, in/groups, kh, kw], bias [out]. */
export class Conv2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly options: ops.Conv2dOptions;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | readonly [number, number], options: Conv2dLayerOptions = {}) {
    super();
    const { bias = true, rng = defaultRandom(), ...convOptions } = options;
    const groups = convOptions.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`Conv2d: ${inChannels} -> ${outChannels} channels do not split into ${groups} groups`);
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.options = convOptions;
    // the same default as Linear, with fan_in = in/groups * kh * kw
    const fanIn = (inChannels / groups) * kh * kw;
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    const shape = [outChannels, inChannels / groups, kh, kw];
    this.weight = parameter(Tensor.fromData(rng.uniformArray(outChannels * fanIn, -bound, bound), shape));
    this.bias = bias ? parameter(Tensor.fromData(rng.uniformArray(outChannels, -bound, bound), [outChannels])) : null;
  }

  /** [N, in, H, W] -> [N, out, Ho, Wo], with what follows the convolution where given (see
   * ops.ConvEpilogue). */
  forward(x: Tensor, epilogue?: ConvEpilogue): Tensor {
    return ops.conv2d(x, this.weight, this.bias, epilogue ? { ...this.options, epilogue } : this.options);
  }
}

export class LeakyReLU extends Module implements Layer {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  forward(x: Tensor): Tensor {
    return ops.leakyRelu(x, this.negativeSlope);
  }
}

export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

/** Layers applied in order; their keys are their indices, like torch.nn.Sequential. */
export class Sequential extends Module implements Layer {
  readonly layers: (Module & Layer)[];

  constructor(...layers: (Module & Layer)[]) {
    super();
    this.layers = layers;
  }

  override stateFields(): [string, unknown][] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, layer) => layer.forward(h), x);
  }
}
