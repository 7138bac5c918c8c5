// `gramhd train --eval_interval`: FID of EMA samples against a real feature cache, every K steps, in
// log.jsonl; the step's FID equals `gramhd eval generate --truncation 1` on that step's checkpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFeatureCache } from '../../train/eval-features.ts';
import { repoRoot } from '../helpers/golden.ts';
import { hashedWeightsPt } from '../helpers/inception-weights.ts';
import { tinyConfig, writeDiscDataset } from './loop-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-train-eval-'));

function gramhd(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
}

test('train --eval_interval 2 logs a finite FID at steps 2 and 4, as eval generate computes it', async () => {
  const data = join(root, 'data');
  writeDiscDataset(data, 8, 16);
  const config = join(root, 'tiny.json');
  writeFileSync(config, JSON.stringify(tinyConfig()));
  const weights = join(root, 'weights.pth');
  writeFileSync(weights, hashedWeightsPt());
  // a made-up real cache: 2 feature rows
  const real = new Float32Array(2 * 2048).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  await writeFeatureCache(join(root, 'real.safetensors'), real, 'test');
  const out = join(root, 'run');
  const run = gramhd('train', '--config', config, '--data_dir', data, '--output_dir', out, '--total_step', '4', '--sample_interval', '100', '--save_interval', '4',
    '--eval_interval', '2', '--eval_samples', '2', '--eval_real_cache', join(root, 'real.safetensors'), '--inception_weights', weights);
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /step 2: FID \d/);
  const records = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(records.map((r) => r.step), [1, 2, 3, 4]);
  assert.equal(records.map((r) => 'FID' in r), [false, true, false, true]);
  for (const r of records.filter((r) => 'FID' in r)) assert.ok(Number.isFinite(r.FID), `FID ${r.FID}`);

  // the same samples from the saved checkpoint (its first EMA) through eval generate
  const gen = gramhd('eval', 'generate', '--ckpt', join(out, '4.safetensors'), '--num_samples', '2', '--truncation', '1', '--inception_weights', weights,
    '--tmp_dir', root, '--real_images_cache_name', 'real', '--use_real_images_cache', '--fake_images_cache_name', 'fake', '--kid_subsets', '1', '--kid_subset_size', '2', '--json');
  assert.is(gen.status, 0, gen.stderr);
  const fid = JSON.parse(gen.stdout.trim().split('\n').at(-1)!).frechet_inception_distance;
  assert.ok(Math.abs(fid - records[3].FID) <= 1e-4 * Math.abs(fid) + 1e-6, `eval generate ${fid} vs train ${records[3].FID}`);
});

test('train --eval_interval without a real cache is a one-line error', () => {
  const run = gramhd('train', '--config', 'GRAM64_FFHQ', '--data_dir', root, '--output_dir', join(root, 'x'), '--eval_interval', '2');
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /--eval_interval needs --eval_real_cache and --inception_weights/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
