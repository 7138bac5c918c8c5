// The manifold (sample) network: a scalar field s(x) over space whose level sets are GRAM's radiance
// manifolds. An MLP 3 -> h -> ... -> h (ReLU) -> 1 on warped, centred points.
import { ops, Tensor } from '../engine/index.ts';
import { constant_, normal_ } from '../engine/nn/init.ts';
import { Linear, ReLU, Sequential } from '../engine/nn/layers.ts';
import { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';
import type { Vec3 } from './camera.ts';
import { linearRelu } from './fused-linear.ts';
import { release, step } from './scope.ts';

/** UniformBoxWarp(0.24): both networks see points scaled by 2/0.24. */
export const WARP_SCALE = 2 / 0.24;

export interface SampleNetworkOptions {
  hiddenDim: number;
  layers: number;
  center: Vec3;
  initRadius: number;
}

export class SampleNetwork extends Module {
  network: Sequential;
  output_layer: Linear;
  /** The field's centre in warped coordinates, [3] (a constant, not state). */
  private readonly center: Tensor;

  constructor(options: SampleNetworkOptions, rng: Random = defaultRandom()) {
    super();
    const h = options.hiddenDim;
    const layers: (Linear | ReLU)[] = [];
    for (let i = 0; i < options.layers; i++) layers.push(new Linear(i === 0 ? 3 : h, h, { rng }), new ReLU());
    this.network = new Sequential(...layers);
    this.output_layer = new Linear(h, 1, { rng });
    // geometry init: hidden weights N(0, 2/out), zero biases; the output starts as a constant
    // 10 sqrt(pi/in) per unit minus the initial radius
    for (const l of layers) {
      if (!(l instanceof Linear)) continue;
      normal_(l.weight, 0, Math.sqrt(2 / l.outFeatures), rng);
      constant_(l.bias!, 0);
    }
    constant_(this.output_layer.weight, 10 * Math.sqrt(Math.PI / h));
    constant_(this.output_layer.bias!, -options.initRadius);
    this.center = Tensor.fromData(options.center, [3]).keep();
  }

  /** Frees the parameters and the constant centre. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
    this.center.dispose();
  }

  /** points [..., 3] (world space) -> s [..., 1] */
  forward(points: Tensor): Tensor {
    if (points.shape[points.rank - 1] !== 3) throw new Error(`sample network: points must be [..., 3], got [${points.shape.join(', ')}]`);
    let x = ops.sub(ops.mul(points, WARP_SCALE), this.center);
    // the Sequential alternates Linear and ReLU (the authors' keys); each pair is one fused layer
    for (const layer of this.network.layers) {
      if (!(layer instanceof Linear)) continue;
      const next = step(() => linearRelu(x, layer.weight, layer.bias!));
      release(x);
      x = next;
    }
    const s = this.output_layer.forward(x);
    release(x);
    return s;
  }
}
