// The MPI binding: an installed MPI library called through koffi's FFI (prebuilt binaries in its npm
// package, so nothing to compile). MPICH's ABI (Debian's mpich, also Intel MPI and Cray MPICH) makes
// every handle a plain 32-bit integer, so no header is needed at run time; the constants below are
// those of /usr/include/x86_64-linux-gnu/mpich/mpi.h (MPICH 4.0). A process not started by an MPI
// launcher is a world of size 1 and never loads the library, so MPI is only needed for multi-process runs.
import { fstatSync } from 'node:fs';
import type { Collective } from '../train/collective.ts';
import { singleProcess } from '../train/collective.ts';

const MPI_SUCCESS = 0;
const MPI_COMM_WORLD = 0x44000000;
const MPI_BYTE = 0x4c00010d;
const MPI_INT = 0x4c000405;
const MPI_FLOAT = 0x4c00040a;
const MPI_DOUBLE = 0x4c00080b;
const MPI_SUM = 0x58000003;
const MPI_ERRORS_RETURN = 0x54000001;
/** MPI_IN_PLACE is `(void *)-1`: passed as an intptr_t, which the x86-64 and AArch64 ABIs put in the same register as a pointer. */
const MPI_IN_PLACE = -1;
const MPI_MAX_ERROR_STRING = 512;
const MPI_THREAD_FUNNELED = 1;

/** Where the library is looked for: GRAMHD_MPI_LIB, then Debian's MPICH soname, then the unversioned name. */
const LIBRARY_CANDIDATES = ['libmpich.so.12', 'libmpi.so.12', 'libmpich.so'];

/**
 * The launcher's environment: Hydra (mpiexec of MPICH) and Slurm's pmi2 plugin set PMI_RANK/PMI_SIZE,
 * PMIx launchers (srun --mpi=pmix, Open MPI's prterun) set PMIX_RANK. Open MPI's own ABI is not MPICH's.
 */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PMI_RANK !== undefined || env.PMI_SIZE !== undefined || env.PMIX_RANK !== undefined || env.OMPI_COMM_WORLD_SIZE !== undefined;
}

let world: Collective | null = null;

/**
 * Hydra hands each rank its PMI connection as an inherited file descriptor (PMI_FD); wrappers that
 * re-spawn node (npx, the tsx CLI) pass only stdio on, and MPI_Init would then abort with a PMI
 * write error: this says so in one line instead.
 */
export function assertPmiConnection(env: NodeJS.ProcessEnv = process.env): void {
  if (env.PMI_FD === undefined) return;
  try {
    fstatSync(Number(env.PMI_FD));
  } catch {
    throw new Error(`the MPI launcher's PMI_FD ${env.PMI_FD} is not open in this process (a wrapper such as npx or the tsx CLI closed it); launch node directly: mpiexec -n N node bin/gramhd.js ...`);
  }
}

/**
 * The MPI world of this process: a size-1 world without loading anything when no MPI launcher
 * started it, else MPI_Init'ed once through the MPICH-ABI library (GRAMHD_MPI_LIB overrides the path).
 */
export async function initWorld(env: NodeJS.ProcessEnv = process.env): Promise<Collective> {
  // srun without an MPI plugin starts N independent copies, which would all train and write alone
  const tasks = Number(env.SLURM_STEP_NUM_TASKS ?? 1);
  if (!launchedByMpi(env) && env.SLURM_STEP_ID !== undefined && tasks > 1) {
    throw new Error(`srun started ${tasks} tasks without MPI's process manager (no PMI_RANK/PMIX_RANK): run srun --mpi=pmi2 (or --mpi=pmix), or one task`);
  }
  if (world) return world;
  if (!launchedByMpi(env)) return (world = singleProcess);
  if (env.OMPI_COMM_WORLD_SIZE !== undefined && env.GRAMHD_MPI_LIB === undefined) {
    throw new Error('started by Open MPI\'s mpirun, whose ABI gramhd does not bind; launch with MPICH\'s mpiexec (apt-get install mpich) or point GRAMHD_MPI_LIB at an MPICH-ABI libmpi.so');
  }
  assertPmiConnection(env);
  world = await openMpi(env.GRAMHD_MPI_LIB);
  // Finalize on a normal exit so mpiexec sees a clean end; an error exit (non-zero code) makes the
  // launcher tear down the other ranks instead of leaving them blocked in a collective.
  process.once('exit', (code) => { if (code === 0) world?.finalize(); });
  return world;
}

async function openMpi(libraryPath: string | undefined): Promise<Collective> {
  // MPICH's UCX transport patches malloc/mmap to track memory registrations (UCX "memory events");
  // inside node that corrupts the heap now and then (segfaults in V8's compiler threads; the same
  // crash as openucx/ucx#3831). gramhd exchanges host buffers only, which need no registration
  // cache, so the hooks are off unless the user sets UCX_MEM_EVENTS. Node's env writes reach
  // getenv(), and UCX reads it when the library loads.
  process.env.UCX_MEM_EVENTS ??= 'no';
  const koffi = (await import('koffi')).default;
  let lib: ReturnType<typeof koffi.load> | null = null;
  const tried: string[] = [];
  for (const path of libraryPath !== undefined ? [libraryPath] : LIBRARY_CANDIDATES) {
    try {
      lib = koffi.load(path);
      break;
    } catch (e) {
      tried.push(`${path} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  if (!lib) {
    throw new Error(`started under an MPI launcher (PMI_RANK/PMIX_RANK set) but no MPI library could be loaded: tried ${tried.join('; ')}. Install MPICH (apt-get install mpich) or set GRAMHD_MPI_LIB`);
  }
  const MPI_Initialized = lib.func('int MPI_Initialized(_Out_ int *flag)');
  const MPI_Init_thread = lib.func('int MPI_Init_thread(void *argc, void *argv, int required, _Out_ int *provided)');
  const MPI_Comm_rank = lib.func('int MPI_Comm_rank(int comm, _Out_ int *rank)');
  const MPI_Comm_size = lib.func('int MPI_Comm_size(int comm, _Out_ int *size)');
  const MPI_Comm_set_errhandler = lib.func('int MPI_Comm_set_errhandler(int comm, int errhandler)');
  const MPI_Error_string = lib.func('int MPI_Error_string(int code, _Out_ uint8_t *text, _Out_ int *length)');
  const MPI_Allreduce = lib.func('int MPI_Allreduce(intptr_t sendbuf, void *recvbuf, int count, int datatype, int op, int comm)');
  const MPI_Bcast = lib.func('int MPI_Bcast(void *buffer, int count, int datatype, int root, int comm)');
  const MPI_Barrier = lib.func('int MPI_Barrier(int comm)');
  const MPI_Finalize = lib.func('int MPI_Finalize()');

  const check = (what: string, code: number) => {
    if (code === MPI_SUCCESS) return;
    const text = new Uint8Array(MPI_MAX_ERROR_STRING);
    const length = [0];
    MPI_Error_string(code, text, length);
    throw new Error(`${what} failed: ${new TextDecoder().decode(text.subarray(0, length[0]))}`);
  };
  const flag = [0];
  check('MPI_Initialized', MPI_Initialized(flag));
  // FUNNELED: node has many threads (libuv, V8, Dawn) but only the main thread calls MPI
  const provided = [0];
  if (!flag[0]) check('MPI_Init_thread', MPI_Init_thread(null, null, MPI_THREAD_FUNNELED, provided));
  // Errors come back as codes (thrown as one line) instead of MPI's default of aborting the job.
  check('MPI_Comm_set_errhandler', MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  const rank = [0];
  const size = [0];
  check('MPI_Comm_rank', MPI_Comm_rank(MPI_COMM_WORLD, rank));
  check('MPI_Comm_size', MPI_Comm_size(MPI_COMM_WORLD, size));
  let finalized = false;

  // MPI counts are C ints: a buffer over 2^31-1 elements goes in pieces (no sharp drop in speed,
  // each piece is still a whole-world collective).
  const MAX_COUNT = 0x40000000;
  const inPieces = (buffer: Float32Array | Float64Array | Int32Array | Uint8Array, f: (piece: typeof buffer) => void) => {
    for (let start = 0; start < buffer.length; start += MAX_COUNT) f(buffer.subarray(start, Math.min(buffer.length, start + MAX_COUNT)));
  };
  const datatypeOf = (buffer: Float32Array | Float64Array | Int32Array | Uint8Array) =>
    buffer instanceof Float32Array ? MPI_FLOAT : buffer instanceof Float64Array ? MPI_DOUBLE : buffer instanceof Int32Array ? MPI_INT : MPI_BYTE;

  return {
    rank: rank[0],
    size: size[0],
    allreduceSum(buffer) {
      const type = datatypeOf(buffer);
      inPieces(buffer, (piece) => check('MPI_Allreduce', MPI_Allreduce(MPI_IN_PLACE, piece, piece.length, type, MPI_SUM, MPI_COMM_WORLD)));
    },
    broadcast(buffer, root = 0) {
      const type = datatypeOf(buffer);
      inPieces(buffer, (piece) => check('MPI_Bcast', MPI_Bcast(piece, piece.length, type, root, MPI_COMM_WORLD)));
    },
    barrier() {
      check('MPI_Barrier', MPI_Barrier(MPI_COMM_WORLD));
    },
    finalize() {
      if (finalized) return;
      finalized = true;
      check('MPI_Finalize', MPI_Finalize());
    },
  };
}
