// ESRGAN's residual-in-residual dense blocks (generators/super_resolutions/esrgan.py and
// styleesrgan.py, which define the same plain-convolution blocks), the trunk both GRAM-HD
// super-resolution networks share, and the batch chunking both use to keep every tensor within the
// adapter's storage-binding limit.
import { engineDevice, isGradEnabled, nn, ops, tidy, type Tensor } from '../../engine/index.ts';

const { Module, Conv2d, Sequential } = nn;
type Random = nn.Random;

const conv3x3 = (inChannels: number, outChannels: number, rng?: Random) => new Conv2d(inChannels, outChannels, 3, { padding: 1, rng });

/** ResidualDenseBlock_5C: five 3x3 convolutions, each fed every earlier feature map (dense
 * connections, growth gc), LeakyReLU 0.2 after the first four; out = x5 * 0.2 + x. */
export class ResidualDenseBlock extends Module implements nn.Layer {
  conv1: nn.Conv2d;
  conv2: nn.Conv2d;
  conv3: nn.Conv2d;
  conv4: nn.Conv2d;
  conv5: nn.Conv2d;

  constructor(readonly nf: number, readonly gc: number, rng?: Random) {
    super();
    this.conv1 = conv3x3(nf, gc, rng);
    this.conv2 = conv3x3(nf + gc, gc, rng);
    this.conv3 = conv3x3(nf + 2 * gc, gc, rng);
    this.conv4 = conv3x3(nf + 3 * gc, gc, rng);
    this.conv5 = conv3x3(nf + 4 * gc, nf, rng);
  }

  /** [N, nf, H, W] -> [N, nf, H, W] */
  forward(x: Tensor): Tensor {
    const features = [x];
    for (const conv of [this.conv1, this.conv2, this.conv3, this.conv4]) {
      features.push(conv.forward(ops.concat(features, 1), { negativeSlope: 0.2 }));
    }
    return this.conv5.forward(ops.concat(features, 1), { scale: 0.2, residual: x });
  }
}

/** Residual in Residual Dense Block: three dense blocks, out * 0.2 + x. */
export class RRDB extends Module implements nn.Layer {
  RDB1: ResidualDenseBlock;
  RDB2: ResidualDenseBlock;
  RDB3: ResidualDenseBlock;

  constructor(nf: number, gc: number, rng?: Random) {
    super();
    this.RDB1 = new ResidualDenseBlock(nf, gc, rng);
    this.RDB2 = new ResidualDenseBlock(nf, gc, rng);
    this.RDB3 = new ResidualDenseBlock(nf, gc, rng);
  }

  /** [N, nf, H, W] -> [N, nf, H, W] */
  forward(x: Tensor): Tensor {
    const out = this.RDB3.forward(this.RDB2.forward(this.RDB1.forward(x)));
    return ops.add(ops.mul(out, 0.2), x);
  }
}

/** `RRDB_trunk`: nb RRDBs in a Sequential (keys RRDB_trunk.<i>.RDB<j>.conv<k>). */
export function rrdbTrunk(nf: number, nb: number, gc: number, rng?: Random): nn.Sequential {
  return new Sequential(...Array.from({ length: nb }, () => new RRDB(nf, gc, rng)));
}

/** The low-resolution half both SR networks share: fea = conv_first(x);
 * fea + trunk_conv(RRDB_trunk(fea)). Each RRDB runs in `step` so that, when no gradient is being
 * recorded, its intermediates are freed as soon as it returns. */
export function trunkFeatures(x: Tensor, convFirst: nn.Conv2d, trunk: nn.Sequential, trunkConv: nn.Conv2d, step: Step): Tensor {
  const fea = convFirst.forward(x);
  let h = fea;
  for (const block of trunk.layers) h = step(() => block.forward(h));
  return trunkConv.forward(h, { residual: fea });
}

/** Runs a piece of a forward pass: inside tidy() when nothing is being recorded for backward
 * (intermediates die at once), directly otherwise (backward needs them). */
export type Step = <T>(fn: () => T) => T;

/** The step for a forward of `module` on `inputs`: tidy unless gradients are being recorded. */
export function forwardStep(module: nn.Module, inputs: Tensor[]): Step {
  const recording = isGradEnabled() && (inputs.some((t) => t.requiresGrad) || module.parameters().some((p) => p.requiresGrad));
  return recording ? (fn) => fn() : (fn) => tidy(fn);
}

/**
 * Runs `fn` on slices of the batch (dim 0) no larger than the adapter allows and concatenates the
 * results. `floatsPerSample` is the largest tensor one sample makes along the way: a storage buffer
 * binding holds at most maxStorageBufferBindingSize bytes (128 MiB, 32M floats, on lavapipe), so a
 * layer of 64 channels at 1024 x 1024 already fills half of it for a single sample. `maxChunk`
 * caps the slice further (host memory, tests). The concatenated result must itself fit one buffer.
 */
export function chunkedOverBatch(n: number, floatsPerSample: number, maxChunk: number, step: Step, fn: (start: number, count: number) => Tensor): Tensor {
  const maxFloats = Math.floor(engineDevice().info.limits.maxStorageBufferBindingSize / 4);
  if (floatsPerSample > maxFloats) {
    throw new Error(`super-resolution: one sample needs a tensor of ${floatsPerSample} floats, more than this adapter's ${maxFloats} per buffer`);
  }
  const chunk = Math.max(1, Math.min(maxChunk, Math.floor(maxFloats / floatsPerSample)));
  if (n <= chunk) return step(() => fn(0, n));
  const parts: Tensor[] = [];
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    parts.push(step(() => fn(start, count)));
  }
  const out = ops.concat(parts, 0);
  // without a graph to keep them for, the parts can go now rather than with the caller's scope
  if (!out.requiresGrad) for (const part of parts) part.dispose();
  return out;
}

/** Floats per sample of the largest trunk tensor: the last dense concatenation, nf + 4 gc channels. */
export function trunkFloatsPerSample(inChannels: number, nf: number, gc: number, h: number, w: number): number {
  return Math.max(inChannels, nf + 4 * gc) * h * w;
}
