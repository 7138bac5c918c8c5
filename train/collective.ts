// The collective operations data-parallel training needs, behind an interface so that train/ never
// loads a native library: the MPI binding (cli/mpi.ts) implements it in Node, and a single process
// (or the browser) uses `singleProcess`, whose operations are identities.

/** A fixed group of processes ("world") that reduce and broadcast host buffers together. */
export interface Collective {
  /** This process's index in the world, 0..size-1. */
  readonly rank: number;
  /** Number of processes in the world (1: no MPI). */
  readonly size: number;
  /** Element-wise sum over all ranks, in place: afterwards every rank holds the same sum. */
  allreduceSum(buffer: Float32Array | Float64Array): void;
  /** Copies `root`'s buffer into every rank's buffer of the same length. */
  broadcast(buffer: Float32Array | Float64Array | Int32Array | Uint8Array, root?: number): void;
  barrier(): void;
  /** Ends the world; no collective may be called afterwards. */
  finalize(): void;
}

export const singleProcess: Collective = {
  rank: 0,
  size: 1,
  allreduceSum() {},
  broadcast() {},
  barrier() {},
  finalize() {},
};

/** Broadcasts rank 0's bytes; every rank receives a copy (root included, unchanged). */
export function broadcastBytes(world: Collective, bytes: Uint8Array): Uint8Array {
  if (world.size === 1) return bytes;
  const length = new Int32Array([bytes.length]);
  world.broadcast(length, 0);
  const out = world.rank === 0 ? bytes : new Uint8Array(length[0]);
  world.broadcast(out, 0);
  return out;
}

/**
 * Stops every rank with the same one-line error when the ranks disagree on `what` (a configuration,
 * a parameter count): each rank compares its `value` with rank 0's and the verdict is summed over
 * the world, so no rank goes on into a collective that the others never reach (which would hang).
 */
export function assertRanksAgree(world: Collective, what: string, value: string): void {
  if (world.size === 1) return;
  const mine = new TextEncoder().encode(value);
  const root = new TextDecoder().decode(broadcastBytes(world, mine));
  const disagreeing = new Float64Array([root === value ? 0 : 1]);
  world.allreduceSum(disagreeing);
  if (disagreeing[0] > 0) {
    const shown = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s);
    const message = root === value
      ? `ranks disagree on ${what}: ${disagreeing[0]} rank(s) differ from rank 0 (this rank ${world.rank} agrees: ${shown(value)})`
      : `ranks disagree on ${what}: rank ${world.rank} has ${shown(value)} but rank 0 has ${shown(root)}`;
    // the launcher ends the whole job at the first rank's exit: every rank prints first, and only
    // after a barrier does any rank go on to exit
    console.error(`gramhd: ${message}`);
    world.barrier();
    throw new ReportedError(message);
  }
}

/** An error whose one-line message every rank has already printed (the CLI exits without printing it again). */
export class ReportedError extends Error {
  override name = 'ReportedError';
  readonly reported = true;
}
