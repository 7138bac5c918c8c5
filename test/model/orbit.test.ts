// Real-time orbit (model/orbit.ts): the views of a bake are the full forward with locked view
// dependence, on the golden gramhd_small generator; the float16-rounded textures' error; the
// texture bytes of the named configurations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { allowedError, relativeError, type GoldenCase } from '../../cli/verify/compare.ts';
import { goldenGramHDGenerator } from '../../cli/verify/gramhd-case.ts';
import { goldenInput } from '../../cli/verify/compare.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { CONFIG_NAMES, configByName, isGramHD } from '../../model/config.ts';
import { bake, bakeBytes, roundedToF16, view } from '../../model/orbit.ts';
import { goldenDir } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const file = join(goldenDir, 'gramhd_small.safetensors');
const golden: GoldenCase = { name: 'gramhd_small', file, entry: manifest.gramhd_small, tensors: parseSafetensors(new Uint8Array(readFileSync(file)), file).tensors };
const front = Math.PI / 2;
// five views around the front: the video's yaw range, a pitch above and below
const cameras = [[0, -0.3], [0, 0], [0, 0.3], [0.2, -0.15], [-0.2, 0.25]].map(([pitch, yaw]) => cameraFromPose(front + pitch, front + yaw));

test('view(bake(z), camera) is the full forward with locked view dependence, for 5 cameras', async () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    await tidyAsync(async () => {
      for (const [element, psi] of [[0, 1], [1, 0.7]] as const) {
        const z = ops.narrow(goldenInput(golden, 'in/z'), 0, element, 1);
        const full = noGrad(() => generator.forward(ops.concat(Array<Tensor>(cameras.length).fill(z), 0), cameras, { lockViewDependence: true, truncationPsi: psi }));
        const baked = bake(generator, z, { truncationPsi: psi });
        try {
          const withLowRes = view(baked, cameras, { lowRes: true });
          const fast = view(baked, cameras);
          const rows: [string, Tensor | null, Tensor, string][] = [
            ['image', withLowRes.image, full.image, 'out/hr_image'],
            ['depth', withLowRes.depth, full.depth, 'out/hr_depth'],
            ['lr image', withLowRes.lrImage, full.lrImage, 'out/lr_image'],
            ['lr depth', withLowRes.lrDepth, full.lrDepth, 'out/lr_depth'],
            ['image (geometry-only view)', fast.image, full.image, 'out/hr_image'],
            ['depth (geometry-only view)', fast.depth, full.depth, 'out/hr_depth'],
          ];
          assert.is(fast.lrImage, null);
          for (const [what, ours, truth, output] of rows) {
            assert.equal(ours!.shape, truth.shape, what);
            const err = relativeError(await ours!.toFloat32(), await truth.toFloat32());
            const allowed = allowedError(golden, output, 'forward');
            console.log(`  z${element} psi ${psi} ${what.padEnd(27)} ${err.toExponential(2)} (allowed ${allowed.toExponential(2)})`);
            assert.ok(err <= allowed, `${what}: ${err} > ${allowed}`);
          }
          // the textures are the forward's, one latent's worth
          const hr = await full.hrRgbaParts[0].toFloat32();
          assert.ok(relativeError(await baked.textures.manifolds[0].toFloat32(), hr.subarray(0, baked.textures.manifolds[0].size)) <= 1e-6);

          // float16-rounded textures: the error an rgba16float texture would cost
          const half = roundedToF16(baked);
          try {
            const image = view(half, cameras).image;
            const err = relativeError(await image.toFloat32(), await fast.image.toFloat32());
            console.log(`  z${element} psi ${psi} f16-rounded textures: image rel. error ${err.toExponential(2)} vs float32 textures`);
            assert.ok(err > 0 && err < 2e-3, `f16 error ${err}`);
          } finally {
            half.dispose();
          }
        } finally {
          baked.dispose();
        }
      }
    });
  } finally {
    generator.dispose();
  }
});

test('the fused high-res kernel renders what the op-level reference renders', async () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    await tidyAsync(async () => {
      const baked = bake(generator, ops.narrow(goldenInput(golden, 'in/z'), 0, 1, 1), { truncationPsi: 0.7 });
      try {
        const fused = view(baked, cameras, { impl: 'fused' });
        const reference = view(baked, cameras, { impl: 'reference' });
        const image = relativeError(await fused.image.toFloat32(), await reference.image.toFloat32());
        const depth = relativeError(await fused.depth.toFloat32(), await reference.depth.toFloat32());
        console.log(`  fused vs reference: image ${image.toExponential(2)}, depth ${depth.toExponential(2)}`);
        // the kernel repeats the reference's arithmetic step by step
        assert.ok(image <= 1e-6 && depth <= 1e-6, `image ${image}, depth ${depth}`);
        // textures in 3 pieces (3 + 3 + 1 levels, as at 1024 on small adapters) and in 4 (beyond
        // the kernel's bindings: the reference renders)
        for (const chunkManifolds of [3, 2]) {
          const pieces = bake(generator, ops.narrow(goldenInput(golden, 'in/z'), 0, 1, 1), { truncationPsi: 0.7, chunkManifolds });
          try {
            assert.is(pieces.textures.manifolds.length, Math.ceil(7 / chunkManifolds));
            const err = relativeError(await view(pieces, cameras, { impl: 'fused' }).image.toFloat32(), await reference.image.toFloat32());
            assert.ok(err <= 1e-6, `${pieces.textures.manifolds.length} pieces: ${err}`);
          } finally {
            pieces.dispose();
          }
        }
      } finally {
        baked.dispose();
      }
    });
  } finally {
    generator.dispose();
  }
});

test('bake: one latent; a disposed bake frees its textures', () => {
  const generator = goldenGramHDGenerator(golden);
  try {
    assert.throws(() => bake(generator, goldenInput(golden, 'in/z')), /one latent \[1, 256\]/);
    const baked = bake(generator, ops.narrow(goldenInput(golden, 'in/z'), 0, 0, 1));
    assert.equal(baked.textures.manifolds.reduce((n, t) => n + t.shape[0], 0), 7);
    assert.equal(baked.textures.background.shape, [1, 3, 64, 64]);
    baked.dispose();
    assert.ok(baked.textures.background.isDisposed && baked.textures.manifolds.every((t) => t.isDisposed) && baked.codes.frequencies.isDisposed);
  } finally {
    generator.dispose();
  }
});

test('texture bytes per latent for the named GRAM-HD configurations', () => {
  for (const name of CONFIG_NAMES) {
    const config = configByName(name);
    if (!isGramHD(config)) continue;
    const bytes = bakeBytes(config);
    console.log(`  ${name.padEnd(16)} float32 ${(bytes.float32 / 2 ** 20).toFixed(1)} MiB, rgba16float ${(bytes.rgba16float / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(bytes.rgba16float < bytes.float32);
  }
  const hd256 = bakeBytes(configByName('GRAMHD256_FFHQ') as never);
  // 23 manifolds x 4 channels + 3 background channels, 256^2 float32 values
  assert.is(hd256.float32, 95 * 65536 * 4);
  assert.is(hd256.rgba16float, 24 * 4 * 65536 * 2);
});

test.run();
