// The training loop: a real training signal on a tiny GRAM and a tiny disc dataset (240 steps), exact
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
/** The training-signal test's seed and thresholds (window means over 20 steps). */
const SIGNAL_SEED = Number(process.env.GRAMHD_SIGNAL_SEED ?? 1);
const SEPARATED = Math.LN2 - 0.1;
const CAUGHT_UP = 0.07;

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

/** Windows of `size` consecutive steps with the mean of each logged term. */
function windows(rows: Row[], size: number): { from: number; to: number; mean: (key: string) => number }[] {
  const out = [];
  for (let i = 0; i < rows.length; i += size) {
    const w = rows.slice(i, i + size);
    out.push({ from: w[0].step, to: w[w.length - 1].step, mean: (key: string) => mean(w, key) });
  }
  return out;
}

test('a real training signal: D separates real from fake, then the generator catches up', async () => {
  // 240 steps of an 8x8 GRAM (hidden 16, 8 samples, batch 4, both learning rates 1e-3, R1 lambda 1)
  // on 16 disc images: about 1-1.5 steps/s on a loaded lavapipe. D wins first (both halves of its
  // loss fall well below ln 2 by steps 40-80) and the generator then claws back (G_Main falls from
  // its peak, D_Fake climbs back towards ln 2); later D may pull ahead again. Seeds 1 and 2 showed
  // catch-ups of 0.2 / 0.17 and 0.11 / 0.11 (G_Main / D_Fake, 20-step means). The run is kept for
  // inspection (the path is printed).
  const out = process.env.GRAMHD_SIGNAL_DIR ?? join(tmpdir(), 'gramhd-training-signal');
  rmSync(out, { recursive: true, force: true });
  const data8 = join(root, 'data8');
  writeDiscDataset(data8, 16, 8);
  const steps = 240;
  const config = tinyConfig({ hidden: 16, discLr: 1e-3, genLr: 1e-3 }) as Record<string, any>;
  config.img_size = 8;
  config.discriminator.img_size = 8;
  config.renderer = { ...config.renderer, num_samples: 8, num_manifolds: 6 };
  const result = await train({
    config: parseConfig(config), dataDir: data8, outputDir: out, totalStep: steps, seed: SIGNAL_SEED,
    sampleInterval: 120, saveInterval: steps, averageCount: 1000, progress: false, log: quiet,
  });
  const rows = readLog(out);
  assert.is(rows.length, steps);
  assert.equal(rows.map((r) => r.step), Array.from({ length: steps }, (_, i) => i + 1));
  for (const key of ['D_Total', 'D_Main', 'D_Real', 'D_Fake', 'D_R1', 'D_Pos', 'G_Total', 'G_Main', 'G_Pos', 'steps_per_s']) assert.ok(rows.every((r) => Number.isFinite(r[key])), key);
  // the logged halves add up to the logistic loss
  for (const r of rows) assert.ok(Math.abs(r.D_Real + r.D_Fake - r.D_Main) <= 1e-5 * Math.max(1, r.D_Main), `step ${r.step}: D_Real + D_Fake = ${r.D_Real + r.D_Fake} vs D_Main ${r.D_Main}`);
  const w = windows(rows, 20);
  console.log(`  loop: ${steps} steps at ${result.stepsPerSecond.toFixed(2)} steps/s; run kept in ${out}`);
  for (const x of w) {
    console.log(`    ${String(x.from).padStart(3)}-${String(x.to).padEnd(3)} D_Real ${x.mean('D_Real').toFixed(3)} D_Fake ${x.mean('D_Fake').toFixed(3)} ` +
      `G_Main ${x.mean('G_Main').toFixed(3)} D_R1 ${x.mean('D_R1').toFixed(3)} D_Pos ${x.mean('D_Pos').toFixed(2)}`);
  }
  // at the start D cannot tell: softplus(0) twice = 2 ln 2
  assert.ok(Math.abs(w[0].mean('D_Main') - 2 * Math.LN2) < 0.15, `D starts near 2 ln 2, got ${w[0].mean('D_Main')}`);
  // D wins first: in some window of the first half both halves of its loss are well below ln 2
  const early = w.slice(0, w.length / 2);
  const separated = early.findIndex((x) => x.mean('D_Real') < SEPARATED && x.mean('D_Fake') < SEPARATED);
  assert.ok(separated >= 0, `D_Real and D_Fake fall below ${SEPARATED} in the first half (window minima ${Math.min(...early.map((x) => x.mean('D_Real'))).toFixed(3)}, ${Math.min(...early.map((x) => x.mean('D_Fake'))).toFixed(3)})`);
  // ... so the fakes are judged fake and the generator's loss rises above ln 2 (its first-half peak) ...
  const peak = Math.max(...early.map((x) => x.mean('G_Main')));
  const peakAt = early.findIndex((x) => x.mean('G_Main') === peak);
  assert.ok(peak > Math.LN2 + 0.15, `G_Main rose above ln 2: first-half peak ${peak}`);
  // ... then the generator catches up: in a later window G_Main has fallen from that peak and
  // D_Fake has climbed back towards ln 2 from its low (D may well win again afterwards)
  const after = w.slice(peakAt + 1);
  const gLow = Math.min(...after.map((x) => x.mean('G_Main')));
  const dFakeLow = Math.min(...w.slice(0, peakAt + 1).map((x) => x.mean('D_Fake')));
  const dFakeBack = Math.max(...after.map((x) => x.mean('D_Fake')));
  console.log(`  loop: G_Main peak ${peak.toFixed(3)} (window ${peakAt + 1}) -> later low ${gLow.toFixed(3)}; D_Fake low ${dFakeLow.toFixed(3)} -> later high ${dFakeBack.toFixed(3)}`);
  assert.ok(peak - gLow > CAUGHT_UP, `G_Main falls from its peak ${peak.toFixed(3)} (lowest after it ${gLow.toFixed(3)})`);
  assert.ok(dFakeBack - dFakeLow > CAUGHT_UP, `D_Fake climbs back towards ln 2 from ${dFakeLow.toFixed(3)} (highest after the G peak ${dFakeBack.toFixed(3)})`);
  // the pose heads learn the poses too
  assert.ok(w[w.length - 1].mean('D_Pos') < w[0].mean('D_Pos') * 0.5, 'D_Pos fell');
  // outputs
  for (const f of ['120_fixed.png', '120_tilted.png', '240_fixed.png', '240_tilted.png', '240.safetensors', 'losses.svg']) assert.ok(existsSync(join(out, f)), f);
  const svg = readFileSync(join(out, 'losses.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.includes('<polyline') && svg.includes('D_Real') && svg.includes('D_Fake') && svg.includes('G_Main'));
  assert.equal(checkpointSteps(out), [240]);
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
