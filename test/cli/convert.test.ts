import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float16ToNumber } from '../../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

const workDir = mkdtempSync(join(tmpdir(), 'gramhd-convert-'));
const gramhdPt = join(goldenDir, 'gramhd_small.pt');

function gramhd(...args: string[]) {
  return spawnSync(process.execPath, ['bin/gramhd.js', ...args], { cwd: repoRoot, encoding: 'utf8' });
}

function readSafetensors(path: string) {
  return parseSafetensors(new Uint8Array(readFileSync(path)), path);
}

/** The float64-truth parameters (stored as float32) by state_dict key. */
const truth = new Map([...readSafetensors(join(goldenDir, 'gramhd_small.safetensors')).tensors]
  .filter(([key]) => key.startsWith('param/'))
  .map(([key, t]) => [key.slice('param/'.length), t]));

test('convert writes every state_dict tensor of a .pt as float32, bit-exact', () => {
  const output = join(workDir, 'gramhd_small.safetensors');
  const run = gramhd('convert', gramhdPt, output, '--config', 'gramhd_small');
  assert.is(run.status, 0, run.stderr);
  const { tensors, metadata } = readSafetensors(output);
  assert.equal(metadata, { config: 'gramhd_small' });
  assert.equal([...tensors.keys()].sort(), [...truth.keys()].sort());
  for (const [key, t] of tensors) {
    assert.is(t.dtype, 'F32', key);
    assert.equal(t.shape, truth.get(key)!.shape, key);
    assert.equal([...t.data], [...truth.get(key)!.data], key);
  }
  assert.equal(readdirSync(workDir).filter((name) => name.includes('.tmp-')), [], 'no temporary file is left');
});

test('--float16 stores each value rounded to the nearest float16', () => {
  const output = join(workDir, 'half.safetensors');
  const run = gramhd('convert', gramhdPt, output, '--float16');
  assert.is(run.status, 0, run.stderr);
  const { tensors, metadata } = readSafetensors(output);
  assert.equal(metadata, {});
  for (const [key, t] of tensors) {
    assert.is(t.dtype, 'F16', key);
    const halves = new Uint16Array(t.data.slice().buffer);
    const values = new Float32Array(truth.get(key)!.data.slice().buffer);
    values.forEach((value, i) => {
      // Nearest: no float16 neighbour of the stored value is closer to the float32 value.
      const stored = float16ToNumber(halves[i]!);
      const error = Math.abs(stored - value);
      for (const neighbour of [halves[i]! - 1, halves[i]! + 1]) {
        if ((neighbour & 0x7fff) < 0x7c00) assert.ok(error <= Math.abs(float16ToNumber(neighbour) - value), `${key}[${i}]`);
      }
    });
  }
});

test('convert keeps integer tensors and accepts safetensors input', () => {
  const input = join(workDir, 'mixed.safetensors');
  const steps = new Uint8Array(BigInt64Array.of(5n, -1n).buffer);
  const weight = new Uint8Array(Float64Array.of(0.25, -1.5).buffer);
  writeFileSync(input, serializeSafetensors([
    ['steps', { dtype: 'I64', shape: [2], data: steps }],
    ['weight', { dtype: 'F64', shape: [2], data: weight }],
  ]));
  const output = join(workDir, 'mixed-out.safetensors');
  const run = gramhd('convert', input, output);
  assert.is(run.status, 0, run.stderr);
  const { tensors } = readSafetensors(output);
  assert.is(tensors.get('steps')!.dtype, 'I64');
  assert.equal([...tensors.get('steps')!.data], [...steps]);
  assert.is(tensors.get('weight')!.dtype, 'F32');
  assert.equal([...new Float32Array(tensors.get('weight')!.data.slice().buffer)], [0.25, -1.5]);
});

test('errors are one line naming the file', () => {
  const missing = join(workDir, 'missing.pt');
  const run = gramhd('convert', missing, join(workDir, 'never.safetensors'));
  assert.is(run.status, 1);
  assert.is(run.stderr.trim(), `gramhd: ${missing}: cannot read (no such file or directory)`);

  const truncated = join(workDir, 'truncated.pt');
  const bytes = readFileSync(gramhdPt);
  writeFileSync(truncated, bytes.subarray(0, bytes.byteLength >> 1));
  const cut = gramhd('convert', truncated, join(workDir, 'never.safetensors'));
  assert.is(cut.status, 1);
  assert.is(cut.stderr.trim().split('\n').length, 1);
  assert.match(cut.stderr, `gramhd: ${truncated}: `);
  assert.match(cut.stderr, 'truncated');
  assert.not.ok(readdirSync(workDir).includes('never.safetensors'));
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));

test.run();
