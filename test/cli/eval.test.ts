import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePng } from '../../train/image-io.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { fidFromFeatures } from '../../model/fid.ts';
import { kernelInceptionDistance } from '../../model/kid.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';
import { hashedWeightsPt } from '../helpers/inception-weights.ts';

function gramhd(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8' });
}

function writeImages(dir: string, count: number, size: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  for (let k = 0; k < count; k++) {
    const data = new Uint8Array(size * size * 3);
    for (let p = 0; p < data.length; p++) data[p] = (p * (7 + k) + seed * 31 + ((p / 3) | 0) * seed) % 256;
    writeFileSync(join(dir, `${String(k).padStart(5, '0')}.png`), encodePng({ width: size, height: size, data }));
  }
}

test('gramhd eval: features from a .pth, caches, FID and KID as the library computes them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gramhd-eval-'));
  try {
    const weights = join(dir, 'weights.pth');
    writeFileSync(weights, hashedWeightsPt());
    writeImages(join(dir, 'real'), 3, 40, 1);
    writeImages(join(dir, 'fake'), 3, 32, 2);
    const common = ['--tmp_dir', join(dir, 'tmp'), '--image_size', '32', '--num_samples', '3', '--kid_subsets', '2', '--kid_subset_size', '2', '--json'];
    const run = gramhd('eval', '--real_images_dir', join(dir, 'real'), '--fake_images_dir', join(dir, 'fake'), '--inception_weights', weights, ...common);
    assert.is(run.status, 0, run.stderr);
    const metrics = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    const cache = (name: string) => {
      const t = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'tmp', `${name}.safetensors`))), name).tensors.get('features/2048')!;
      assert.equal(t.shape, [3, 2048]);
      return { data: toFloat32(t, name), n: 3, d: 2048 };
    };
    const real = cache('real_images');
    const fake = cache('fake_images');
    assert.ok(Math.abs(metrics.frechet_inception_distance - fidFromFeatures(real, fake)) < 1e-9 * Math.abs(metrics.frechet_inception_distance));
    const kid = await kernelInceptionDistance(real, fake, { subsets: 2, subsetSize: 2 });
    assert.ok(Math.abs(metrics.kernel_inception_distance_mean - kid.mean) < 1e-4 * Math.abs(kid.mean) + 1e-6, `${metrics.kernel_inception_distance_mean} vs ${kid.mean}`);
    // from the caches: no weights and no images needed, the same numbers
    const cached = gramhd('eval', '--use_real_images_cache', '--use_fake_images_cache', ...common);
    assert.is(cached.status, 0, cached.stderr);
    assert.equal(JSON.parse(cached.stdout.trim().split('\n').at(-1)!), metrics);
    const table = gramhd('eval', '--use_real_images_cache', '--use_fake_images_cache', ...common.slice(0, -1));
    assert.match(table.stdout, /FID\s+\d+\.\d{4}\nKID\s+\S+ ± \S+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gramhd eval without weights or images says what is missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gramhd-eval-'));
  try {
    const run = gramhd('eval', '--real_images_dir', dir, '--fake_images_dir', dir, '--tmp_dir', dir, '--num_samples', '2', '--kid_subset_size', '2');
    assert.is.not(run.status, 0);
    assert.match(run.stderr, /--inception_weights PATH/);
    const noDir = gramhd('eval', '--tmp_dir', dir, '--num_samples', '2', '--kid_subset_size', '2', '--inception_weights', 'x.pth');
    assert.match(noDir.stderr, /--real_images_dir is required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gramhd verify runs the fid_kid case from the eval golden folder', () => {
  const run = gramhd('verify', '--golden', join(goldenDir, 'eval'), '--case', 'fid_kid');
  assert.is(run.status, 0, run.stderr + run.stdout);
  const rows = run.stdout.split('\n').filter((line) => line.startsWith('fid_kid '));
  assert.equal(rows.map((line) => line.split(/\s+/)[1]).sort(), Object.keys(JSON.parse(readFileSync(join(goldenDir, 'eval', 'manifest.json'), 'utf8')).fid_kid.outputs).sort());
  for (const row of rows) assert.is(row.split(/\s+/)[4], 'pass', row);
});

test.run();
