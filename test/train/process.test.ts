// The training processes: the golden train_gram and train_gramhd steps (every loss term, clipped
// gradient and updated parameter against the authors' float64 truth), the loss functions on values
// worked by hand, and a step with latents and cameras drawn by the process itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { Random } from '../../engine/nn/random.ts';
import { goldenInput, type GoldenCase } from '../../cli/verify/compare.ts';
import { goldenTrainProcess, lastTrainTimings, trainCase } from '../../cli/verify/train-case.ts';
import type { GramHDGenerator } from '../../model/gramhd.ts';
import { consistencyLoss, dLogistic, gNonSaturating, poseLoss, r1Penalty } from '../../train/losses.ts';
import { GramProcess } from '../../train/gram-process.ts';
import { goldenDir } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
function golden(name: string): GoldenCase {
  const file = join(goldenDir, `${name}.safetensors`);
  return { name, file, entry: manifest[name], tensors: parseSafetensors(new Uint8Array(readFileSync(file)), file).tensors };
}

for (const name of ['train_gram', 'train_gramhd']) {
  test(`${name}: every loss, clipped gradient and updated parameter within its allowed error`, async () => {
    const rows = await trainCase(golden(name));
    assert.equal(rows.map((r) => r.output).sort(), Object.keys(manifest[name].outputs).sort());
    const worst = new Map<string, { output: string; relErr: number }>();
    for (const row of rows) {
      const group = row.output.split('/')[1];
      const prev = worst.get(group);
      if (!prev || row.relErr > prev.relErr) worst.set(group, row);
      assert.ok(row.pass, `${row.output}: ${row.relErr.toExponential(2)} > ${row.allowed.toExponential(2)}`);
    }
    for (const [group, row] of worst) console.log(`  ${name} worst ${group}: ${row.output} ${row.relErr.toExponential(2)}`);
    console.log(`  ${name}: D step ${lastTrainTimings.dStep.toFixed(2)} s, G step ${lastTrainTimings.gStep.toFixed(2)} s`);
  });
}

const scalar = async (t: Tensor) => t.item();

test('losses: hand-worked values', async () => {
  await tidyAsync(async () => {
    const real = Tensor.fromData([0, 2], [2, 1]);
    const fake = Tensor.fromData([0, -1], [2, 1]);
    const sp = (x: number) => Math.log1p(Math.exp(x));
    // softplus(fake).mean + softplus(-real).mean
    assert.ok(Math.abs(await scalar(dLogistic(real, fake)) - ((sp(0) + sp(-1)) / 2 + (sp(0) + sp(-2)) / 2)) < 1e-6);
    assert.ok(Math.abs(await scalar(gNonSaturating(fake)) - (sp(0) + sp(1)) / 2) < 1e-6);
    // per sample |g|^2 = 1+4 and 9 -> 0.5 * 2 * mean(5, 9) = 7
    const g = Tensor.fromData([1, 2, 0, 0, 0, 3, 0, 0], [2, 1, 2, 2]);
    assert.ok(Math.abs(await scalar(r1Penalty(g, 2)) - 7) < 1e-5);
    // ((1-0)^2 + (2-0)^2 + 0 + (3-1)^2) / 4 = 9 / 4
    assert.ok(Math.abs(await scalar(poseLoss(Tensor.fromData([1, 2, 0, 3], [2, 2]), Tensor.fromData([0, 0, 0, 1], [2, 2]))) - 2.25) < 1e-6);
    // a constant image downsamples to itself; the loss is the squared offset; pieces give the same mean
    const high = ops.full([3, 2, 8, 8], 0.5);
    const low = ops.full([3, 2, 4, 4], 0.25);
    assert.ok(Math.abs(await scalar(consistencyLoss(high, low, 2)) - 0.0625) < 1e-6);
    const pieces = [ops.narrow(high, 0, 0, 1), ops.narrow(high, 0, 1, 2)];
    assert.ok(Math.abs(await scalar(consistencyLoss(pieces, low, 2)) - 0.0625) < 1e-6);
  });
});

test('gramhd process: the representation is frozen but for its feature heads, which train; EMAs track only them', async () => {
  const process = goldenTrainProcess(golden('train_gramhd'));
  try {
    const g = process.generator as GramHDGenerator;
    for (const [key, p] of g.representation.namedParameters()) assert.is(p.requiresGrad, key.startsWith('rf_network.output_feature.'), key);
    const trainable = g.parameters().filter((p) => p.requiresGrad).length;
    assert.is(process.emas[0].stateDict().size - 2, trainable);
  } finally {
    process.dispose();
    process.generator.dispose();
    for (const p of process.discriminator.parameters()) p.dispose();
  }
});

test('gram process: a step with latents and cameras drawn from the RNG; Adam moves G, EMAs count updates', async () => {
  const base = goldenTrainProcess(golden('train_gram'));
  const process = new GramProcess(base.generator, base.discriminator, base.settings, { rng: new Random(7) });
  base.dispose();
  try {
    const g = golden('train_gram');
    const weight = process.generator.representation.sample_network.output_layer.weight;
    const before = await weight.toFloat32();
    const dLog = await process.dStep(goldenInput(g, 'in/real_images'), goldenInput(g, 'in/real_poses'));
    const gLog = await process.gStep(2);
    for (const v of [...Object.values(dLog), ...Object.values(gLog)]) assert.ok(Number.isFinite(v));
    assert.equal(Object.keys(dLog).sort(), ['Fake', 'Main', 'Pos', 'R1', 'Real', 'Total']);
    const after = await weight.toFloat32();
    assert.ok(after.some((v, i) => v !== before[i]), 'the generator step changed the weights');
    assert.is(process.emas.length, 2);
    assert.is(process.emas[1].numUpdates, 1);
    assert.ok(process.discriminator.parameters().every((p) => p.requiresGrad), 'the discriminator is unfrozen after the G step');
  } finally {
    process.dispose();
    process.generator.dispose();
    for (const p of process.discriminator.parameters()) p.dispose();
  }
});

test.run();
