// The evaluation golden cases (test/golden/eval/README.md), which live in DIR/eval/manifest.json:
//   inception  torch-fidelity's InceptionV3 with the counter-hash weights, every feature layer of
//              two image batches (64 x 64 and 128 x 128, both resized to 299).
//   fid_kid    FID and KID (one subset, the whole set) of two pairs of feature sets, and the
//              statistics of the first set.
import { tidyAsync } from '../../engine/index.ts';
import { fidFromFeatures, featureStatistics, type FeatureMatrix } from '../../model/fid.ts';
import { hashedInceptionState } from '../../model/inception-hash-weights.ts';
import { INCEPTION_FEATURES, InceptionV3 } from '../../model/inception.ts';
import { kidWholeSets } from '../../model/kid.ts';
import { allowedError, compareOutput, goldenInput, goldenTensor, relativeError, type CaseRunner, type GoldenCase, type VerifyRow } from './compare.ts';

export async function inceptionCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const net = InceptionV3.fromStateDict(hashedInceptionState());
  try {
    const rows: VerifyRow[] = [];
    for (const set of ['a', 'b']) {
      rows.push(...await tidyAsync(async () => {
        const features = net.forward(goldenInput(golden, `in/images_${set}`));
        const out: VerifyRow[] = [];
        for (const layer of INCEPTION_FEATURES) out.push(await compareOutput(golden, `out/features_${set}/${layer}`, features[layer], 'forward'));
        return out;
      }));
    }
    return rows;
  } finally {
    net.dispose();
  }
}

function hostRow(golden: GoldenCase, output: string, ours: ArrayLike<number>): VerifyRow {
  const truth = goldenTensor(golden, output);
  if (truth.data.length !== ours.length) throw new Error(`${golden.name} ${output}: computed ${ours.length} values, golden ${truth.data.length}`);
  const relErr = relativeError(ours, truth.data);
  const allowed = allowedError(golden, output, 'forward');
  return { output, relErr, allowed, pass: relErr <= allowed };
}

export async function fidKidCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const features = (name: string): FeatureMatrix => {
    const { shape, data } = goldenTensor(golden, name);
    return { data, n: shape[0], d: shape[1] };
  };
  const rows: VerifyRow[] = [];
  for (const set of ['small', 'wide']) {
    const f1 = features(`in/features1_${set}`);
    const f2 = features(`in/features2_${set}`);
    const outputs = golden.entry.outputs;
    if (`out/mu1_${set}` in outputs || `out/sigma1_${set}` in outputs) {
      const stats = featureStatistics(f1);
      if (`out/mu1_${set}` in outputs) rows.push(hostRow(golden, `out/mu1_${set}`, stats.mu));
      if (`out/sigma1_${set}` in outputs) rows.push(hostRow(golden, `out/sigma1_${set}`, stats.sigma));
    }
    rows.push(hostRow(golden, `out/fid_${set}`, [fidFromFeatures(f1, f2)]));
    rows.push(hostRow(golden, `out/kid_${set}`, [await kidWholeSets(f1, f2)]));
  }
  return rows;
}

export const evalCases: ReadonlyMap<string, CaseRunner> = new Map([
  ['inception', inceptionCase],
  ['fid_kid', fidKidCase],
]);

