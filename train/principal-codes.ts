// Initial latent codes for the reconstruction objective: each image's coordinates in the dataset's
// top principal subspace, whitened. Random codes carry nothing about their image, so the generator
// can only learn the mean image until every code has been visited and moved many times; principal
// coordinates give similar images similar codes from the first step (background, skin and hair
// colour, head size and place), and whitening gives them zero mean and identity covariance, the
// first two moments of the N(0, I) prior that fresh latents are drawn from.
//
// The subspace comes from randomised subspace iteration (Halko, Martinsson & Tropp 2011, algorithm
// 4.4): a random Gaussian basis multiplied by the covariance a few times, orthonormalised after
// each product. Float64 on the CPU; the costs are a few passes over the images.
import type { Random } from '../engine/nn/random.ts';

/** Images the basis is computed from at most (evenly strided); every image is projected. */
const BASIS_IMAGES = 2048;

/** Modified Gram-Schmidt on the k columns of the row-major d x k matrix v, in place. A column that
 * vanishes (the data has fewer than k directions) becomes zero. */
function orthonormalizeColumns(v: Float64Array, d: number, k: number): void {
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < j; i++) {
      let dot = 0;
      for (let r = 0; r < d; r++) dot += v[r * k + i] * v[r * k + j];
      for (let r = 0; r < d; r++) v[r * k + j] -= dot * v[r * k + i];
    }
    let norm = 0;
    for (let r = 0; r < d; r++) norm += v[r * k + j] ** 2;
    const scale = norm > 1e-24 ? 1 / Math.sqrt(norm) : 0;
    for (let r = 0; r < d; r++) v[r * k + j] *= scale;
  }
}

/**
 * `count` images of `dim` values each (row-major in `images`) -> `count` codes of `zDim` values
 * (row-major): the centred images projected onto a zDim-dimensional approximation of their top
 * principal subspace, then multiplied by the inverse Cholesky factor of the projections' covariance,
 * so that the codes have identity covariance over the dataset. Directions the data does not have
 * (fewer images than zDim) stay zero.
 */
export function principalCodes(images: Float32Array, count: number, dim: number, zDim: number, rng: Random, powerIterations = 4): Float32Array {
  if (images.length !== count * dim) throw new Error(`principalCodes: ${images.length} values for ${count} images of ${dim}`);
  const k = zDim;
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let r = 0; r < dim; r++) mean[r] += images[i * dim + r];
  for (let r = 0; r < dim; r++) mean[r] /= count;
  const stride = Math.max(1, Math.ceil(count / BASIS_IMAGES));
  const basisRows = Array.from({ length: Math.ceil(count / stride) }, (_, i) => i * stride);
  // centred rows of the images, times a d x k matrix: [rows, k]
  const project = (rows: readonly number[], v: Float64Array): Float64Array => {
    const out = new Float64Array(rows.length * k);
    const centred = new Float64Array(dim);
    rows.forEach((row, i) => {
      for (let r = 0; r < dim; r++) centred[r] = images[row * dim + r] - mean[r];
      for (let r = 0; r < dim; r++) {
        const x = centred[r];
        if (x === 0) continue;
        for (let j = 0; j < k; j++) out[i * k + j] += x * v[r * k + j];
      }
    });
    return out;
  };
  let v = Float64Array.from(rng.normalArray(dim * k));
  orthonormalizeColumns(v, dim, k);
  for (let it = 0; it < powerIterations; it++) {
    // v <- orth(X^T X v), X the centred basis images
    const w = project(basisRows, v);
    const next = new Float64Array(dim * k);
    basisRows.forEach((row, i) => {
      for (let r = 0; r < dim; r++) {
        const x = images[row * dim + r] - mean[r];
        for (let j = 0; j < k; j++) next[r * k + j] += x * w[i * k + j];
      }
    });
    orthonormalizeColumns(next, dim, k);
    v = next;
  }
  const all = Array.from({ length: count }, (_, i) => i);
  const p = project(all, v);
  // covariance of the projections (they are centred: the images were)
  const s = new Float64Array(k * k);
  for (let i = 0; i < count; i++) {
    for (let a = 0; a < k; a++) {
      const pa = p[i * k + a];
      for (let b = 0; b <= a; b++) s[a * k + b] += pa * p[i * k + b];
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b <= a; b++) s[a * k + b] /= count;
  // Cholesky s = L L^T; a direction without variance gets a zero column
  const l = new Float64Array(k * k);
  let trace = 0;
  for (let a = 0; a < k; a++) trace += s[a * k + a];
  const floor = 1e-12 * Math.max(trace, 1e-300);
  for (let j = 0; j < k; j++) {
    let diag = s[j * k + j];
    for (let m = 0; m < j; m++) diag -= l[j * k + m] ** 2;
    const ljj = diag > floor ? Math.sqrt(diag) : 0;
    l[j * k + j] = ljj;
    for (let i = j + 1; i < k; i++) {
      let sum = s[i * k + j];
      for (let m = 0; m < j; m++) sum -= l[i * k + m] * l[j * k + m];
      l[i * k + j] = ljj > 0 ? sum / ljj : 0;
    }
  }
  // code = L^{-1} p by forward substitution (zero where L has no pivot)
  const codes = new Float32Array(count * k);
  const c = new Float64Array(k);
  for (let i = 0; i < count; i++) {
    for (let a = 0; a < k; a++) {
      if (l[a * k + a] === 0) {
        c[a] = 0;
        continue;
      }
      let sum = p[i * k + a];
      for (let m = 0; m < a; m++) sum -= l[a * k + m] * c[m];
      c[a] = sum / l[a * k + a];
    }
    for (let a = 0; a < k; a++) codes[i * k + a] = c[a];
  }
  return codes;
}
