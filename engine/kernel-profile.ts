// Per-kernel GPU time: while a profile is active every dispatch runs in a compute pass of its own
// whose start and end timestamps go into a query set per submit; after the submit the timestamps
// are read back and summed by kernel key. This separates passes (which costs the batching) so it
// is a tool for finding the slow kernels of a step, not for timing the step itself. Node's device
// gets full-resolution timestamps (cli/node-gpu.ts); browsers quantise them, and there only kernels
// well above the quantum are measured meaningfully.
import { engineDevice } from './device.ts';
import { awaitGpu } from './gpu-wait.ts';

export interface KernelTime {
  key: string;
  calls: number;
  ms: number;
}

interface SubmitQueries {
  set: GPUQuerySet;
  keys: string[];
}

interface Profile {
  device: GPUDevice;
  capacity: number;
  current: SubmitQueries | null;
  totals: Map<string, { calls: number; ns: number }>;
  reads: Promise<void>[];
}

let profile: Profile | null = null;

/** Starts collecting per-kernel times (needs the timestamp-query feature). */
export function startKernelProfile(maxDispatchesPerSubmit: number): void {
  const { device, info } = engineDevice();
  if (!info.features.has('timestamp-query')) throw new Error('kernel profiling needs the adapter\'s timestamp-query feature');
  const started: Profile = { device, capacity: 2 * maxDispatchesPerSubmit, current: null, totals: new Map(), reads: [] };
  profile = started;
  // a lost (or destroyed) device ends its profile: the next device's dispatches must not write into
  // query sets of the old one
  void device.lost.then(() => {
    if (profile === started) profile = null;
  });
}

/** Drops the running profile, if any, without reading it (a profiled run that failed). */
export function discardKernelProfile(): void {
  profile = null;
}

export function kernelProfileActive(): boolean {
  return profile !== null;
}

/** The timestamp writes for the pass of the next dispatch of `key`. */
export function profiledPassWrites(key: string): GPUComputePassTimestampWrites {
  const p = profile!;
  p.current ??= { set: p.device.createQuerySet({ type: 'timestamp', count: p.capacity }), keys: [] };
  const i = p.current.keys.length;
  p.current.keys.push(key);
  return { querySet: p.current.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
}

/** Called with the encoder about to be submitted: resolves its timestamps into a mappable buffer,
 * read back (asynchronously) once the submit has run. Returns the work to start after submit. */
export function resolveProfiledSubmit(encoder: GPUCommandEncoder): (() => void) | null {
  const p = profile;
  if (!p?.current) return null;
  const { set, keys } = p.current;
  p.current = null;
  const bytes = keys.length * 16;
  const resolve = p.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const staging = p.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  encoder.resolveQuerySet(set, 0, 2 * keys.length, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
  return () => {
    p.reads.push(staging.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigUint64Array(staging.getMappedRange());
      keys.forEach((key, i) => {
        const entry = p.totals.get(key) ?? { calls: 0, ns: 0 };
        entry.calls++;
        entry.ns += t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
        p.totals.set(key, entry);
      });
      staging.unmap();
    }).finally(() => {
      staging.destroy();
      resolve.destroy();
      set.destroy();
    }));
  };
}

/** Stops profiling (after the pending work has run) and returns the kernels by total time. */
export async function stopKernelProfile(flushPending: () => void): Promise<KernelTime[]> {
  const p = profile;
  if (!p) throw new Error('no kernel profile is running');
  flushPending();
  profile = null;
  await awaitGpu(Promise.all(p.reads));
  return [...p.totals].map(([key, v]) => ({ key, calls: v.calls, ms: v.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
}
