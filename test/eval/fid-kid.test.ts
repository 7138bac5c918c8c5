import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { featureStatistics, fidFromFeatures, frechetDistance, type FeatureMatrix } from '../../model/fid.ts';
import { kernelInceptionDistance, kernelSumsCpu, kidWholeSets, mmd2Unbiased } from '../../model/kid.ts';
import { NumpyRandomState } from '../../model/numpy-random.ts';
import { pivotedCholesky, symmetricEigenvalues } from '../../model/symmetric-eigen.ts';
import { goldenDir } from '../helpers/golden.ts';
import { randomArray } from '../helpers/reference.ts';

const evalDir = join(goldenDir, 'eval');
const manifest = JSON.parse(readFileSync(join(evalDir, 'manifest.json'), 'utf8'));
const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(evalDir, 'fid_kid.safetensors'))), 'fid_kid.safetensors');
const features = (name: string): FeatureMatrix => {
  const t = tensors.get(name)!;
  return { data: toFloat32(t, name), n: t.shape[0], d: t.shape[1] };
};
const scalar = (name: string) => toFloat32(tensors.get(name)!, name)[0];
const allowed = (name: string) => Math.max(100 * manifest.fid_kid.outputs[name].torch_f32_rel_err, 1e-4);

// ---- numpy's legacy RandomState ----
// Expected values printed by numpy 2.4.6 (legacy RandomState, unchanged since numpy 1.x):
//   r = np.random.RandomState(0); r.get_state()[1][:3]            -> [0, 1, 1812433255]
//   r = np.random.RandomState(0); r.randint(0, 2**32, 2, np.uint64) -> [2357136044, 2546248239]
//   r = np.random.RandomState(0); r.choice(10, 4, replace=False)  -> [2, 8, 4, 9]
//                                 then r.choice(2000, 5, replace=False) -> [1193, 1422, 1492, 1765, 1375]
//   np.random.RandomState(12345).permutation(7)                   -> [6, 3, 4, 0, 1, 5, 2]
//   r = np.random.RandomState(0); a = r.choice(1000, 1000, replace=False); b = r.choice(120, 100, replace=False)
//     a[:5] -> [993, 859, 298, 553, 672], a[-3:] -> [629, 559, 684], b[:5] -> [39, 9, 46, 91, 52]
// The seed's first state words follow init_genrand: mt[1] = 1812433253 * (mt[0] ^ mt[0] >> 30) + 1.
test('NumpyRandomState reproduces numpy RandomState outputs', () => {
  let r = new NumpyRandomState(0);
  assert.equal([r.nextUint32(), r.nextUint32()], [2357136044, 2546248239]);
  r = new NumpyRandomState(0);
  assert.equal([...r.choiceWithoutReplacement(10, 4)], [2, 8, 4, 9]);
  assert.equal([...r.choiceWithoutReplacement(2000, 5)], [1193, 1422, 1492, 1765, 1375]);
  assert.equal([...new NumpyRandomState(12345).permutation(7)], [6, 3, 4, 0, 1, 5, 2]);
  r = new NumpyRandomState(0);
  const a = r.choiceWithoutReplacement(1000, 1000);
  const b = r.choiceWithoutReplacement(120, 100);
  assert.equal([...a.slice(0, 5)], [993, 859, 298, 553, 672]);
  assert.equal([...a.slice(-3)], [629, 559, 684]);
  assert.equal([...b.slice(0, 5)], [39, 9, 46, 91, 52]);
  assert.equal([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.throws(() => r.choiceWithoutReplacement(3, 4), /larger sample/);
});

// ---- linear algebra ----
function randomSymmetric(n: number, seed: number, rank = n): Float64Array {
  const g = randomArray(n * rank, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let t = 0;
    for (let k = 0; k < rank; k++) t += g[i * rank + k] * g[j * rank + k];
    a[i * n + j] = t;
  }
  return a;
}

test('symmetricEigenvalues: trace and Frobenius norm are kept; known spectra', () => {
  for (const n of [1, 2, 3, 17, 64]) {
    const a = randomSymmetric(n, n);
    let trace = 0;
    let frob = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i];
    for (const v of a) frob += v * v;
    const ev = symmetricEigenvalues(Float64Array.from(a), n);
    assert.ok(Math.abs(ev.reduce((s, v) => s + v, 0) - trace) <= 1e-10 * Math.abs(trace), `trace n=${n}`);
    assert.ok(Math.abs(ev.reduce((s, v) => s + v * v, 0) - frob) <= 1e-10 * frob, `Frobenius n=${n}`);
  }
  // [[2, 1], [1, 2]] has eigenvalues 1 and 3; a diagonal matrix its diagonal
  assert.equal([...symmetricEigenvalues(Float64Array.from([2, 1, 1, 2]), 2)].map((v) => Math.round(v * 1e12) / 1e12).sort(), [1, 3]);
  assert.equal([...symmetricEigenvalues(Float64Array.from([5, 0, 0, 0, -1, 0, 0, 0, 2]), 3)].sort((x, y) => x - y), [-1, 2, 5]);
});

test('pivotedCholesky stops at the rank of a semi-definite matrix and reproduces it', () => {
  const n = 12;
  const a = randomSymmetric(n, 5, 4);
  const { order, l, rank } = pivotedCholesky(Float64Array.from(a), n);
  assert.is(rank, 4);
  let worst = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let t = 0;
    for (let k = 0; k < rank; k++) t += l[i * n + k] * l[j * n + k];
    worst = Math.max(worst, Math.abs(t - a[order[i] * n + order[j]]));
  }
  assert.ok(worst < 1e-12, `reconstruction error ${worst}`);
});

test('FID: the statistics route and the sample-space route agree; FID(x, x) = 0', () => {
  const d = 24;
  const f1 = { data: randomArray(30 * d, 1), n: 30, d };
  const f2 = { data: randomArray(40 * d, 2, -1, 2), n: 40, d };
  const viaStats = frechetDistance(featureStatistics(f1), featureStatistics(f2));
  // n >= d: fidFromFeatures uses the statistics; with 20 of the 30 rows it must use the samples
  assert.ok(Math.abs(fidFromFeatures(f1, f2) - viaStats) < 1e-12 * viaStats);
  const few = { data: f1.data.slice(0, 20 * d), n: 20, d };
  const a = fidFromFeatures(few, f2);
  const b = frechetDistance(featureStatistics(few), featureStatistics(f2));
  // the rank-deficient covariance leaves round-off pivots (~1e-16 of the largest) whose square roots
  // the statistics route sums: agreement to ~1e-9, not to the last bits
  assert.ok(Math.abs(a - b) < 1e-7 * b, `${a} vs ${b}`);
  assert.ok(Math.abs(fidFromFeatures(f1, f1)) < 1e-10);
});

test('golden: FID and KID of torch-fidelity, and the statistics', () => {
  for (const set of ['small', 'wide']) {
    const f1 = features(`in/features1_${set}`);
    const f2 = features(`in/features2_${set}`);
    const fid = fidFromFeatures(f1, f2);
    const fidTruth = scalar(`out/fid_${set}`);
    assert.ok(Math.abs(fid - fidTruth) / fidTruth <= allowed(`out/fid_${set}`), `fid ${set}: ${fid} vs ${fidTruth}`);
    const stats = featureStatistics(f1);
    const mu = toFloat32(tensors.get(`out/mu1_${set}`)!, 'mu');
    for (let j = 0; j < mu.length; j++) assert.ok(Math.abs(stats.mu[j] - mu[j]) <= 1e-5 * (1 + Math.abs(mu[j])), `mu ${set} ${j}`);
  }
  const sigma = toFloat32(tensors.get('out/sigma1_small')!, 'sigma');
  const stats = featureStatistics(features('in/features1_small'));
  for (let j = 0; j < sigma.length; j++) assert.ok(Math.abs(stats.sigma[j] - sigma[j]) <= 1e-5 * (1 + Math.abs(sigma[j])), `sigma ${j}`);
});

test('golden: KID with one subset (the whole set)', async () => {
  for (const set of ['small', 'wide']) {
    const kid = await kidWholeSets(features(`in/features1_${set}`), features(`in/features2_${set}`));
    const truth = scalar(`out/kid_${set}`);
    assert.ok(Math.abs(kid - truth) / Math.abs(truth) <= allowed(`out/kid_${set}`), `kid ${set}: ${kid} vs ${truth}`);
  }
});

test('KID over random subsets: each subset is RandomState(seed).choice of each set in turn', async () => {
  const f1 = features('in/features1_small');
  const f2 = features('in/features2_small');
  const { mean, std, values } = await kernelInceptionDistance(f1, f2, { subsets: 3, subsetSize: 50, seed: 7 });
  const rng = new NumpyRandomState(7);
  const rows = (f: FeatureMatrix, idx: Int32Array) => Float64Array.from({ length: idx.length * f.d }, (_, k) => f.data[idx[Math.floor(k / f.d)] * f.d + (k % f.d)]);
  for (let s = 0; s < 3; s++) {
    const x = rows(f1, rng.choiceWithoutReplacement(400, 50));
    const y = rows(f2, rng.choiceWithoutReplacement(400, 50));
    assert.is(values[s], mmd2Unbiased(kernelSumsCpu(x, y, 50, 64), 50));
  }
  assert.ok(Math.abs(mean - (values[0] + values[1] + values[2]) / 3) < 1e-12);
  assert.ok(std > 0);
  let error: unknown = null;
  await kernelInceptionDistance(f1, f2, { subsetSize: 401 }).catch((e) => (error = e));
  assert.match(String(error), /larger than the number of samples/);
});

test.run();
