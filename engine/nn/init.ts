// In-place initialisers like torch.nn.init, drawing on the CPU from a seeded generator (the authors'
// exact values come from checkpoints; these only give the right distributions).
import type { Tensor } from '../tensor.ts';
import { assign } from './assign.ts';
import { defaultRandom, type Random } from './random.ts';

export function uniform_(t: Tensor, lo: number, hi: number, rng: Random = defaultRandom()): Tensor {
  assign(t, rng.uniformArray(t.size, lo, hi));
  return t;
}

export function normal_(t: Tensor, mean: number, std: number, rng: Random = defaultRandom()): Tensor {
  assign(t, rng.normalArray(t.size, mean, std));
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  assign(t, new Float32Array(t.size).fill(value));
  return t;
}

/** Fan-in and fan-out of a weight [out, in, ...kernel] as torch computes them. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan in/out need a weight of rank >= 2, got [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** torch.nn.init.kaiming_normal_ with the leaky_relu gain sqrt(2 / (1 + a^2)) (a = 0: ReLU's). */
export function kaimingNormal_(t: Tensor, options: { a?: number; mode?: 'fanIn' | 'fanOut' } = {}, rng: Random = defaultRandom()): Tensor {
  const a = options.a ?? 0;
  const fan = fans(t.shape)[options.mode ?? 'fanIn'];
  return normal_(t, 0, Math.sqrt(2 / (1 + a * a)) / Math.sqrt(fan), rng);
}
