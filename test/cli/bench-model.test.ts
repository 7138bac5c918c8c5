// `gramhd bench model` on the golden gram_small configuration (16x16): the table, and --json with
// every GRAM stage present, positive stage times that sum to the total, a peak memory and FLOPs,
// and GRAM's render of the visible points only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRAM_STAGES } from '../../model/gram.ts';
import { GRAMHD_STAGES } from '../../model/gramhd.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-bench-model-'));
const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const { note: _note, ...config } = manifest.gram_small.config as Record<string, unknown>;
const configFile = join(root, 'gram_small.json');
writeFileSync(configFile, JSON.stringify(config));
const { note: _hdNote, ...hdConfig } = manifest.gramhd_small.config as Record<string, unknown>;

const bench = (...args: string[]) => spawnSync(process.execPath, ['bin/gramhd.js', 'bench', 'model', ...args],
  { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, timeout: 240_000 });

test('bench model --json on gram_small: every stage, times >= 0 summing to the positive total', () => {
  const run = bench('--config', configFile, '--runs', '3', '--img_size', '32', '--json');
  assert.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.is(report.generator, 'GramGenerator');
  assert.is(report.imgSize, 32);
  assert.is(report.runs, 3);
  assert.equal(report.stages.map((s: { stage: string }) => s.stage), [...GRAM_STAGES]);
  let sum = 0;
  // a stage's time is a difference of two noisy forward times, capped at 0 from below: on a loaded
  // machine a cheap stage can come out as 0, so only the whole forward must be positive
  for (const s of report.stages) {
    assert.ok(s.ms >= 0 && s.cpuMs >= 0, `${s.stage}: ${s.ms} ms, CPU ${s.cpuMs} ms`);
    assert.ok(s.calls >= 1, s.stage);
    sum += s.ms;
  }
  assert.ok(report.totalMs > 0 && sum > 0);
  assert.ok(Math.abs(sum - report.totalMs) <= 0.05 * report.totalMs + 0.5, `stages ${sum} ms vs total ${report.totalMs} ms`);
  assert.ok(report.peakInUseBytes > 0);
  const flops = Object.fromEntries(report.stages.map((s: { stage: string; gflop: number | null }) => [s.stage, s.gflop]));
  assert.ok(flops['sample network + intersection'] > 0 && flops.radiance > 0 && flops.mapping > 0);
  assert.is(flops.compositing, null);
  assert.match(run.stderr, /forward \d+\/\d+ \(whole\)/);
  // render's path: it shades at least every ray's background point (1 of the M points of a ray)
  const m = (config.renderer as { num_manifolds: number }).num_manifolds;
  assert.ok(report.visible.ms > 0, `visible render ${report.visible.ms} ms`);
  assert.is(report.visible.sparse, false, 'a 32x32 render of gram_small is too small to shade sparsely');
  assert.ok(report.visible.shadedFraction >= 1 / m && report.visible.shadedFraction <= 1, `shaded ${report.visible.shadedFraction}`);
});

test('bench model table with --img_size', () => {
  const run = bench('--config', configFile, '--img_size', '8');
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /^adapter: /);
  assert.match(run.stdout, /config: \(unnamed\) \(GramGenerator\), 8x8, batch 1/);
  for (const stage of GRAM_STAGES) assert.match(run.stdout, new RegExp(`^${stage.replace('+', '\\+')}\\s+\\d+\\s+-?\\d+\\.\\d`, 'm'), stage);
  assert.match(run.stdout, /^total\s+/m);
});

test('bench model on gramhd_small given as JSON text, --img_size 32: the GRAM-HD stages', () => {
  const run = bench('--config', JSON.stringify(hdConfig), '--img_size', '32', '--json');
  assert.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.is(report.generator, 'GramHDGenerator');
  assert.is(report.imgSize, 32);
  assert.is(report.lrImgSize, 16);
  assert.equal(report.stages.map((s: { stage: string }) => s.stage), [...GRAMHD_STAGES]);
  const sum = report.stages.reduce((a: number, s: { ms: number }) => a + s.ms, 0);
  assert.ok(Math.abs(sum - report.totalMs) <= 0.05 * report.totalMs + 0.5, `stages ${sum} ms vs total ${report.totalMs} ms`);
  assert.is(report.visible, null);
  const sr = report.stages.find((s: { stage: string }) => s.stage === 'SR (StyleRRDBNet)');
  assert.ok(sr.gflop > 0 && sr.peakBytes > 0);
});

test('bench model needs --config', () => {
  const run = bench();
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /bench model needs --config/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
