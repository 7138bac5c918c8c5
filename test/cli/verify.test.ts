import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { fromFloat32, toFloat32 } from '../../engine/io/host-tensor.ts';
import { verifyCases } from '../../cli/verify/cases.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

function gramhd(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8' });
}

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const opsOutputs = Object.keys(manifest.ops.outputs);

test('verify --case ops passes every output of the ops case, one row each', () => {
  const run = gramhd('verify', '--golden', goldenDir, '--case', 'ops');
  assert.is(run.status, 0, run.stderr + run.stdout);
  const rows = run.stdout.split('\n').filter((line) => line.startsWith('ops '));
  assert.equal(rows.map((line) => line.split(/\s+/)[1]).sort(), [...opsOutputs].sort());
  for (const row of rows) {
    const [, output, relErr, allowed, result] = row.split(/\s+/);
    assert.is(result, 'pass', row);
    assert.ok(Number(relErr) <= Number(allowed), `${output}: ${relErr} > ${allowed}`);
    // forward outputs: max(100 x torch's float32 drift, 1e-4), and every drift of this case is below 1e-6
    assert.is(Number(allowed), 1e-4, row);
  }
});

test('an unknown case exits non-zero and names the cases there are', () => {
  const run = gramhd('verify', '--golden', goldenDir, '--case', 'nonexistent');
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /case nonexistent is not in .*manifest\.json \(it has: ops, gram_small/);
  assert.is(run.stdout, '');
});

test('a golden case without a runner yet exits non-zero as not supported', () => {
  const unsupported = Object.keys(manifest).find((name) => manifest[name].outputs && !verifyCases.has(name));
  if (!unsupported) return; // every case has its runner
  const run = gramhd('verify', '--golden', goldenDir, '--case', 'ops', '--case', unsupported);
  assert.is.not(run.status, 0);
  assert.match(run.stderr, new RegExp(`case ${unsupported} is not supported yet`));
});

test('an output off by 1% fails its row and the command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gramhd-verify-'));
  try {
    copyFileSync(join(goldenDir, 'manifest.json'), join(dir, 'manifest.json'));
    const file = join(goldenDir, 'ops.safetensors');
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(file)), file);
    const name = 'out/grid_sample_zeros';
    const t = tensors.get(name)!;
    tensors.set(name, fromFloat32(t.shape, toFloat32(t, name).map((v) => v * 1.01)));
    writeFileSync(join(dir, 'ops.safetensors'), serializeSafetensors([...tensors], metadata));
    const run = gramhd('verify', '--golden', dir);
    assert.is.not(run.status, 0);
    // |1.01 t - t| / |1.01 t| = 0.01 / 1.01
    assert.match(run.stdout, /ops\s+out\/grid_sample_zeros\s+9\.90e-3\s+1\.00e-4\s+FAIL/);
    assert.is(run.stdout.match(/ pass$/gm)?.length, opsOutputs.length - 1);
    assert.match(run.stderr, new RegExp(`1 of ${opsOutputs.length} outputs exceed their allowed error`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
