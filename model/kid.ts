// Kernel Inception Distance as torch-fidelity computes it: subsets of `subsetSize` samples drawn
// from each set with numpy's RandomState(seed).choice(n, size, replace=False) (the first set's
// subset, then the second's, per subset), the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 and
// the unbiased MMD^2 estimate
//   (sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2;
// KID is the mean over subsets, reported with the (population) standard deviation.
import type { FeatureMatrix } from './fid.ts';
import { NumpyRandomState } from './numpy-random.ts';

/** Sums of the three kernel matrices of subsets x, y (m rows each): sum of k(x, x) and k(y, y)
 * without their diagonals, and all of k(x, y). */
export interface KernelSums {
  xx: number;
  yy: number;
  xy: number;
}

/** Computes KernelSums for two [m, d] subsets; the CPU one below, or a GPU one from the caller. */
export type KernelSumsFn = (x: Float64Array, y: Float64Array, m: number, d: number) => KernelSums | Promise<KernelSums>;

/** The kernel sums in float64 on the CPU (O(m^2 d): fine for tests and small sets). */
export function kernelSumsCpu(x: Float64Array, y: Float64Array, m: number, d: number): KernelSums {
  const k = (a: Float64Array, i: number, b: Float64Array, j: number) => {
    let t = 0;
    for (let c = 0; c < d; c++) t += a[i * d + c] * b[j * d + c];
    return (t / d + 1) ** 3;
  };
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (i !== j) {
        xx += k(x, i, x, j);
        yy += k(y, i, y, j);
      }
      xy += k(x, i, y, j);
    }
  }
  return { xx, yy, xy };
}

/** Unbiased MMD^2 from the kernel sums of subsets of m samples. */
export function mmd2Unbiased(s: KernelSums, m: number): number {
  return (s.xx + s.yy) / (m * (m - 1)) - (2 * s.xy) / (m * m);
}

export interface KidOptions {
  /** Default 100, as torch-fidelity. */
  subsets?: number;
  /** Default 1000, as torch-fidelity. */
  subsetSize?: number;
  /** Default 2020, torch-fidelity's rng_seed. */
  seed?: number;
  kernelSums?: KernelSumsFn;
}

function rowsOf(f: FeatureMatrix, index: ArrayLike<number>): Float64Array {
  const out = new Float64Array(index.length * f.d);
  for (let r = 0; r < index.length; r++) for (let c = 0; c < f.d; c++) out[r * f.d + c] = f.data[index[r] * f.d + c];
  return out;
}

/** KID mean and standard deviation over the subsets, and every subset's MMD^2. */
export async function kernelInceptionDistance(f1: FeatureMatrix, f2: FeatureMatrix, options: KidOptions = {}): Promise<{ mean: number; std: number; values: Float64Array }> {
  const { subsets = 100, subsetSize = 1000, seed = 2020, kernelSums = kernelSumsCpu } = options;
  if (f1.d !== f2.d) throw new Error(`KID: features of ${f1.d} and ${f2.d} dimensions`);
  if (f1.n < subsetSize || f2.n < subsetSize) {
    throw new Error(`KID subset size ${subsetSize} is larger than the number of samples (${f1.n} and ${f2.n}); lower --kid_subset_size`);
  }
  if (subsetSize < 2) throw new Error('KID subset size must be at least 2');
  const rng = new NumpyRandomState(seed);
  const values = new Float64Array(subsets);
  for (let s = 0; s < subsets; s++) {
    const x = rowsOf(f1, rng.choiceWithoutReplacement(f1.n, subsetSize));
    const y = rowsOf(f2, rng.choiceWithoutReplacement(f2.n, subsetSize));
    values[s] = mmd2Unbiased(await kernelSums(x, y, subsetSize, f1.d), subsetSize);
  }
  const mean = values.reduce((a, b) => a + b, 0) / subsets;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / subsets);
  return { mean, std, values };
}

/** KID with one subset that is the whole of both sets (equal sizes), no random draw. */
export async function kidWholeSets(f1: FeatureMatrix, f2: FeatureMatrix, kernelSums: KernelSumsFn = kernelSumsCpu): Promise<number> {
  if (f1.n !== f2.n || f1.d !== f2.d) throw new Error(`KID: sets of [${f1.n}, ${f1.d}] and [${f2.n}, ${f2.d}] features`);
  return mmd2Unbiased(await kernelSums(Float64Array.from(f1.data), Float64Array.from(f2.data), f1.n, f1.d), f1.n);
}
