// Principal codes: whitened (identity covariance, zero mean) and a linear function of the factors that
// generated the data, checked against float64 least squares on a low-rank dataset with noise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Random } from '../../engine/nn/random.ts';
import { principalCodes } from '../../train/principal-codes.ts';

/** Solves the normal equations (a^T a) x = a^T y for each column of y: a [n, k], y [n, m]. */
function leastSquaresResidual(a: Float64Array, y: Float64Array, n: number, k: number, m: number): number {
  const ata = new Float64Array(k * k);
  const aty = new Float64Array(k * m);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < k; p++) {
      for (let q = 0; q < k; q++) ata[p * k + q] += a[i * k + p] * a[i * k + q];
      for (let c = 0; c < m; c++) aty[p * m + c] += a[i * k + p] * y[i * m + c];
    }
  }
  // Gauss-Jordan on [ata | aty]
  for (let col = 0; col < k; col++) {
    let piv = col;
    for (let r = col + 1; r < k; r++) if (Math.abs(ata[r * k + col]) > Math.abs(ata[piv * k + col])) piv = r;
    for (let c = 0; c < k; c++) [ata[col * k + c], ata[piv * k + c]] = [ata[piv * k + c], ata[col * k + c]];
    for (let c = 0; c < m; c++) [aty[col * m + c], aty[piv * m + c]] = [aty[piv * m + c], aty[col * m + c]];
    for (let r = 0; r < k; r++) {
      if (r === col) continue;
      const f = ata[r * k + col] / ata[col * k + col];
      for (let c = 0; c < k; c++) ata[r * k + c] -= f * ata[col * k + c];
      for (let c = 0; c < m; c++) aty[r * m + c] -= f * aty[col * m + c];
    }
  }
  let res = 0;
  let tot = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < m; c++) {
      let fit = 0;
      for (let p = 0; p < k; p++) fit += a[i * k + p] * (aty[p * m + c] / ata[p * k + p]);
      res += (y[i * m + c] - fit) ** 2;
      tot += y[i * m + c] ** 2;
    }
  }
  return res / tot;
}

test('principal codes: identity covariance, and they recover the factors of a low-rank dataset', () => {
  const rng = new Random(7);
  const n = 300;
  const dim = 120;
  const factors = 3;
  const zDim = 6;
  // x = offset + A f + small noise, with f ~ N(0, diag(9, 4, 1))
  const a = rng.normalArray(dim * factors);
  const f = new Float64Array(n * factors);
  const images = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < factors; j++) f[i * factors + j] = rng.normal() * [3, 2, 1][j];
    for (let r = 0; r < dim; r++) {
      let v = 0.5 + 0.01 * rng.normal();
      for (let j = 0; j < factors; j++) v += a[r * factors + j] * f[i * factors + j];
      images[i * dim + r] = v;
    }
  }
  const codes = principalCodes(images, n, dim, zDim, new Random(1));
  // zero mean, identity covariance over the dataset
  for (let p = 0; p < zDim; p++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += codes[i * zDim + p];
    assert.ok(Math.abs(m / n) < 1e-5, `code ${p} mean ${m / n}`);
    for (let q = 0; q < zDim; q++) {
      let c = 0;
      for (let i = 0; i < n; i++) c += codes[i * zDim + p] * codes[i * zDim + q];
      assert.ok(Math.abs(c / n - (p === q ? 1 : 0)) < 1e-4, `covariance [${p}, ${q}] = ${c / n}`);
    }
  }
  // the codes (centred) determine the centred factors linearly, up to the noise
  for (let j = 0; j < factors; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += f[i * factors + j] / n;
    for (let i = 0; i < n; i++) f[i * factors + j] -= m;
  }
  const residual = leastSquaresResidual(Float64Array.from(codes), f, n, zDim, factors);
  assert.ok(residual < 1e-5, `factors from codes: relative residual ${residual}`);
});

test('principal codes: fewer images than code dimensions leave the missing directions at zero', () => {
  const rng = new Random(3);
  const n = 4;
  const dim = 10;
  const images = Float32Array.from(rng.normalArray(n * dim));
  const codes = principalCodes(images, n, dim, 8, new Random(2));
  // 4 centred images span 3 directions: 3 whitened dimensions, the other 5 zero
  let live = 0;
  for (let p = 0; p < 8; p++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += codes[i * 8 + p] ** 2;
    if (s / n > 0.5) live++;
    else assert.ok(s / n < 1e-6, `dimension ${p}: variance ${s / n}`);
  }
  assert.is(live, 3);
});

test.run();
