// Bad input gives one clear error: no adapter, an allocation beyond the adapter's limits, a GPU
// validation error (never silent zeros).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { gpu } from '../helpers/gpu.ts';
import { ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { dispatch } from '../../engine/runtime.ts';

test('no adapter: the CLI names the fix in one line', () => {
  const run = spawnSync(process.execPath, ['bin/gramhd.js', 'verify', '--golden', 'test/golden', '--case', 'ops'], {
    encoding: 'utf8', env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent-icd.json' },
  });
  assert.is(run.status, 1);
  const line = run.stderr.split('\n').find((l) => l.startsWith('gramhd:'));
  assert.ok(line, run.stderr);
  assert.match(line!, /no WebGPU adapter found/);
  assert.match(line!, /apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1/);
});

test('an allocation beyond maxStorageBufferBindingSize is refused with the sizes', () => {
  const limit = gpu.info.limits.maxStorageBufferBindingSize;
  const n = Math.ceil(limit / 4) + 1024;
  assert.throws(() => Tensor.empty([n]), (e: Error) => /exceeds this adapter's maxStorageBufferBindingSize/.test(e.message) && e.message.includes(`f32 tensor [${n}]`));
});

test('a GPU validation error surfaces as a JS error at the next sync, and the engine keeps working', async () => {
  const broken = { key: 'test:broken', code: '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_symbol; }' };
  await tidyAsync(async () => {
    const t = Tensor.fromData([1, 2, 3], [3]);
    dispatch(broken, [], null, 1);
    let error: Error | null = null;
    try {
      await t.data();
    } catch (e) {
      error = e as Error;
    }
    assert.ok(error && /GPU error/.test(error.message), `expected a GPU error, got ${error?.message}`);
    assert.equal([...(await ops.mul(t, 2).data())], [2, 4, 6]);
  });
});

test('shape errors name the shapes', () => {
  assert.throws(() => Tensor.fromData([1, 2, 3], [2, 2]), /3 values, shape \[2, 2\] needs 4/);
  assert.throws(() => ops.add(Tensor.empty([2, 3]), Tensor.empty([4])), /\[2, 3\] and \[4\] do not broadcast/);
  assert.throws(() => ops.matmul(Tensor.empty([2, 3]), Tensor.empty([4, 5])), /inner sizes differ/);
  assert.throws(() => ops.reshape(Tensor.empty([2, 3]), [4, 2]), /cannot reshape \[2, 3\] to \[4, 2\]/);
});

test.run();
