// Run by test/train/data-parallel.test.ts under `mpiexec -n 2 node --import tsx`: each rank builds a
// small discriminator from its own seed (so the ranks start different), takes rank 0's weights with
// broadcastModules, then gives every parameter the gradient rank + 1 and averages the gradients.
// Prints this rank's weight hash before and after, and the averaged gradient values, as JSON.
import { initWorld } from '../../cli/mpi.ts';
import { initNodeDevice } from '../../cli/node-gpu.ts';
import { destroyDevice, ops } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import { GramEncoderDiscriminator } from '../../model/discriminator/gram-encoder.ts';
import { averageGradients, broadcastModules, hashTensors } from '../../train/data-parallel.ts';

const world = await initWorld();
await initNodeDevice();
const net = new GramEncoderDiscriminator(16, { maxChannels: 8, rng: new Random(100 + world.rank) });
const params = net.parameters();
const before = await hashTensors(params);
await broadcastModules(world, [net]);
const after = await hashTensors(params);
for (const p of params) p.grad = ops.full(p.shape, world.rank + 1).keep();
await averageGradients(world, params);
const values = new Set<number>();
for (const p of params) for (const v of await p.grad!.toFloat32()) values.add(v);
console.log(JSON.stringify({ rank: world.rank, before, after, gradValues: [...values], params: params.reduce((n, p) => n + p.size, 0) }));
for (const p of params) p.dispose();
destroyDevice();
