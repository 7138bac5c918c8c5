// Data-parallel training over MPI: broadcastModules and averageGradients against their analytic
// results, then `mpiexec -n 2` of `gramhd train`: the ranks keep identical weights,
// EMAs and optimiser states (hashes logged every step by GRAMHD_TEST_HASH_INTERVAL), only rank 0
// writes, the run resumes from its checkpoint with one rank, and a bad MPI setup (ranks with different
// configurations, a missing library) stops every rank with one clear line instead of hanging.
// Skips only when MPICH's mpiexec is absent (scripts/setup.sh installs it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/golden.ts';
import { tinyConfig, writeDiscDataset } from './loop-fixtures.ts';

const hasMpiexec = spawnSync('mpiexec', ['--version'], { encoding: 'utf8' }).status === 0;
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-ddp-'));
const data = join(workDir, 'data');
const run = join(workDir, 'run');
const config = join(workDir, 'tiny.json');
const env = { ...process.env, XDG_RUNTIME_DIR: '/tmp', GRAMHD_TEST_HASH_INTERVAL: '1' };

/** `mpiexec -n ranks node bin/gramhd.js train ...` (node directly: npx would close Hydra's PMI_FD). */
function mpiTrain(ranks: number, args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync('mpiexec', ['-n', String(ranks), process.execPath, 'bin/gramhd.js', 'train', ...args],
    { cwd: repoRoot, encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 110_000 });
}

/** step -> rank -> state hash, from the GRAMHD_TEST_HASH_INTERVAL lines. */
function hashes(stderr: string): Map<number, Map<number, string>> {
  const out = new Map<number, Map<number, string>>();
  for (const m of stderr.matchAll(/rank (\d+) step (\d+) state ([0-9a-f]{16})/g)) {
    const step = Number(m[2]);
    if (!out.has(step)) out.set(step, new Map());
    out.get(step)!.set(Number(m[1]), m[3]);
  }
  return out;
}

if (!hasMpiexec) {
  test('data-parallel training (skipped: no mpiexec; `sudo bash scripts/setup.sh` installs MPICH)', () => {});
} else {
  writeDiscDataset(data, 12);
  // 2 images per rank per step: one epoch of 12 images is 3 steps of the 2-rank world
  writeFileSync(config, JSON.stringify(tinyConfig({ batch: 2, hidden: 16 })));

  test('broadcastModules gives every rank rank 0\'s weights; averageGradients the mean gradient', () => {
    const r = spawnSync('mpiexec', ['-n', '2', process.execPath, '--import', 'tsx', 'test/helpers/ddp-worker.ts'], { cwd: repoRoot, encoding: 'utf8', env, timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    const [r0, r1] = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((a, b) => a.rank - b.rank);
    assert.is.not(r0.before, r1.before, 'the ranks should start from different weights');
    assert.is(r0.after, r0.before);
    assert.is(r1.after, r0.before);
    // gradients 1 (rank 0) and 2 (rank 1): their mean 1.5 in every element of every parameter
    assert.equal(r0.gradValues, [1.5]);
    assert.equal(r1.gradValues, [1.5]);
  });

  test('mpiexec -n 2: identical state on both ranks at every step; only rank 0 writes', () => {
    const r = mpiTrain(2, ['--config', config, '--data_dir', data, '--output_dir', run, '--total_step', '3', '--sample_interval', '100', '--save_interval', '3', '--seed', '3']);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stderr, /rank 0\/2: adapter /);
    assert.match(r.stderr, /rank 1\/2: adapter /);
    const h = hashes(r.stderr);
    assert.equal([...h.keys()].sort(), [1, 2, 3]);
    for (const [step, ranks] of h) {
      assert.is(ranks.size, 2, `step ${step}: ${[...ranks.keys()]}`);
      assert.is(ranks.get(0), ranks.get(1), `step ${step}: rank 0 ${ranks.get(0)} vs rank 1 ${ranks.get(1)}`);
    }
    // the state moves: the steps trained
    assert.is(new Set([...h.values()].map((m) => m.get(0))).size, 3);
    assert.equal(readdirSync(run).filter((f) => f.endsWith('.safetensors')), ['3.safetensors']);
    const log = readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(log.map((r) => r.step), [1, 2, 3]);
    // one gradient exchange for D and one for G per step, both of float32 gradients
    assert.ok(log.every((r) => r.exchange_mb > 0 && r.allreduce_ms >= 0), JSON.stringify(log[0]));
  });

  test('the 2-rank checkpoint resumes in one process', () => {
    const r = spawnSync(process.execPath, ['bin/gramhd.js', 'train', '--data_dir', data, '--output_dir', run, '--load_dir', run, '--total_step', '4', '--sample_interval', '100', '--save_interval', '4'],
      { cwd: repoRoot, encoding: 'utf8', env, timeout: 110_000 });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stderr, /resumed from .*3\.safetensors \(step 3\)/);
    assert.ok(existsSync(join(run, '4.safetensors')));
    const log = readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(log.map((r) => r.step), [1, 2, 3, 4]);
  });

  test('ranks with different configurations stop together with one message', () => {
    const other = join(workDir, 'other.json');
    writeFileSync(other, JSON.stringify(tinyConfig({ batch: 3, hidden: 16 })));
    const common = ['--data_dir', data, '--output_dir', join(workDir, 'bad'), '--total_step', '1'];
    // MPMD: rank 0 and rank 1 run with different --config
    const r = spawnSync('mpiexec', ['-n', '1', process.execPath, 'bin/gramhd.js', 'train', '--config', config, ...common, ':', '-n', '1', process.execPath, 'bin/gramhd.js', 'train', '--config', other, ...common],
      { cwd: repoRoot, encoding: 'utf8', env, timeout: 60_000 });
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /gramhd: ranks disagree on the configuration, objective, seed, start step and step counts: rank 1 has .* but rank 0 has/);
    assert.match(r.stderr, /gramhd: ranks disagree on the configuration.*this rank 0 agrees/);
  });

  test('a missing MPI library under mpiexec is one clear line', () => {
    const r = mpiTrain(2, ['--config', config, '--data_dir', data, '--output_dir', join(workDir, 'bad'), '--total_step', '1'], { GRAMHD_MPI_LIB: '/nonexistent/libmpich.so.12' });
    assert.is.not(r.status, 0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('gramhd: '));
    assert.ok(lines.length >= 1, r.stderr);
    for (const l of lines) assert.match(l, /^gramhd: started under an MPI launcher .* no MPI library could be loaded: tried \/nonexistent\/libmpich\.so\.12 .*Install MPICH/);
  });
}

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
