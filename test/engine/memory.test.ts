import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import type { PoolStats } from '../../engine/buffer-pool.ts';
import { grad, nn, ops, optim, poolStats, synchronize, Tensor, tidy } from '../../engine/index.ts';

const STEPS = 10_000;
/** Steps between waits for the GPU, so queued work stays bounded; no value is read back. */
const SYNC_EVERY = 250;

test(`${STEPS} training steps (forward, grad, Adam) do not grow GPU memory`, async () => {
  const rng = new nn.Random(3);
  const net = new nn.Sequential(new nn.Linear(16, 32, { rng }), new nn.LeakyReLU(0.2), new nn.Linear(32, 1, { rng }));
  const params = net.parameters();
  const adam = new optim.Adam(params, { lr: 1e-3 });
  const x = Tensor.fromData(rng.uniformArray(8 * 16, -1, 1), [8, 16]).keep();
  const y = Tensor.fromData(rng.uniformArray(8, -1, 1), [8, 1]).keep();
  const lossOf = () => ops.mean(ops.square(ops.sub(net.forward(x), y)));
  const initialLoss = await tidy(() => lossOf()).item();

  let afterWarmUp: PoolStats | null = null;
  const started = performance.now();
  for (let step = 1; step <= STEPS; step++) {
    tidy(() => adam.step(grad(lossOf(), params)));
    if (step % SYNC_EVERY === 0) await synchronize();
    if (step === 100) afterWarmUp = poolStats();
  }
  await synchronize();
  const seconds = (performance.now() - started) / 1000;
  const end = poolStats();
  const finalLoss = await tidy(() => lossOf()).item();
  console.log(`  ${STEPS} steps in ${seconds.toFixed(1)} s; pool after step 100: ${JSON.stringify(afterWarmUp)}, after step ${STEPS}: ${JSON.stringify(end)}; loss ${initialLoss.toExponential(3)} -> ${finalLoss.toExponential(3)}`);

  assert.is(end.allocatedBytes, afterWarmUp!.allocatedBytes, 'allocatedBytes');
  assert.is(end.inUseBytes, afterWarmUp!.inUseBytes, 'inUseBytes');
  assert.is(end.buffers, afterWarmUp!.buffers, 'buffer count');
  assert.is(end.created, afterWarmUp!.created, 'no buffer was created after the warm-up');
  // the loop did train: a fixed batch is fitted far better than at the start
  assert.ok(finalLoss < 0.1 * initialLoss, `loss ${initialLoss} -> ${finalLoss}`);
  adam.dispose();
  [x, y, ...params].forEach((t) => t.dispose());
});

test.run();
