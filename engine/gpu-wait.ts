// Waiting for the GPU without spinning a CPU core.

/** Where the thread may block (Node's main thread, workers), a 4-byte cell to sleep on. */
const sleeper = (() => {
  if (typeof setImmediate !== 'function' || typeof SharedArrayBuffer !== 'function') return null;
  try {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(cell, 0, 0, 0);
    return cell;
  } catch {
    return null; // a browser's main thread may not block
  }
})();

/** Milliseconds slept between polls while awaiting the GPU. */
const GPU_POLL_MS = 1;

/**
 * Awaits a promise that Dawn settles: a map, the queue's work done. dawn.node settles them by
 * polling on the main thread with setImmediate for as long as one is pending, which keeps a CPU
 * core busy; on a software adapter that core is one the kernels run on (a GRAMHD256 forward on 2
 * cores: 86 s, then 120 s once the readback wait spun). Where the thread can block, the wait sleeps
 * GPU_POLL_MS between turns of the event loop instead, so Dawn polls once per turn; elsewhere
 * (browsers poll without spinning) it is a plain await.
 */
export async function awaitGpu<T>(pending: Promise<T>): Promise<T> {
  if (!sleeper) return pending;
  let settled = false;
  const done = () => { settled = true; };
  pending.then(done, done);
  while (!settled) {
    Atomics.wait(sleeper, 0, 0, GPU_POLL_MS);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return pending;
}
