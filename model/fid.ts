// Fréchet Inception Distance as torch-fidelity computes it, in float64 on the CPU:
//   FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2),
// mu the feature means, S the covariances with n - 1, and tr sqrt(S1 S2) the sum of the square
// roots of the eigenvalues of S1 S2. Those are real and non-negative: with S1 = L L^T they are the
// eigenvalues of the symmetric L^T S2 L (L from a pivoted Cholesky, so a singular S1 is fine). With
// fewer samples than features, S1 = A1^T A1 / (n1 - 1) (A1 the centred features) gives the small
// n1 x n1 matrix A1 S2 A1^T / (n1 - 1) instead. torch-fidelity takes numpy's general eigvals of
// S1 S2, whose round-off near zero eigenvalues we avoid (their square roots are clamped at 0).
import { pivotedCholesky, symmetricEigenvalues } from './symmetric-eigen.ts';

/** n feature vectors of d values, row-major. */
export interface FeatureMatrix {
  data: ArrayLike<number>;
  n: number;
  d: number;
}

export interface FeatureStatistics {
  /** [d] */
  mu: Float64Array;
  /** [d, d] row-major, normalised by n - 1 (np.cov). */
  sigma: Float64Array;
  d: number;
}

/** Centred features (float64) and their means. */
function centred(f: FeatureMatrix): { a: Float64Array; mu: Float64Array } {
  const { n, d, data } = f;
  if (data.length !== n * d) throw new Error(`features: ${data.length} values for ${n} x ${d}`);
  if (n < 2) throw new Error(`FID needs at least 2 samples, got ${n}`);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += data[i * d + j];
  for (let j = 0; j < d; j++) mu[j] /= n;
  const a = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) a[i * d + j] = data[i * d + j] - mu[j];
  return { a, mu };
}

/** a [rows, inner] times b^T (b [cols, inner]) -> [rows, cols], float64. */
function multiplyTransposed(a: Float64Array, b: Float64Array, rows: number, cols: number, inner: number, scale = 1): Float64Array {
  const c = new Float64Array(rows * cols);
  // 2 x 2 output blocks: four dot products share each pair of loaded rows
  for (let i = 0; i < rows; i += 2) {
    const i1 = Math.min(i + 1, rows - 1);
    for (let j = 0; j < cols; j += 2) {
      const j1 = Math.min(j + 1, cols - 1);
      let t00 = 0, t01 = 0, t10 = 0, t11 = 0;
      const a0 = i * inner, a1 = i1 * inner, c0 = j * inner, c1 = j1 * inner;
      for (let k = 0; k < inner; k++) {
        const x0 = a[a0 + k], x1 = a[a1 + k], y0 = b[c0 + k], y1 = b[c1 + k];
        t00 += x0 * y0; t01 += x0 * y1; t10 += x1 * y0; t11 += x1 * y1;
      }
      c[i * cols + j] = t00 * scale;
      c[i * cols + j1] = t01 * scale;
      c[i1 * cols + j] = t10 * scale;
      c[i1 * cols + j1] = t11 * scale;
    }
  }
  return c;
}

/** Transposes an r x c row-major matrix. */
function transpose(m: Float64Array, r: number, c: number): Float64Array {
  const t = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = m[i * c + j];
  return t;
}

/** out[i][j] += sum over rows r of a[r][i] a[r][j], for j >= i (the upper triangle of A^T A). */
function addUpperOuterProducts(out: Float64Array, a: ArrayLike<number>, n: number, d: number): void {
  // four samples per sweep: the d x d sum does not fit in cache, so each sweep's memory traffic is what costs
  for (let s = 0; s < n; s += 4) {
    const rows = Math.min(4, n - s);
    const [b0, b1, b2, b3] = [0, 1, 2, 3].map((r) => (s + Math.min(r, rows - 1)) * d);
    const w = [0, 1, 2, 3].map((r) => (r < rows ? 1 : 0));
    for (let i = 0; i < d; i++) {
      const x0 = a[b0 + i] * w[0];
      const x1 = a[b1 + i] * w[1];
      const x2 = a[b2 + i] * w[2];
      const x3 = a[b3 + i] * w[3];
      const row = i * d;
      for (let j = i; j < d; j++) out[row + j] += x0 * a[b0 + j] + x1 * a[b1 + j] + x2 * a[b2 + j] + x3 * a[b3 + j];
    }
  }
}

/** mu and sigma (np.mean(axis=0), np.cov(rowvar=False)) of the features. */
export function featureStatistics(f: FeatureMatrix): FeatureStatistics {
  const { a, mu } = centred(f);
  const { n, d } = f;
  const sigma = new Float64Array(d * d);
  addUpperOuterProducts(sigma, a, n, d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = sigma[i * d + j] / (n - 1);
      sigma[i * d + j] = v;
      sigma[j * d + i] = v;
    }
  }
  return { mu, sigma, d };
}

const sumOfRoots = (eigenvalues: Float64Array) => eigenvalues.reduce((t, v) => t + Math.sqrt(Math.max(v, 0)), 0);

/** tr sqrt(S1 S2) for symmetric positive semi-definite S1, S2 [d, d]. */
export function traceSqrtProduct(sigma1: Float64Array, sigma2: Float64Array, d: number): number {
  const { order, l, rank } = pivotedCholesky(Float64Array.from(sigma1), d);
  // In pivot order L is lower triangular: lt [rank, d] = L^T has row k zero before column k.
  const lt = transpose(l, d, d).subarray(0, rank * d);
  const s2 = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s2[i * d + j] = sigma2[order[i] * d + order[j]];
  // tt [rank, d] = (S2 L)^T: tt[k][i] = sum over j >= k of lt[k][j] s2[i][j]
  const tt = new Float64Array(rank * d);
  for (let k = 0; k < rank; k++) {
    const lk = k * d;
    for (let i = 0; i < d; i++) {
      const si = i * d;
      let t = 0;
      for (let j = k; j < d; j++) t += lt[lk + j] * s2[si + j];
      tt[lk + i] = t;
    }
  }
  // C = L^T S2 L, symmetric: C[k][m] = sum over i >= k of lt[k][i] tt[m][i], for m >= k
  const c = new Float64Array(rank * rank);
  for (let k = 0; k < rank; k++) {
    for (let m = k; m < rank; m++) {
      let t = 0;
      for (let i = k; i < d; i++) t += lt[k * d + i] * tt[m * d + i];
      c[k * rank + m] = t;
      c[m * rank + k] = t;
    }
  }
  return sumOfRoots(symmetricEigenvalues(c, rank));
}

/** FID from two sets of statistics. */
export function frechetDistance(s1: FeatureStatistics, s2: FeatureStatistics): number {
  if (s1.d !== s2.d) throw new Error(`FID: statistics of ${s1.d} and ${s2.d} features`);
  return meanAndTraceTerms(s1, s2) - 2 * traceSqrtProduct(s1.sigma, s2.sigma, s1.d);
}

function meanAndTraceTerms(s1: FeatureStatistics, s2: FeatureStatistics): number {
  const d = s1.d;
  let total = 0;
  for (let j = 0; j < d; j++) total += (s1.mu[j] - s2.mu[j]) ** 2 + s1.sigma[j * d + j] + s2.sigma[j * d + j];
  return total;
}

/** FID from two feature sets; with fewer samples than features it works in the samples' space. */
export function fidFromFeatures(f1: FeatureMatrix, f2: FeatureMatrix): number {
  if (f1.d !== f2.d) throw new Error(`FID: features of ${f1.d} and ${f2.d} dimensions`);
  const d = f1.d;
  if (Math.min(f1.n, f2.n) >= d) return frechetDistance(featureStatistics(f1), featureStatistics(f2));
  const [small, other] = f1.n <= f2.n ? [f1, f2] : [f2, f1];
  const s = featureStatistics(small);
  const o = featureStatistics(other);
  // tr sqrt(S_small S_other) = sum sqrt eig(A S_other A^T / (n - 1)), A [n, d] the centred features
  const { a } = centred(small);
  const as = multiplyTransposed(a, o.sigma, small.n, d, d); // A S_other (S symmetric): [n, d]
  const c = multiplyTransposed(as, a, small.n, small.n, d, 1 / (small.n - 1));
  return meanAndTraceTerms(s, o) - 2 * sumOfRoots(symmetricEigenvalues(c, small.n));
}

/**
 * What FID needs of a feature set in a form that adds up across shards: the count, the float64 sum
 * of the features and the sum of their outer products ([d, d], both triangles). Shards of one sample
 * list add to the moments of the whole list, whatever the split.
 */
export interface FeatureMoments {
  count: number;
  d: number;
  sum: Float64Array;
  outer: Float64Array;
}

export function featureMoments(f: FeatureMatrix): FeatureMoments {
  const { n, d, data } = f;
  if (data.length !== n * d) throw new Error(`features: ${data.length} values for ${n} x ${d}`);
  const sum = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sum[j] += data[i * d + j];
  const outer = new Float64Array(d * d);
  addUpperOuterProducts(outer, data, n, d);
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) outer[j * d + i] = outer[i * d + j];
  return { count: n, d, sum, outer };
}

/** The moments of the union of disjoint sample sets. */
export function addMoments(parts: readonly FeatureMoments[]): FeatureMoments {
  if (parts.length === 0) throw new Error('addMoments: no moments');
  const d = parts[0].d;
  const total: FeatureMoments = { count: 0, d, sum: new Float64Array(d), outer: new Float64Array(d * d) };
  for (const p of parts) {
    if (p.d !== d) throw new Error(`addMoments: moments of ${p.d} and ${d} features`);
    total.count += p.count;
    for (let j = 0; j < d; j++) total.sum[j] += p.sum[j];
    for (let j = 0; j < d * d; j++) total.outer[j] += p.outer[j];
  }
  return total;
}

/** mu and sigma from moments: sigma = (sum x x^T - n mu mu^T) / (n - 1), as np.cov. */
export function statisticsFromMoments(m: FeatureMoments): FeatureStatistics {
  const { count: n, d } = m;
  if (n < 2) throw new Error(`FID needs at least 2 samples, got ${n}`);
  const mu = m.sum.map((v) => v / n);
  const sigma = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) sigma[i * d + j] = (m.outer[i * d + j] - n * mu[i] * mu[j]) / (n - 1);
  return { mu, sigma, d };
}
