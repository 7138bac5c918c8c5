// `gramhd render` of fixed views bakes each seed once (model/orbit.ts) and renders its frames from
// the bake: on the golden gramhd_small weights (8x8 manifolds super-resolved x4 to 32x32), the video's
// frames written as PNGs equal full forwards of the same seed, latent and truncation average.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from '../helpers/gpu.ts';
import { noGrad, Tensor, tidy } from '../../engine/index.ts';
import { loadGenerator } from '../../cli/checkpoint.ts';
import { fixedViews } from '../../cli/commands/render.ts';
import { decodePng, imageToRgb8 } from '../../train/image-io.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { TorchGenerator } from '../../model/torch-random.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

void gpu;
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-render-orbit-'));
const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const { note: _note, ...hd } = manifest.gramhd_small.config as Record<string, unknown>;
const hdConfig = join(workDir, 'gramhd_small_8px.json');
writeFileSync(hdConfig, JSON.stringify({ ...hd, img_size: 32, lr_img_size: 8 }));
const ckpt = join(goldenDir, 'gramhd_small.pt');

const maxDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('GRAM-HD --type video from the bake: frames equal per-frame full forwards', async () => {
  const out = join(workDir, 'video');
  const run = spawnSync(process.execPath, ['bin/gramhd.js', 'render', '--ckpt', ckpt, '--config', hdConfig, '--output_dir', out,
    '--seeds', '4', '--type', 'video', '--format', 'png', '--batch', '20'], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  assert.is(run.status, 0, run.stderr);
  assert.is(readdirSync(out).length, 120, 'grid_4_<frame>.png and grid_4_<frame>_lr.png for 60 frames');

  const { model } = await loadGenerator(ckpt, hdConfig);
  try {
    const g = new TorchGenerator(4);
    const z = g.randn(256);
    const average = g.randn(10000 * 256);
    tidy(() => noGrad(() => model.computeAverage(Tensor.fromData(average, [10000, 256]))));
    const { poses } = fixedViews('video');
    for (const frame of [0, 7, 30, 52]) {
      const camera = cameraFromPose(poses[frame][0], poses[frame][1]);
      const full = tidy(() => noGrad(() => model.render(Tensor.fromData(z, [1, 256]), [camera], { truncationPsi: 0.7, lockViewDependence: true })));
      const [image, lrImage] = await Promise.all([full.image.toFloat32(), full.lrImage!.toFloat32()]);
      const expected = imageToRgb8(image, full.image.shape, 0, true);
      const expectedLr = imageToRgb8(lrImage, full.lrImage!.shape, 0, false);
      full.image.dispose();
      full.depth.dispose();
      full.lrImage!.dispose();
      const written = decodePng(new Uint8Array(readFileSync(join(out, `grid_4_${frame}.png`))));
      const writtenLr = decodePng(new Uint8Array(readFileSync(join(out, `grid_4_${frame}_lr.png`))));
      assert.equal([written.width, written.height, writtenLr.width], [32, 32, 8]);
      assert.ok(maxDiff(written.data, expected.data) <= 1, `frame ${frame}: ${maxDiff(written.data, expected.data)}/255 from the full forward`);
      assert.ok(maxDiff(writtenLr.data, expectedLr.data) <= 1, `frame ${frame} (low-res): ${maxDiff(writtenLr.data, expectedLr.data)}/255`);
    }
  } finally {
    model.dispose();
  }
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
