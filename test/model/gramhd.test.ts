import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { grad, nn, noGrad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { parseTorchPt } from '../../engine/io/torch-pt.ts';
import { Random } from '../../engine/nn/random.ts';
import { compareOutput, type GoldenCase } from '../../cli/verify/compare.ts';
import { goldenCameras } from '../../cli/verify/gram-case.ts';
import { goldenGramHDGenerator, gramhdCase, gramhdRows } from '../../cli/verify/gramhd-case.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { parseConfig } from '../../model/config.ts';
import { bgMap, GramHDGenerator } from '../../model/gramhd.ts';
import { goldenDir } from '../helpers/golden.ts';
import { assertClose } from '../helpers/reference.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const file = join(goldenDir, 'gramhd_small.safetensors');
const golden: GoldenCase = { name: 'gramhd_small', file, entry: manifest.gramhd_small, tensors: parseSafetensors(new Uint8Array(readFileSync(file)), file).tensors };
const z = () => Tensor.fromData(toFloat32(golden.tensors.get('in/z')!, 'in/z'), [2, 256]);

function printRows(rows: { output: string; relErr: number; allowed: number; pass: boolean }[]): void {
  for (const row of rows) {
    console.log(`  ${row.output.padEnd(28)} ${row.relErr.toExponential(2)} (allowed ${row.allowed.toExponential(2)})`);
    assert.ok(row.pass, `${row.output}: ${row.relErr} > ${row.allowed}`);
  }
}

test('gramhd_small: every output (safetensors weights) within its allowed error', async () => {
  const rows = await gramhdCase(golden);
  assert.equal(rows.map((r) => r.output).sort(), Object.keys(manifest.gramhd_small.outputs).sort());
  printRows(rows);
});

test('gramhd_small: the authors\' torch.save checkpoint (.pt) gives the same outputs', async () => {
  const pt = join(goldenDir, 'gramhd_small.pt');
  const state = new Map([...parseTorchPt(new Uint8Array(readFileSync(pt)), pt)].map(([key, t]) => [key, { shape: t.shape, data: toFloat32(t, key) }]));
  const generator = goldenGramHDGenerator(golden, state);
  try {
    printRows(await gramhdRows(golden, generator));
  } finally {
    generator.dispose();
  }
});

test('renderVisible gives the golden high-res image and depth, and the low-res image unless lowRes is false', async () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    const rows = await tidyAsync(async () => {
      const cameras = goldenCameras(golden);
      const full = await generator.renderVisible(z(), cameras);
      const highOnly = await generator.renderVisible(z(), cameras, { lowRes: false });
      const truncated = await generator.renderVisible(z(), cameras, { lowRes: false, truncationPsi: 0.7 });
      assert.ok(full.lrImage && !highOnly.lrImage);
      return [
        await compareOutput(golden, 'out/hr_image', full.image, 'forward'), await compareOutput(golden, 'out/lr_image', full.lrImage, 'forward'),
        await compareOutput(golden, 'out/hr_image', highOnly.image, 'forward'), await compareOutput(golden, 'out/hr_depth', highOnly.depth, 'forward'),
        await compareOutput(golden, 'out/hr_image_truncated_0.7', truncated.image, 'forward'),
      ];
    });
    printRows(rows);
  } finally {
    generator.dispose();
  }
});

test('state_dict keys and order are the authors\'', () => {
  const generator = new GramHDGenerator(parseConfig(manifest.gramhd_small.config), new Random(0));
  const authors = [...golden.tensors.keys()].filter((k) => k.startsWith('param/')).map((k) => k.slice('param/'.length));
  assert.equal([...generator.stateDict().keys()], authors);
  generator.dispose();
});

test('chunked rays, pixels and manifolds render the same image and textures', async () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    await tidyAsync(async () => {
      const cameras = goldenCameras(golden);
      const whole = noGrad(() => generator.forward(z(), cameras));
      const chunked = noGrad(() => generator.forward(z(), cameras, { chunkRays: 37, chunkPixels: 64 * 7, chunkManifolds: 3 }));
      assert.equal(chunked.hrRgbaParts.length, 2 * (3 + 1));
      assertClose(await chunked.image.toFloat32(), await whole.image.toFloat32(), 1e-6, 'image');
      assertClose(await chunked.depth.toFloat32(), await whole.depth.toFloat32(), 1e-6, 'depth');
      assertClose(await chunked.hrRgba!.toFloat32(), await whole.hrRgba!.toFloat32(), 1e-6, 'hr rgba');
    });
  } finally {
    generator.dispose();
  }
});

test('psi 0 renders every latent as the average one; locked view dependence changes the shading', async () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    await tidyAsync(async () => {
      // averages over 64 latents, filled for both mapping networks from the same z
      generator.computeTruncationAverage(new Random(3), 64);
      assert.equal(generator.super_resolution.avgStyle!.shape, [1, generator.super_resolution.styleDim]);
      const camera = cameraFromPose(Math.PI / 2 + 0.1, Math.PI / 2 - 0.2);
      const out = noGrad(() => generator.forward(z(), [camera, camera], { truncationPsi: 0 }));
      const image = await out.image.toFloat32();
      const half = image.length / 2;
      assertClose(image.subarray(half), image.subarray(0, half), 1e-6, 'element 1 vs element 0');
      const locked = noGrad(() => generator.forward(z(), [camera, camera], { truncationPsi: 0, lockViewDependence: true }));
      const lockedImage = await locked.image.toFloat32();
      assert.ok(lockedImage.every(Number.isFinite));
      assert.ok(lockedImage.some((v, i) => Math.abs(v - image[i]) > 1e-5), 'locking the view direction should change the view-dependent color');
    });
  } finally {
    generator.dispose();
  }
});

test('gradients reach the feature heads and both SR networks, not the frozen geometry', async () => {
  const generator = goldenGramHDGenerator(golden);
  const rf = generator.representation.rf_network;
  const styleMapping = generator.super_resolution.mapping_network.network.layers[0] as nn.Linear;
  const params = [rf.output_feature![6].weight, generator.super_resolution.conv_first.weight, styleMapping.weight, generator.super_resolution_bg.conv_last.weight];
  try {
    await tidyAsync(async () => {
      const cameras = goldenCameras(golden);
      const out = generator.forward(ops.narrow(z(), 0, 0, 1), cameras.slice(0, 1));
      const grads = grad(ops.mean(out.image), params);
      for (const [i, g] of grads.entries()) {
        const values = await g.toFloat32();
        assert.ok(values.every(Number.isFinite) && values.some((v) => v !== 0), `parameter ${i} gets a nonzero finite gradient`);
      }
    });
  } finally {
    generator.dispose();
  }
});

test('bg_map is piecewise: linear in the middle, tan-stretched outside, continuous at +-0.5', () => {
  assert.ok(Math.abs(bgMap(0.25) - 0.06) < 1e-12);
  assert.ok(Math.abs(bgMap(-0.5) + 0.12) < 1e-12 && Math.abs(bgMap(-0.5 - 1e-9) + 0.12) < 1e-8);
  assert.ok(Math.abs(bgMap(1) - (0.24 * Math.tan(0.5) + 0.12)) < 1e-12);
});

test.run();
