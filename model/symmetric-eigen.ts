// Dense symmetric linear algebra in float64 on the CPU, as much as FID needs: the eigenvalues of a
// symmetric matrix (Householder reduction to tridiagonal form, then implicit QL with Wilkinson
// shifts; O(4/3 n^3), no eigenvectors) and a pivoted Cholesky factor of a positive semi-definite
// matrix (which stops at its numerical rank). Matrices are row-major Float64Arrays.

/** Eigenvalues of the symmetric n x n matrix `a` (destroyed; only its lower triangle is read),
 * unsorted. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new Error(`symmetricEigenvalues: ${a.length} values for a ${n} x ${n} matrix`);
  const { diagonal, offDiagonal } = tridiagonalize(a, n);
  return tridiagonalEigenvalues(diagonal, offDiagonal);
}

/** Householder reduction: a = Q T Q^T with T tridiagonal (diagonal d, e[i] couples i and i + 1). */
function tridiagonalize(a: Float64Array, n: number): { diagonal: Float64Array; offDiagonal: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1;
    let norm2 = 0;
    for (let i = s; i < n; i++) norm2 += a[i * n + k] ** 2;
    d[k] = a[k * n + k];
    if (norm2 === 0) {
      e[k] = 0;
      continue;
    }
    const x0 = a[s * n + k];
    const alpha = x0 > 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    e[k] = alpha;
    // H = I - beta v v^T maps the column below the diagonal onto alpha e_1
    for (let i = s; i < n; i++) v[i] = a[i * n + k];
    v[s] -= alpha;
    const vv = norm2 - x0 * x0 + v[s] * v[s];
    const beta = 2 / vv;
    // p = beta B v, q = p - (beta / 2)(v^T p) v, B <- B - v q^T - q v^T; B is read and written
    // through its lower triangle only (half the memory traffic of the full block)
    p.fill(0, s, n);
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      let t = a[row + i] * vi;
      for (let j = s; j < i; j++) {
        const aij = a[row + j];
        t += aij * v[j];
        p[j] += aij * vi;
      }
      p[i] += t;
    }
    let vp = 0;
    for (let i = s; i < n; i++) {
      p[i] *= beta;
      vp += v[i] * p[i];
    }
    const half = (beta / 2) * vp;
    for (let i = s; i < n; i++) p[i] -= half * v[i];
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      const qi = p[i];
      for (let j = s; j <= i; j++) a[row + j] -= vi * p[j] + qi * v[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + n - 2];
    e[n - 2] = a[(n - 1) * n + n - 2];
  }
  if (n >= 1) d[n - 1] = a[n * n - 1];
  e[n - 1] = 0;
  return { diagonal: d, offDiagonal: e };
}

/** Eigenvalues of the symmetric tridiagonal matrix (d, e) by implicit QL with Wilkinson shifts;
 * d and e are overwritten, d returned. */
function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  for (let l = 0; l < n; l++) {
    for (let iteration = 0; ; iteration++) {
      // find the first negligible off-diagonal element at or after l
      let m = l;
      for (; m < n - 1; m++) {
        if (Math.abs(e[m]) <= Number.EPSILON * (Math.abs(d[m]) + Math.abs(d[m + 1]))) break;
      }
      if (m === l) break;
      if (iteration === 100) throw new Error('symmetricEigenvalues: QL iteration did not converge');
      // shift: the eigenvalue of the leading 2 x 2 block closer to d[l]
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let deflated = false;
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // an exact split: restart on the smaller problem
          d[i + 1] -= p;
          e[m] = 0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (deflated) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d;
}

/**
 * Pivoted Cholesky of the positive semi-definite n x n matrix `a` (destroyed; only its lower
 * triangle is read): returns the permutation `order` and the n x rank factor `l` (row-major) with
 * a[order][:, order] = l l^T,
 * stopping once every remaining pivot is below n * eps * the largest diagonal value.
 */
export function pivotedCholesky(a: Float64Array, n: number): { order: Int32Array; l: Float64Array; rank: number } {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const l = new Float64Array(n * n);
  let maxDiagonal = 0;
  for (let i = 0; i < n; i++) maxDiagonal = Math.max(maxDiagonal, a[i * n + i]);
  const tolerance = n * Number.EPSILON * maxDiagonal;
  // index i of a and row i of l refer to original index order[i]; swaps keep them together
  const swapRows = (m: Float64Array, i: number, j: number, width: number) => {
    for (let c = 0; c < width; c++) {
      const t = m[i * n + c]; m[i * n + c] = m[j * n + c]; m[j * n + c] = t;
    }
  };
  const column = new Float64Array(n);
  let rank = 0;
  for (let k = 0; k < n; k++) {
    let pivot = k;
    for (let i = k + 1; i < n; i++) if (a[i * n + i] > a[pivot * n + pivot]) pivot = i;
    if (!(a[pivot * n + pivot] > tolerance)) break;
    if (pivot !== k) {
      // swap indices k and pivot of the trailing block, stored in its lower triangle
      const q = pivot;
      const swap = (x: number, y: number) => { const t = a[x]; a[x] = a[y]; a[y] = t; };
      swap(k * n + k, q * n + q);
      for (let j = k + 1; j < q; j++) swap(j * n + k, q * n + j);
      for (let j = q + 1; j < n; j++) swap(j * n + k, j * n + q);
      swapRows(l, k, q, k);
      const t = order[k]; order[k] = order[q]; order[q] = t;
    }
    const root = Math.sqrt(a[k * n + k]);
    column[k] = root;
    for (let i = k + 1; i < n; i++) column[i] = a[i * n + k] / root;
    for (let i = k; i < n; i++) l[i * n + k] = column[i];
    // Schur complement of the trailing block, lower triangle only
    for (let i = k + 1; i < n; i++) {
      const ci = column[i];
      if (ci === 0) continue;
      const row = i * n;
      for (let j = k + 1; j <= i; j++) a[row + j] -= ci * column[j];
    }
    rank = k + 1;
  }
  return { order, l, rank };
}
