// --shard I/N: the shard helper (flag and launcher environments), and render and data synth in
// shards against one unsharded run: byte-identical files. (`eval generate --shard` + `eval merge`:
// test/cli/eval-merge.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { resolveShard, shardRange } from '../../cli/shard.ts';
import { launcherFreeEnv, repoRoot, writeGoldenGramSmall } from '../helpers/golden.ts';

const workDir = mkdtempSync(join(tmpdir(), 'gramhd-shard-'));
const { ckpt, config } = writeGoldenGramSmall(workDir);

// no launcher variables from the test's own environment (the suite may itself run under mpiexec)
const cleanEnv = launcherFreeEnv();

function gramhd(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...cleanEnv, XDG_RUNTIME_DIR: '/tmp', ...env } });
  assert.is(r.status, 0, `gramhd ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** Every file under dir (relative path -> bytes). */
function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.set(relative(dir, join(d, e.name)), readFileSync(join(d, e.name)));
    }
  };
  walk(dir);
  return out;
}

function assertSameFiles(sharded: Map<string, Buffer>, whole: Map<string, Buffer>) {
  assert.equal([...sharded.keys()].sort(), [...whole.keys()].sort());
  for (const [name, bytes] of whole) assert.ok(bytes.equals(sharded.get(name)!), `${name} differs`);
}

test('shardRange tiles 0..n-1 in order, block sizes within one', () => {
  for (const total of [0, 1, 7, 8, 10]) {
    for (const count of [1, 2, 3, 5]) {
      const seen: number[] = [];
      for (let index = 0; index < count; index++) {
        const [a, b] = shardRange(total, { index, count, source: '' });
        for (let i = a; i < b; i++) seen.push(i);
        assert.ok(b - a === Math.floor(total / count) || b - a === Math.ceil(total / count));
      }
      assert.equal(seen, Array.from({ length: total }, (_, i) => i));
    }
  }
  // 8 seeds in 3 shards: floor(8i/3) -> [0,2), [2,5), [5,8)
  assert.equal([0, 1, 2].map((index) => shardRange(8, { index, count: 3, source: '' })), [[0, 2], [2, 5], [5, 8]]);
});

test('resolveShard: --shard, then Indexed Job, Slurm array, MPI rank; clear errors', () => {
  assert.equal(resolveShard('2/5', {}), { index: 2, count: 5, source: '--shard' });
  assert.equal(resolveShard(undefined, {}), { index: 0, count: 1, source: 'default' });
  assert.is(resolveShard(undefined, { JOB_COMPLETION_INDEX: '3', GRAMHD_SHARD_COUNT: '4', PMI_RANK: '0', PMI_SIZE: '2' }).index, 3);
  // --array=10-22:4 -> task ids 10, 14, 18, 22; id 18 is the third of four
  const slurm = resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '18', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_STEP: '4', SLURM_ARRAY_TASK_COUNT: '4' });
  assert.equal([slurm.index, slurm.count], [2, 4]);
  const mpi = resolveShard(undefined, { PMI_RANK: '1', PMI_SIZE: '2' });
  assert.equal([mpi.index, mpi.count], [1, 2]);
  assert.equal(resolveShard('0/1', { PMI_RANK: '1', PMI_SIZE: '2' }).count, 1);
  assert.throws(() => resolveShard('3/3', {}), /--shard: shard index '3' is not an integer in 0\.\.2/);
  assert.throws(() => resolveShard('1-3', {}), /--shard: '1-3' is not of the form I\/N/);
  // an Indexed Job without GRAMHD_SHARD_COUNT is not a shard; the count without an index is a mistake
  assert.equal(resolveShard(undefined, { JOB_COMPLETION_INDEX: '2' }).count, 1);
  assert.throws(() => resolveShard(undefined, { GRAMHD_SHARD_COUNT: '4' }), /GRAMHD_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not/);
});

test('render: 8 seeds in 3 shards (--shard and PMI_RANK) write the files of one run, byte for byte', () => {
  // untruncated, so no per-seed truncation average (1.5 s a seed here); the seeds' z and poses still
  // come from each seed's own stream, which is what sharding must keep
  const common = ['render', '--ckpt', ckpt, '--seeds', '3-10', '--type', 'rand', '--depth', '--truncation', '1'];
  gramhd([...common, '--output_dir', join(workDir, 'render-whole')]);
  gramhd([...common, '--output_dir', join(workDir, 'render-shards'), '--shard', '0/3']);
  gramhd([...common, '--output_dir', join(workDir, 'render-shards'), '--shard', '1/3']);
  // the third shard takes its place from an MPI launcher's environment, as under mpiexec
  const last = gramhd([...common, '--output_dir', join(workDir, 'render-shards')], { PMI_RANK: '2', PMI_SIZE: '3' });
  assert.match(last.stderr, /shard 2\/3 from PMI_RANK\/PMI_SIZE: seeds 5\.\.7 of 8/);
  const whole = files(join(workDir, 'render-whole'));
  assert.is(whole.size, 16); // 00000..00007.png and their _depth.png
  assertSameFiles(files(join(workDir, 'render-shards')), whole);
});

test('data synth: 5 images in 2 shards (Indexed Job variables) write the files of one run', () => {
  const common = ['data', 'synth', '--count', '5', '--size', '16', '--seed', '5', '--depth', '--batch', '2'];
  gramhd([...common, '--out', join(workDir, 'synth-whole')]);
  for (let i = 0; i < 2; i++) gramhd([...common, '--out', join(workDir, 'synth-shards')], { JOB_COMPLETION_INDEX: String(i), GRAMHD_SHARD_COUNT: '2' });
  const whole = files(join(workDir, 'synth-whole'));
  assert.is(whole.size, 15);
  assertSameFiles(files(join(workDir, 'synth-shards')), whole);
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
