import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { ops, Tensor, tidy, tidyAsync } from '../../engine/index.ts';
import { discardKernelProfile, startKernelProfile, stopKernelProfile, timedPass } from '../../engine/runtime.ts';
import { kernelProfileActive } from '../../engine/kernel-profile.ts';
import { gpuTimeSource, timeGpu } from '../../engine/timing.ts';

test('timeGpu measures the work it is given, with timestamps where the adapter has them', async () => {
  await tidyAsync(async () => {
    const a = Tensor.fromData(new Float32Array(256 * 256).fill(1), [256, 256]);
    // untimed first: the pipeline's compilation is not the work being measured; then the fastest of
    // three single products, so one stall cannot inflate the reference
    await timeGpu(() => tidy(() => { ops.matmul(a, a); }));
    let small = await timeGpu(() => tidy(() => { ops.matmul(a, a); }));
    for (let k = 0; k < 2; k++) {
      const again = await timeGpu(() => tidy(() => { ops.matmul(a, a); }));
      if (again.ms < small.ms) small = again;
    }
    const large = await timeGpu(() => tidy(() => { for (let i = 0; i < 8; i++) ops.matmul(a, a); }));
    assert.is(small.source, gpu.info.features.has('timestamp-query') ? 'timestamps' : 'wall-clock');
    assert.is(gpuTimeSource(), small.source);
    assert.ok(small.ms > 0 && Number.isFinite(small.ms), `small: ${small.ms} ms`);
    // 8 products take longer than one (by ~8x; 2x leaves room for timestamp quantisation and noise)
    assert.ok(large.ms > 2 * small.ms, `8 products ${large.ms} ms vs one ${small.ms} ms`);
    // the results of the timed work are still right
    assert.equal((await ops.matmul(a, a).data())[0], 256);
  });
});

test('timedPass refuses work that does not fit one compute pass', async () => {
  if (!gpu.info.features.has('timestamp-query')) return;
  const set = gpu.device.createQuerySet({ type: 'timestamp', count: 2 });
  try {
    assert.throws(() => timedPass({ querySet: set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 }, () => {
      // an upload flushes the pending pass
      Tensor.fromData([1, 2, 3], [3]).dispose();
    }), /did not fit one compute pass/);
  } finally {
    set.destroy();
  }
});

test('the kernel profile counts dispatches by kernel; a discarded one records nothing more', async () => {
  if (!gpu.info.features.has('timestamp-query')) return;
  await tidyAsync(async () => {
    const a = Tensor.fromData(new Float32Array(64 * 64).fill(1), [64, 64]);
    startKernelProfile();
    for (let i = 0; i < 3; i++) ops.matmul(a, a);
    const times = await stopKernelProfile();
    assert.is(times.length, 1, times.map((t) => t.key).join(', '));
    assert.is(times[0].calls, 3);
    assert.ok(times[0].ms > 0);
    // a run that failed mid-profile: the profile ends without being read, later work is unprofiled
    startKernelProfile();
    ops.matmul(a, a);
    discardKernelProfile();
    assert.not.ok(kernelProfileActive());
    await ops.matmul(a, a).data();
    const stopped = await stopKernelProfile().then(() => 'stopped', (e: Error) => e.message);
    assert.match(stopped, /no kernel profile is running/);
  });
});

test.run();
