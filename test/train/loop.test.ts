// The training loop: a real training signal on a tiny GRAM and a tiny disc dataset, exact
// resumption in a fresh process, a NaN stopping the run with the last checkpoint intact, and
// one-line errors for bad input. Sizes are tiny: lavapipe is slow.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../model/config.ts';
import { checkpointSteps, lossCurvesSvg, NonFiniteLossError, readCheckpoint, train } from '../../train/loop.ts';
import { tinyConfig, writeDiscDataset } from './loop-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-loop-'));
const data = join(root, 'data');
writeDiscDataset(data, 16, 16);
const configFile = join(root, 'tiny.json');
writeFileSync(configFile, JSON.stringify(tinyConfig()));

type Row = Record<string, number>;
const readLog = (dir: string): Row[] => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (rows: Row[], key: string) => rows.reduce((s, r) => s + r[key], 0) / rows.length;
const quiet = () => {};

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/gramhd.js', 'train', ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env },
    timeout: 240_000,
  });
  return { status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? '' };
}

/** The gramhd: error line(s) of a failed run (Dawn's adapter warnings filtered out). */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('gramhd:'));

test('a real training signal: D separates real from fake, then the generator loss responds', async () => {
  const out = join(root, 'signal');
  const steps = 50;
  const result = await train({
    config: parseConfig(tinyConfig({ discLr: 1e-3 })), dataDir: data, outputDir: out, totalStep: steps,
    sampleInterval: 25, saveInterval: 50, averageCount: 1000, progress: false, log: quiet,
  });
  const rows = readLog(out);
  assert.is(rows.length, steps);
  assert.equal(rows.map((r) => r.step), Array.from({ length: steps }, (_, i) => i + 1));
  for (const key of ['D_Total', 'D_Main', 'D_R1', 'D_Pos', 'G_Total', 'G_Main', 'G_Pos', 'steps_per_s']) assert.ok(rows.every((r) => Number.isFinite(r[key])), key);
  const first = rows.slice(0, 10);
  const last = rows.slice(-15);
  const dFirst = mean(first, 'D_Main');
  const dLast = mean(last, 'D_Main');
  const gFirst = mean(first, 'G_Main');
  const gLast = mean(last, 'G_Main');
  console.log(`  loop: D_Main ${dFirst.toFixed(3)} -> ${dLast.toFixed(3)}, G_Main ${gFirst.toFixed(3)} -> ${gLast.toFixed(3)}, ` +
    `D_Pos ${mean(first, 'D_Pos').toFixed(2)} -> ${mean(last, 'D_Pos').toFixed(2)}, ${result.stepsPerSecond.toFixed(2)} steps/s`);
  // at the start D cannot tell: softplus(0) twice = 2 ln 2; it learns to separate (loss falls) ...
  assert.ok(Math.abs(dFirst - 2 * Math.LN2) < 0.15, `D starts near 2 ln 2, got ${dFirst}`);
  assert.ok(dLast < dFirst - 0.1, `D_Main fell: ${dFirst} -> ${dLast}`);
  // ... so the fakes are judged fake and the generator's non-saturating loss rises above ln 2
  assert.ok(gLast > gFirst + 0.05, `G_Main rose: ${gFirst} -> ${gLast}`);
  // the pose heads learn the poses too
  assert.ok(mean(last, 'D_Pos') < mean(first, 'D_Pos') * 0.5, 'D_Pos fell');
  // outputs
  for (const f of ['25_fixed.png', '25_tilted.png', '50_fixed.png', '50_tilted.png', '50.safetensors', 'losses.svg']) assert.ok(existsSync(join(out, f)), f);
  const svg = readFileSync(join(out, 'losses.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.includes('<polyline') && svg.includes('D_Main') && svg.includes('G_Main'));
  assert.equal(checkpointSteps(out), [50]);
});

test('kill and resume in a fresh process: every following step\'s losses equal the uninterrupted run\'s', async () => {
  // both runs through the CLI; the snapshots at steps 2 and 4 draw their truncation latents from
  // the training stream (as the reference does), so the RNG state has to round-trip as well
  const full = join(root, 'full');
  const r1 = cli(['--config', configFile, '--output_dir', full, '--data_dir', data, '--total_step', '5', '--sample_interval', '2', '--save_interval', '3', '--seed', '5']);
  assert.is(r1.status, 0, r1.stderr);
  assert.equal(checkpointSteps(full), [3, 5]);
  const ckpt = await readCheckpoint(join(full, '3.safetensors'));
  assert.is(ckpt.step, 3);
  assert.is(ckpt.seed, 5);
  for (const prefix of ['G/', 'D/', 'ema/', 'ema2/', 'optG/', 'optD/']) assert.ok([...ckpt.tensors.keys()].some((k) => k.startsWith(prefix)), prefix);
  assert.ok(Object.keys(ckpt.scalars).some((k) => k.startsWith('optG/state.')), 'Adam step counts');
  // a partial file (a temporary left by a kill) is never picked as the latest
  writeFileSync(join(full, '9.safetensors.tmp-1234'), 'partial');
  assert.equal(checkpointSteps(full), [3, 5]);
  const resumed = join(root, 'resumed');
  const r2 = cli(['--load_dir', full, '--set_step', '3', '--output_dir', resumed, '--data_dir', data, '--total_step', '5', '--sample_interval', '2', '--save_interval', '3']);
  assert.is(r2.status, 0, r2.stderr);
  const a = readLog(full).filter((row) => row.step > 3);
  const b = readLog(resumed);
  assert.equal(b.map((row) => row.step), [4, 5]);
  for (let i = 0; i < a.length; i++) {
    for (const key of Object.keys(a[i]).filter((k) => k.startsWith('D_') || k.startsWith('G_'))) {
      assert.ok(Math.abs(a[i][key] - b[i][key]) <= 1e-6 * Math.max(1, Math.abs(a[i][key])), `step ${a[i].step} ${key}: ${a[i][key]} vs ${b[i][key]}`);
    }
  }
  assert.ok(existsSync(join(resumed, '4_fixed.png')));
  console.log(`  loop resume: step 4 D_Total ${a[0].D_Total} / ${b[0].D_Total}, step 5 G_Total ${a[1].G_Total} / ${b[1].G_Total}`);
});

test('a NaN loss stops the run naming step and term; the last checkpoint stays and resumes', async () => {
  const out = join(root, 'nan');
  try {
    await train({
      config: parseConfig(tinyConfig()), dataDir: data, outputDir: out, totalStep: 8,
      sampleInterval: 100, saveInterval: 2, progress: false, log: quiet, nanAtStep: 5,
    });
    assert.unreachable('the NaN should stop the run');
  } catch (e) {
    assert.instance(e, NonFiniteLossError);
    assert.match((e as Error).message, /step 5: loss D_Total is NaN/);
  }
  assert.equal(checkpointSteps(out), [2, 4]);
  assert.equal(readLog(out).map((r) => r.step), [1, 2, 3, 4]);
  const result = await train({ dataDir: data, outputDir: out, loadDir: out, totalStep: 5, sampleInterval: 100, saveInterval: 100, progress: false, log: quiet });
  assert.is(result.step, 5);
  assert.equal(checkpointSteps(out), [2, 4, 5]);
  // the env hook, through the CLI: exit 1 with one line naming step and term
  const cliOut = join(root, 'nan-cli');
  const r = cli(['--config', configFile, '--output_dir', cliOut, '--data_dir', data, '--total_step', '4', '--save_interval', '1', '--sample_interval', '100'], { GRAMHD_TEST_NAN_AT_STEP: '2' });
  assert.is(r.status, 1);
  const lines = errorLines(r.stderr);
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /step 2: loss D_Total is NaN/);
  assert.equal(checkpointSteps(cliOut), [1]);
});

test('bad input: missing data_dir, empty dataset, unknown config are one-line errors', () => {
  const empty = join(root, 'empty');
  mkdirSync(empty, { recursive: true });
  const cases: [string[], RegExp][] = [
    [['--config', configFile, '--data_dir', join(root, 'nope'), '--output_dir', join(root, 'o1')], /nope: no such directory/],
    [['--config', configFile, '--data_dir', empty, '--output_dir', join(root, 'o2')], /empty: no image with a pose file/],
    [['--config', 'GRAM99_NOPE', '--data_dir', data, '--output_dir', join(root, 'o3')], /--config: 'GRAM99_NOPE' is neither a configuration name/],
    [['--data_dir', data, '--output_dir', join(root, 'o4'), '--load_dir', empty], /--load_dir .*: no checkpoint/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(args);
    assert.is(r.status, 1, args.join(' '));
    const lines = errorLines(r.stderr);
    assert.is(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
  }
});

test('loss curves SVG: one polyline per term, legend, axes', () => {
  const rows = Array.from({ length: 1200 }, (_, i) => ({ step: i + 1, D_Main: 1 / (i + 1), G_Main: Math.sin(i), D_R1: 0.1 }));
  const svg = lossCurvesSvg(rows);
  assert.is((svg.match(/<polyline/g) ?? []).length, 3);
  for (const t of ['D_Main', 'G_Main', 'D_R1', 'Discriminator losses', 'Generator losses', '>step<']) assert.ok(svg.includes(t), t);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
