// `gramhd eval consistency` end to end on the golden tiny generators (random weights, configurations
// from test/golden/manifest.json): both figures printed, --json parses, and a view against itself
// (--yaw 0) is perfectly consistent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from '../helpers/gpu.ts';
import { loadGenerator } from '../../cli/checkpoint.ts';
import { measureConsistency, type ConsistencyReport } from '../../cli/commands/eval-consistency.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

void gpu;
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-consistency-'));
const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const configFile = (name: string, overrides: Record<string, unknown>) => {
  const { note: _note, ...config } = manifest[name].config as Record<string, unknown>;
  const path = join(workDir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...config, ...overrides }));
  return path;
};
// GRAM at 16x16 (the baseline renders 8x8); GRAM-HD's 8x8 manifolds super-resolved x4 to 32x32
const gram = { ckpt: join(goldenDir, 'gram_small.pt'), config: configFile('gram_small', {}) };
const gramhd = { ckpt: join(goldenDir, 'gramhd_small.pt'), config: configFile('gramhd_small', { img_size: 32, lr_img_size: 8 }) };

function consistency(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', 'eval', 'consistency', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
}

test('GRAM: the table holds the generator\'s error and the half-size baseline\'s', () => {
  const run = consistency('--ckpt', gram.ckpt, '--config', gram.config, '--seeds', '0-1');
  assert.is(run.status, 0, run.stderr);
  const generator = /^generator 16x16 +(\d+\.\d{3}) +(\d+\.\d)%$/m.exec(run.stdout);
  const baseline = /^baseline: half-size render 8x8 upscaled bilinearly +(\d+\.\d{3}) +(\d+\.\d)%$/m.exec(run.stdout);
  assert.ok(generator && baseline, run.stdout);
  assert.ok(Number(generator![1]) > 0 && Number(baseline![1]) > 0, run.stdout);
  assert.ok(Number(generator![2]) > 0, run.stdout);
  assert.match(run.stdout, /2 seeds, truncation 0\.7, depth tolerance 0\.01/);
});

test('GRAM-HD --json: means, per-seed figures and the low-res baseline', () => {
  const run = consistency('--ckpt', gramhd.ckpt, '--config', gramhd.config, '--seeds', '3', '--yaw', '0.25', '--pitch', '0.1', '--json');
  assert.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout) as ConsistencyReport;
  assert.equal(report.baseline, { source: 'low-res render', size: 8 });
  assert.equal([report.imageSize, report.yaw, report.pitch, report.truncation, report.depthTolerance], [32, 0.25, 0.1, 0.7, 0.01]);
  assert.is(report.seeds.length, 1);
  assert.is(report.seeds[0].seed, 3);
  assert.ok(report.visibleFraction > 0 && report.visibleFraction <= 1, `${report.visibleFraction}`);
  assert.ok(report.error > 0 && report.error < 255 && report.baselineError > 0 && report.baselineError < 255, run.stdout);
  assert.is(report.error, report.seeds[0].error);
});

test('bad flags are one clear error', () => {
  const run = consistency('--ckpt', gram.ckpt, '--config', gram.config, '--depth_tolerance', '0');
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /--depth_tolerance must be positive/);
});

test('a view against itself (--yaw 0): no error, every pixel visible', async () => {
  const { model } = await loadGenerator(gram.ckpt, gram.config);
  try {
    const report = await measureConsistency(model, { seeds: [5], truncation: 0.7, yaw: 0, pitch: 0, depthTolerance: 0.01, perSeedAverage: true, checkpoint: gram.ckpt });
    assert.ok(report.error < 1e-3 && report.baselineError < 1e-3, `${report.error}, ${report.baselineError}`);
    assert.is(report.visibleFraction, 1);
  } finally {
    model.dispose();
  }
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
