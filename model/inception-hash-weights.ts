// The counter-hash weights of the evaluation golden vectors (test/golden/eval/README.md): the
// extractor's 23.8M values computed from (tensor number, element index) instead of stored.
import { inceptionStateShapes, type InceptionStateValue } from './inception.ts';

/** u in [0, 1) for tensor k (0-based, state_dict order) and element i (row-major), uint32 math. */
export function hashUniform(k: number, i: number): number {
  let h = (Math.imul(i, 0x9e3779b1) + Math.imul(k + 1, 0x85ebca77)) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39) >>> 0;
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

/** The golden state dict in float64, every key in torch's order. */
export function hashedInceptionState(): Map<string, InceptionStateValue> {
  const state = new Map<string, InceptionStateValue>();
  let k = 0;
  for (const [key, shape] of inceptionStateShapes()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    const fanIn = n / (shape[0] ?? 1);
    const value: (u: number) => number =
      key.endsWith('num_batches_tracked') ? () => 0
        : key.endsWith('.bn.weight') || key.endsWith('running_var') ? (u) => 0.5 + u
          : key.endsWith('.bn.bias') || key.endsWith('running_mean') ? (u) => (2 * u - 1) * 0.2
            : key === 'fc.bias' ? (u) => (2 * u - 1) * 0.1
              : (u) => (2 * u - 1) * Math.sqrt(6 / fanIn);
    for (let i = 0; i < n; i++) data[i] = value(hashUniform(k, i));
    state.set(key, { shape, data });
    k++;
  }
  return state;
}
