// FID from shard moments (model/fid.ts featureMoments / addMoments / statisticsFromMoments): the
// float64 sums of N shards give the one-set statistics and the one-set FID (fidFromFeatures, which
// centres the features first) to 1e-9 relative, however the samples are split.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addMoments, featureMoments, featureStatistics, fidFromFeatures, frechetDistance, statisticsFromMoments } from '../../model/fid.ts';

/** Deterministic features: a uniform LCG, shifted by `offset` and mixed across dimensions so the covariance is full. */
function features(n: number, d: number, seed: number, offset: number): Float64Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let carry = 0;
    for (let j = 0; j < d; j++) {
      carry = 0.6 * carry + next();
      out[i * d + j] = Math.fround(offset + carry); // float32 values, as Inception features are
    }
  }
  return out;
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

for (const offset of [0, 3]) {
  test(`moments of 3 uneven shards = the whole set's statistics and FID (features offset ${offset})`, () => {
    const d = 6;
    const n = 61;
    const all = features(n, d, 7, offset);
    const real = features(80, d, 11, offset + 0.1);
    const cuts = [0, 9, 40, n];
    const shards = cuts.slice(1).map((end, k) => featureMoments({ data: all.subarray(cuts[k] * d, end * d), n: end - cuts[k], d }));
    const merged = statisticsFromMoments(addMoments(shards));
    const direct = featureStatistics({ data: all, n, d });
    for (let j = 0; j < d; j++) assert.ok(relErr(merged.mu[j], direct.mu[j]) < 1e-12, `mu[${j}]`);
    // covariance entries against the variances' scale (off-diagonal entries may be near zero)
    const scale = Math.max(...Array.from({ length: d }, (_, j) => direct.sigma[j * d + j]));
    for (let j = 0; j < d * d; j++) assert.ok(Math.abs(merged.sigma[j] - direct.sigma[j]) < 1e-12 * scale, `sigma[${j}]`);
    const one = fidFromFeatures({ data: real, n: 80, d }, { data: all, n, d });
    const fromShards = frechetDistance(featureStatistics({ data: real, n: 80, d }), merged);
    assert.ok(one > 0);
    assert.ok(relErr(fromShards, one) < 1e-9, `FID one set ${one}, from shards ${fromShards}`);
  });
}

test('addMoments refuses moments of different dimensions', () => {
  const a = featureMoments({ data: new Float64Array(4), n: 2, d: 2 });
  const b = featureMoments({ data: new Float64Array(6), n: 2, d: 3 });
  assert.throws(() => addMoments([a, b]), /moments of 3 and 2 features/);
});

test.run();
