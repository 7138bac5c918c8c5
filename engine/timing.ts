// Timing GPU work. With the adapter's timestamp-query feature the work runs in a compute pass of its
// own whose start and end timestamps are resolved and read back, so host overheads (encoding,
// submit, readback latency) are excluded; otherwise the wall clock around synchronize(), which
// includes them.
import { engineDevice } from './device.ts';
import { readback, synchronize, timedPass, withEncoder } from './runtime.ts';

export interface GpuTime {
  ms: number;
  /** What measured it: pass timestamps on the device or the host's wall clock. */
  source: 'timestamps' | 'wall-clock';
}

let queries: { set: GPUQuerySet; resolve: GPUBuffer; device: GPUDevice } | null = null;

function timestampQueries(device: GPUDevice): { set: GPUQuerySet; resolve: GPUBuffer } {
  if (queries?.device !== device) {
    queries = {
      device,
      set: device.createQuerySet({ type: 'timestamp', count: 2 }),
      resolve: device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
    };
  }
  return queries;
}

/** How timeGpu will measure on this device. */
export function gpuTimeSource(): GpuTime['source'] {
  return engineDevice().info.features.has('timestamp-query') ? 'timestamps' : 'wall-clock';
}

/** Runs `work` (dispatches only: no uploads or readbacks, at most one submit's worth) after all
 * earlier work has finished, and returns how long the device took for it. */
export async function timeGpu(work: () => void): Promise<GpuTime> {
  await synchronize();
  const { device } = engineDevice();
  if (gpuTimeSource() === 'wall-clock') {
    const start = performance.now();
    work();
    await synchronize();
    return { ms: performance.now() - start, source: 'wall-clock' };
  }
  const { set, resolve } = timestampQueries(device);
  timedPass({ querySet: set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 }, work);
  withEncoder((encoder) => encoder.resolveQuerySet(set, 0, 2, resolve, 0));
  const [begin, end] = new BigUint64Array(await readback(resolve, 16));
  return { ms: Number(end - begin) / 1e6, source: 'timestamps' };
}
