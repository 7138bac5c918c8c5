// `gramhd eval generate` against the PNG path: the golden gram_small generator (16x16) rendered with
// `render --type rand` to PNGs and read by `gramhd eval`, versus the same seeds generated straight
// into Inception features on the GPU. Same images, so the same features.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { repoRoot, writeGoldenGramSmall } from '../helpers/golden.ts';
import { hashedWeightsPt } from '../helpers/inception-weights.ts';

const workDir = mkdtempSync(join(tmpdir(), 'gramhd-eval-generate-'));
const { ckpt, config } = writeGoldenGramSmall(workDir);
const weights = join(workDir, 'weights.pth');
writeFileSync(weights, hashedWeightsPt());

function gramhd(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
}

function cache(name: string): Float32Array {
  const t = parseSafetensors(new Uint8Array(readFileSync(join(workDir, 'tmp', `${name}.safetensors`))), name).tensors.get('features/2048')!;
  assert.equal(t.shape, [3, 2048]);
  return toFloat32(t, name);
}

test('eval generate: the features of render --type rand\'s PNGs, without the PNGs', () => {
  const pngs = join(workDir, 'rand');
  const render = gramhd('render', '--ckpt', ckpt, '--output_dir', pngs, '--seeds', '0-2', '--type', 'rand');
  assert.is(render.status, 0, render.stderr);
  const common = ['--tmp_dir', join(workDir, 'tmp'), '--num_samples', '3', '--kid_subsets', '2', '--kid_subset_size', '2', '--json', '--inception_weights', weights];
  // the PNG path, its features cached as 'png' (the generated cache doubles as its "real" side)
  const evalPng = gramhd('eval', '--real_images_dir', pngs, '--real_images_cache_name', 'png_real', '--fake_images_dir', pngs, '--fake_images_cache_name', 'png', '--image_size', '16', ...common);
  assert.is(evalPng.status, 0, evalPng.stderr);
  // the generate path, with FID/KID against the PNG features: the same images, FID ~ 0
  const gen = gramhd('eval', 'generate', '--ckpt', ckpt, '--fake_images_cache_name', 'gen', '--real_images_cache_name', 'png', '--use_real_images_cache', '--batch', '2', ...common);
  assert.is(gen.status, 0, gen.stderr);
  assert.match(gen.stderr, /generate: 3 images of 16x16 \(truncation 0\.7\) to features in [\d.]+ s, [\d.]+ images\/s/);
  const png = cache('png');
  const generated = cache('gen');
  let num = 0;
  let den = 0;
  for (let i = 0; i < png.length; i++) {
    num += (png[i] - generated[i]) ** 2;
    den += png[i] ** 2;
  }
  assert.ok(den > 0);
  assert.ok(Math.sqrt(num / den) < 1e-4, `relative difference ${Math.sqrt(num / den)}`);
  const metrics = JSON.parse(gen.stdout.trim().split('\n').at(-1)!);
  assert.is(metrics.num_samples, 3);
  assert.ok(Number.isFinite(metrics.frechet_inception_distance) && Math.abs(metrics.frechet_inception_distance) < 1e-2, `FID ${metrics.frechet_inception_distance}`);
});

test('eval --help and eval generate --help both work', () => {
  const help = gramhd('eval', '--help');
  assert.is(help.status, 0, help.stderr);
  assert.match(help.stdout, /gramhd eval generate/);
  assert.match(help.stdout, /--fake_images_dir/);
  const genHelp = gramhd('eval', 'generate', '--help');
  assert.is(genHelp.status, 0, genHelp.stderr);
  assert.match(genHelp.stdout, /--ckpt/);
  assert.match(genHelp.stdout, /--truncation[\s\S]*default: 0\.7/);
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
