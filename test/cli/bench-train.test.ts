// `gramhd bench train` on a tiny configuration JSON file: it runs, prints steps/s and one row per
// stage of the D and G steps, and --json gives the same report as JSON.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_STAGES } from '../../cli/bench/train.ts';
import { repoRoot } from '../helpers/golden.ts';
import { tinyConfig } from '../train/loop-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-bench-train-'));
const configFile = join(root, 'tiny8.json');
{
  const c = tinyConfig({ hidden: 16 }) as Record<string, any>;
  c.img_size = 8;
  c.discriminator.img_size = 8;
  c.renderer.num_samples = 8;
  writeFileSync(configFile, JSON.stringify(c));
}

const bench = (...args: string[]) => spawnSync(process.execPath, ['bin/gramhd.js', 'bench', 'train', ...args],
  { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, timeout: 240_000 });

test('bench train on a tiny config file: steps/s and the stage table', () => {
  const run = bench('--config', configFile, '--steps', '1', '--warmup', '1', '--batch', '2');
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /config: tiny_gram, 8x8, batch 2 \(split 1\), 1 warm-up \+ 1 timed steps/);
  assert.match(run.stdout, /steps\/s: \d+\.\d+/);
  for (const stage of TRAIN_STAGES) assert.match(run.stdout, new RegExp(`^${stage.replace('+', '\\+')}\\s+\\d+\\.\\d\\s+\\d+\\.\\d$`, 'm'), stage);
  assert.match(run.stderr, /step 1 \(warm-up\)/);
});

test('bench train --json: the report with every stage, finite losses', () => {
  const run = bench('--config', configFile, '--steps', '1', '--warmup', '0', '--json');
  assert.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.is(report.batch, 4);
  assert.is(report.steps, 1);
  assert.ok(report.stepsPerSecond > 0);
  assert.equal(report.stages.map((r: { stage: string }) => r.stage), [...TRAIN_STAGES]);
  assert.ok(report.stages.every((r: { ms: number }) => r.ms >= 0));
  assert.ok(Number.isFinite(report.losses.d) && Number.isFinite(report.losses.g));
});

test('bench train needs --config; a bad --batch is one line', () => {
  let run = bench();
  assert.is(run.status, 1);
  assert.match(run.stderr, /bench train needs --config/);
  run = bench('--config', configFile, '--batch', '0');
  assert.is(run.status, 1);
  assert.match(run.stderr, /--batch must be an integer >= 1, got 0/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
