// Float64 CPU references for the tests: seeded random data, broadcasting elementwise maps,
// central finite differences, and error measures.
import { ops, Tensor, grad, tidyAsync } from '../../engine/index.ts';
import * as assert from 'uvu/assert';

/** Mulberry32: a small seeded generator, so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values uniform in [lo, hi), already rounded to float32 so CPU and GPU see the same inputs. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from(Float32Array.from({ length: n }, () => lo + (hi - lo) * r()));
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Relative Frobenius error |a - b| / |b| (absolute when b is zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): number {
  const err = relError(actual, expected);
  assert.ok(err <= tol && Number.isFinite(err), `${what}: relative error ${err.toExponential(2)} > ${tol}`);
  return err;
}

/** Float64 elementwise map with numpy broadcasting of the inputs to `shape`. */
export function broadcastMap(shape: readonly number[], inputs: { data: ArrayLike<number>; shape: readonly number[] }[], f: (...v: number[]) => number): Float64Array {
  const n = numel(shape);
  const out = new Float64Array(n);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let rem = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
    }
    const vals = inputs.map(({ data, shape: s }) => {
      let off = 0;
      for (let d = 0; d < s.length; d++) off = off * s[d] + (s[d] === 1 ? 0 : idx[shape.length - s.length + d]);
      return data[off];
    });
    out[i] = f(...vals);
  }
  return out;
}

export interface GradCase {
  name: string;
  shapes: (readonly number[])[];
  gpu: (xs: Tensor[]) => Tensor;
  cpu: (xs: Float64Array[]) => Float64Array;
  /** Input ranges (default [-1, 1]); per input. */
  ranges?: [number, number][];
  seed?: number;
  forwardTol?: number;
  gradTol?: number;
  /** Finite-difference step (float64). */
  h?: number;
  /** Inputs that get no gradient check (indices). */
  noGrad?: number[];
}

/** Checks the forward against the float64 CPU reference and every input gradient against central
 * finite differences of that reference, for a random upstream gradient. Returns the worst errors. */
export async function checkOp(c: GradCase): Promise<{ forward: number; grad: number }> {
  const seed = c.seed ?? 1;
  const xs = c.shapes.map((s, i) => randomArray(numel(s), seed * 100 + i, ...(c.ranges?.[i] ?? [-1, 1])));
  const ref = c.cpu(xs);
  const w = randomArray(ref.length, seed * 100 + 99);
  return tidyAsync(async () => {
    const ts = xs.map((x, i) => {
      const t = Tensor.fromData(Float32Array.from(x), c.shapes[i]);
      t.requiresGrad = !(c.noGrad ?? []).includes(i);
      return t;
    });
    const y = c.gpu(ts);
    const forward = assertClose(await y.data(), ref, c.forwardTol ?? 1e-5, `${c.name} forward`);
    const wanted = ts.filter((t) => t.requiresGrad);
    const gs = grad(y, wanted, { gradOutputs: [Tensor.fromData(Float32Array.from(w), y.shape)] });
    let worst = 0;
    const h = c.h ?? 1e-6;
    const loss = (ins: Float64Array[]) => c.cpu(ins).reduce((s, v, i) => s + v * w[i], 0);
    for (let k = 0, gi = 0; k < xs.length; k++) {
      if ((c.noGrad ?? []).includes(k)) continue;
      const fd = new Float64Array(xs[k].length);
      for (let i = 0; i < fd.length; i++) {
        const plus = xs.map((x) => x.slice());
        const minus = xs.map((x) => x.slice());
        plus[k][i] += h;
        minus[k][i] -= h;
        fd[i] = (loss(plus) - loss(minus)) / (2 * h);
      }
      worst = Math.max(worst, assertClose(await gs[gi++].data(), fd, c.gradTol ?? 1e-4, `${c.name} d/dx${k}`));
    }
    return { forward, grad: worst };
  });
}
