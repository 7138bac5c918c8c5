// The MPI binding (cli/mpi.ts): a process without an MPI launcher is a world of size 1 that never
// loads the library; under `mpiexec -n 3` every collective gives each rank the result computed here
// independently. Skips the mpiexec part only when mpiexec is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { assertPmiConnection, initWorld, launchedByMpi } from '../../cli/mpi.ts';
import { repoRoot } from '../helpers/golden.ts';

const hasMpiexec = spawnSync('mpiexec', ['--version'], { encoding: 'utf8' }).status === 0;

test('no launcher: a world of one, without loading any MPI library', async () => {
  assert.is(launchedByMpi({}), false);
  assert.is(launchedByMpi({ PMI_RANK: '0', PMI_SIZE: '2' }), true);
  // a library path that cannot load: a world of one proves nothing was loaded
  const world = await initWorld({ GRAMHD_MPI_LIB: '/nonexistent/libmpich.so.12' });
  assert.is(world.size, 1);
  assert.is(world.rank, 0);
  const v = new Float32Array([1, 2]);
  world.allreduceSum(v);
  assert.equal([...v], [1, 2]);
});

test('srun without an MPI plugin: one clear line instead of N independent runs', async () => {
  try {
    await initWorld({ SLURM_STEP_ID: '0', SLURM_STEP_NUM_TASKS: '8' });
    assert.unreachable('expected an error');
  } catch (e) {
    assert.match((e as Error).message, /srun started 8 tasks without MPI's process manager .* srun --mpi=pmi2/);
  }
});

test('npx-style wrappers that drop PMI_FD get one clear line, not an MPI abort', () => {
  // an fd number that is not open in this process stands for the one a wrapper closed
  assert.not.throws(() => assertPmiConnection({ PMI_FD: '2' }));
  assert.throws(() => assertPmiConnection({ PMI_RANK: '0', PMI_SIZE: '2', PMI_FD: '987' }), /PMI_FD 987 is not open in this process .* mpiexec -n N node bin\/gramhd\.js/);
});

if (hasMpiexec) {
  test('mpiexec -n 3: allreduce (float32, float64), broadcast (bytes from the last rank, int32), barrier', () => {
    const r = spawnSync('mpiexec', ['-n', '3', process.execPath, '--import', 'tsx', 'test/helpers/mpi-worker.ts'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((a, b) => a.rank - b.rank);
    assert.equal(results.map((x) => [x.rank, x.size]), [[0, 3], [1, 3], [2, 3]]);
    for (const x of results) {
      // sum over ranks of i * (rank + 1) = 6 i
      assert.equal(x.f32, [0, 6, 5994]);
      // sum of 1 + 2^-40 (rank + 1) = 3 + 6 * 2^-40, exact in float64; and 0 + 1 + 2
      assert.equal(x.f64, [3 + 6 * 2 ** -40, 3]);
      assert.is(x.text, 'from the last rank');
      assert.equal(x.ints, [-7, -7, -7]);
    }
  });
} else {
  test('mpiexec collectives (skipped: no mpiexec; `sudo bash scripts/setup.sh` installs MPICH)', () => {});
}

test.run();
