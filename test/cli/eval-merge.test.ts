// `gramhd eval generate --shard I/N` + `gramhd eval merge` against one unsharded `eval generate`:
// the merged feature cache is the one-run cache byte for byte, and FID/KID agree to 1e-9 relative.
// (The moments path of FID, used from 2048 samples on, is checked in test/eval/fid-merge.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FEATURE_DIM, writeFeatureCache } from '../../train/eval-features.ts';
import { launcherFreeEnv, repoRoot, writeGoldenGramSmall } from '../helpers/golden.ts';
import { hashedWeightsPt } from '../helpers/inception-weights.ts';

const workDir = mkdtempSync(join(tmpdir(), 'gramhd-eval-merge-'));
const { ckpt, config } = writeGoldenGramSmall(workDir);

// no launcher variables from the test's own environment (they would shard the one-run reference)
const cleanEnv = launcherFreeEnv();

function gramhd(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...cleanEnv, XDG_RUNTIME_DIR: '/tmp' } });
  assert.is(r.status, 0, `gramhd ${args.join(' ')}: ${r.stderr}`);
  return r;
}

test('eval generate in 2 shards + eval merge: the one-run cache and FID/KID to 1e-9', async () => {
  const weights = join(workDir, 'weights.pth');
  writeFileSync(weights, hashedWeightsPt());
  const tmp = join(workDir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const kid = ['--kid_subsets', '3', '--kid_subset_size', '2', '--json'];
  // untruncated: no per-seed truncation average to compute (the sharding does not depend on it)
  const gen = ['eval', 'generate', '--ckpt', ckpt, '--inception_weights', weights, '--tmp_dir', tmp, '--batch', '3', '--truncation', '1'];
  // the "real" side: arbitrary fixed features, written straight to a cache
  const real = new Float32Array(3 * FEATURE_DIM);
  for (let i = 0; i < real.length; i++) real[i] = Math.abs(Math.sin(i * 12.9898)) * 2;
  await writeFeatureCache(join(tmp, 'real.safetensors'), real, 'test features', 16);
  // 3 samples (InceptionV3 at 299x299 takes seconds an image on lavapipe), split 1 + 2
  const one = gramhd([...gen, '--num_samples', '3', '--fake_images_cache_name', 'whole', '--real_images_cache_name', 'real', '--use_real_images_cache', ...kid]);
  for (const shard of ['0/2', '1/2']) gramhd([...gen, '--num_samples', '3', '--fake_images_cache_name', 'sharded', '--shard', shard]);
  const merged = gramhd(['eval', 'merge', '--tmp_dir', tmp, '--fake_images_cache_name', 'sharded', '--real_images_cache_name', 'real', ...kid]);
  assert.match(merged.stderr, /merge: 2 shards, 3 samples/);
  const a = JSON.parse(one.stdout.trim().split('\n').at(-1)!);
  const b = JSON.parse(merged.stdout.trim().split('\n').at(-1)!);
  assert.is(b.num_samples, 3);
  assert.ok(a.frechet_inception_distance > 0, `FID ${a.frechet_inception_distance}`);
  for (const key of ['frechet_inception_distance', 'kernel_inception_distance_mean', 'kernel_inception_distance_std']) {
    assert.ok(Math.abs(a[key] - b[key]) <= 1e-9 * Math.abs(a[key]), `${key}: one run ${a[key]}, merged ${b[key]}`);
  }
  assert.ok(readFileSync(join(tmp, 'whole.safetensors')).equals(readFileSync(join(tmp, 'sharded.safetensors'))), 'merged cache differs from the one-run cache');
});

test('eval merge: a missing shard is one clear error', () => {
  const tmp = join(workDir, 'tmp');
  const r = spawnSync(process.execPath, ['bin/gramhd.js', 'eval', 'merge', join(tmp, 'sharded.shard-1-of-2.safetensors')], { cwd: repoRoot, encoding: 'utf8', env: { ...cleanEnv, XDG_RUNTIME_DIR: '/tmp' } });
  assert.is(r.status, 1);
  assert.match(r.stderr, /gramhd: shards: shard 0\/2 is missing/);
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
