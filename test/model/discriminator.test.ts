// GRAM's and GRAM-HD's discriminators: the golden disc_small case (outputs and R1 input gradients
// against the authors' float64 truth), the state-dict layout of the full-size configurations, the
// coordinate channels, and the second-order path R1 needs (d penalty / d weights against float32
// central finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { grad, nn, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { discCase, goldenDiscriminator } from '../../cli/verify/disc-case.ts';
import { goldenInput, type GoldenCase } from '../../cli/verify/compare.ts';
import { addCoords } from '../../model/discriminator/coord-conv.ts';
import { GramEncoderDiscriminator, GramEncoderPatchDiscriminator } from '../../model/discriminator/gram-encoder.ts';
import { r1Gradient } from '../../model/discriminator/r1.ts';
import { goldenDir } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const file = join(goldenDir, 'disc_small.safetensors');
const golden: GoldenCase = { name: 'disc_small', file, entry: manifest.disc_small, tensors: parseSafetensors(new Uint8Array(readFileSync(file)), file).tensors };

test('disc_small: every output and R1 gradient within its allowed error of the float64 truth', async () => {
  const rows = await discCase(golden);
  assert.equal(rows.map((r) => r.output).sort(), Object.keys(manifest.disc_small.outputs).sort());
  for (const row of rows) {
    console.log(`  ${row.output}: ${row.relErr.toExponential(2)} (allowed ${row.allowed.toExponential(2)})`);
    assert.ok(row.pass, `${row.output}: ${row.relErr.toExponential(2)} > ${row.allowed.toExponential(2)}`);
  }
});

test('disc_small: the state dict has the authors\' keys, in their order, with their shapes', () => {
  const d = new GramEncoderPatchDiscriminator(32, { maxChannels: 32, patchNdf: 8, patchLayers: 3 });
  const ours = [...d.stateDict()].map(([k, t]) => [k, t.shape]);
  const theirs = Object.entries(manifest.disc_small.tensors as Record<string, number[]>)
    .filter(([k]) => k.startsWith('param/')).map(([k, s]) => [k.slice('param/'.length), s]);
  assert.equal(ours, theirs);
  for (const p of d.parameters()) p.dispose();
});

test('full-size layouts: GRAMHD256 patch discriminator and GRAM64 encoder', () => {
  const shapes = (m: nn.Module) => new Map([...m.stateDict()].map(([k, t]) => [k, t.shape.join('x')]));
  const d256 = new GramEncoderPatchDiscriminator(256);
  const s256 = shapes(d256);
  // blocks i = 5..11: widths 32 64 128 256 400 400 400 400; the block 256 -> 400 projects its identity
  assert.is(d256.layers.length, 7);
  assert.is(s256.get('fromRGB.model.0.weight'), '32x3x1x1');
  assert.is(s256.get('layers.0.network.0.conv.weight'), '64x34x3x3');
  assert.is(s256.get('layers.0.proj.weight'), '64x32x1x1');
  assert.is(s256.get('layers.3.proj.weight'), '400x256x1x1');
  assert.not.ok(s256.has('layers.4.proj.weight'));
  assert.is(s256.get('layers.6.network.2.conv.weight'), '400x402x3x3');
  assert.is(s256.get('final_layer.weight'), '3x400x2x2');
  // PatchGAN: ndf min(64, 2^(14-8)) = 64, n = max(3, 8-6) = 3; middle convs without bias
  assert.equal([...s256].filter(([k]) => k.startsWith('patchgan')), [
    ['patchgan.model.0.weight', '64x3x4x4'], ['patchgan.model.0.bias', '64'],
    ['patchgan.model.2.weight', '128x64x4x4'], ['patchgan.model.5.weight', '256x128x4x4'],
    ['patchgan.model.8.weight', '512x256x4x4'], ['patchgan.model.11.weight', '1x512x4x4'], ['patchgan.model.11.bias', '1'],
  ]);
  const d64 = new GramEncoderDiscriminator(64);
  const s64 = shapes(d64);
  assert.is(d64.layers.length, 5);
  assert.is(s64.get('fromRGB.model.0.weight'), '128x3x1x1');
  assert.is(s64.get('layers.1.proj.weight'), '400x256x1x1');
  assert.not.ok([...s64.keys()].some((k) => k.startsWith('patchgan')));
  for (const p of [...d256.parameters(), ...d64.parameters()]) p.dispose();
});

test('addCoords appends the row coordinate, then the column coordinate, in [-1, 1]', async () => {
  await tidyAsync(async () => {
    const x = Tensor.fromData(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i), [2, 1, 3, 4]);
    const y = addCoords(x);
    assert.equal(y.shape, [2, 3, 3, 4]);
    const v = await y.toFloat32();
    const at = (n: number, c: number, i: number, j: number) => v[((n * 3 + c) * 3 + i) * 4 + j];
    for (let n = 0; n < 2; n++) for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) {
      assert.is(at(n, 0, i, j), n * 12 + i * 4 + j);
      assert.ok(Math.abs(at(n, 1, i, j) - (i / 2 * 2 - 1)) < 1e-7, 'row coordinate i / (H - 1) * 2 - 1');
      assert.ok(Math.abs(at(n, 2, i, j) - (j / 3 * 2 - 1)) < 1e-7, 'column coordinate j / (W - 1) * 2 - 1');
    }
  });
});

test('the plain encoder gives prediction [B, 1] and position [B, 2] and an R1 gradient of the image shape', async () => {
  await tidyAsync(async () => {
    const d = new GramEncoderDiscriminator(8, { maxChannels: 8, rng: new nn.Random(3) });
    const x = Tensor.fromData(Float32Array.from({ length: 3 * 3 * 64 }, (_, i) => Math.sin(i)), [3, 3, 8, 8]);
    x.requiresGrad = true;
    const out = d.forward(x);
    assert.equal(out.prediction.shape, [3, 1]);
    assert.equal(out.position.shape, [3, 2]);
    assert.equal(r1Gradient(out, x).shape, [3, 3, 8, 8]);
    assert.throws(() => r1Gradient(out, x, 0.1), /no patch output/);
    for (const p of d.parameters()) p.dispose();
  });
});

const PATCH_LAMBDA = 0.1;

/** GRAM-HD's R1 term with r1 = 1 and the patch head: 0.5 * mean_b |g_b|^2 with
 * g = d(sum_b D(x_b) + patch_lambda * sum_b mean_p Dp(x_b))/dx, differentiable in the weights. */
function r1Penalty(d: GramEncoderPatchDiscriminator, images: Tensor): Tensor {
  const g = r1Gradient(d.forward(images), images, PATCH_LAMBDA);
  return ops.mul(ops.mean(ops.sum(ops.square(ops.reshape(g, [g.shape[0], -1])), 1)), 0.5);
}

/** The same penalty for finite differences: g in float32 on the GPU, its squares summed on the host
 * in float64, so that the difference of two penalties is not lost to the rounding of a float32 sum
 * (the penalty's float32 ulp is ~1e-7 of it; the differences below are 2e-6 to 1e-5 of it). */
async function r1PenaltyValue(d: GramEncoderPatchDiscriminator, images: Tensor): Promise<number> {
  return tidyAsync(async () => {
    const g = await r1Gradient(d.forward(images), images, PATCH_LAMBDA).toFloat32();
    let s = 0;
    for (const v of g) s += v * v;
    return (0.5 * s) / images.shape[0];
  });
}

test('second order: d(R1 penalty)/d(weights) matches float32 central finite differences', async () => {
  const d = goldenDiscriminator(golden);
  const images = goldenInput(golden, 'in/image').keep();
  images.requiresGrad = true;
  const named = new Map(d.namedParameters());
  // weights only: the input gradient does not depend on a bias (LeakyReLU's derivative is piecewise
  // constant), so R1 gives biases no gradient, and grad() reports them as unused
  const keys = ['fromRGB.model.0.weight', 'layers.0.network.0.conv.weight', 'layers.3.network.0.conv.weight', 'layers.3.network.2.conv.weight',
    'final_layer.weight', 'patchgan.model.0.weight', 'patchgan.model.5.weight', 'patchgan.model.11.weight'];
  try {
    const analytic = await tidyAsync(async () => {
      const grads = grad(r1Penalty(d, images), keys.map((k) => named.get(k)!));
      return Promise.all(grads.map((g) => g.toFloat32()));
    });
    const p0 = await r1PenaltyValue(d, images);
    for (const [k, key] of keys.entries()) {
      const param = named.get(key)!;
      const values = await param.toFloat32();
      // the entry with the largest derivative, so that its signal dominates rounding
      let at = 0;
      analytic[k].forEach((v, i) => { if (Math.abs(v) > Math.abs(analytic[k][at])) at = i; });
      const exact = analytic[k][at];
      const central = async (h: number) => {
        const at_ = async (delta: number) => {
          const v = values.slice();
          v[at] += delta;
          nn.assign(param, v);
          return r1PenaltyValue(d, images);
        };
        return ((await at_(h)) - (await at_(-h))) / (2 * h);
      };
      // Steps that move the penalty by 1e-5, 4e-6, 2e-6 of itself, largest first, until one agrees:
      // each is well above the rounding of g (the smallest leaves ~1e-2 of noise), and the smaller
      // ones rarely move a pre-activation across LeakyReLU's kink, where the penalty (a function of
      // the slopes) jumps. A crossing spoils a step's difference; a wrong gradient spoils all three.
      const errors: string[] = [];
      let best = Infinity;
      for (const fraction of [1e-5, 4e-6, 2e-6]) {
        const step = (fraction * p0) / Math.abs(exact);
        const numeric = await central(step);
        const rel = Math.abs(numeric - exact) / Math.abs(exact);
        best = Math.min(best, rel);
        errors.push(`h ${step.toExponential(1)}: ${numeric.toExponential(4)} (rel ${rel.toExponential(1)})`);
        if (rel < 2e-2) break;
      }
      nn.assign(param, values);
      console.log(`  ${key}[${at}]: analytic ${exact.toExponential(4)}; numeric ${errors.join(', ')}`);
      assert.ok(best < 2e-2, `${key}[${at}]: analytic ${exact} vs numeric ${errors.join(', ')}`);
    }
  } finally {
    for (const p of d.parameters()) p.dispose();
    images.dispose();
  }
});

test.run();
