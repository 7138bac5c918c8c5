// Run by test/cli/mpi.test.ts under `mpiexec -n N node --import tsx`: exercises each collective of
// the MPI binding and prints this rank's results as one JSON line.
import { initWorld } from '../../cli/mpi.ts';

const world = await initWorld();
const { rank, size } = world;
// float32 sum of rank-dependent values; float64 values that float32 cannot hold (1 + 2^-40)
const f32 = Float32Array.from({ length: 1000 }, (_, i) => i * (rank + 1));
world.allreduceSum(f32);
const f64 = new Float64Array([1 + 2 ** -40 * (rank + 1), rank]);
world.allreduceSum(f64);
const bytes = rank === size - 1 ? new TextEncoder().encode('from the last rank') : new Uint8Array(18);
world.broadcast(bytes, size - 1);
const ints = new Int32Array(3).fill(rank === 0 ? -7 : 0);
world.broadcast(ints, 0);
world.barrier();
console.log(JSON.stringify({ rank, size, f32: [f32[0], f32[1], f32[999]], f64: [...f64], text: new TextDecoder().decode(bytes), ints: [...ints] }));
