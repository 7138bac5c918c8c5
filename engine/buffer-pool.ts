// Pooled GPU storage buffers, keyed by size bucket (like tfjs' buffer manager). Released buffers
// go back to their bucket at once: later dispatches that reuse them are ordered after earlier ones
// by the queue, and uploads flush pending work first (see runtime.ts). The counters are what the
// memory-growth tests and benchmarks read.
import { engineDevice } from './device.ts';

export interface PoolStats {
  /** Bytes of GPU buffers created and not destroyed (in use + cached). */
  allocatedBytes: number;
  /** Bytes held by live tensors. */
  inUseBytes: number;
  /** Highest inUseBytes seen since the last resetPeak(). */
  peakInUseBytes: number;
  buffers: number;
  created: number;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a request up to its bucket: 256-byte steps when small, 1/8 of the power of two above. */
export function bucketSize(bytes: number): number {
  const b = Math.max(256, bytes);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.ceil(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

const free = new Map<number, GPUBuffer[]>();
const stats: PoolStats = { allocatedBytes: 0, inUseBytes: 0, peakInUseBytes: 0, buffers: 0, created: 0 };

export function acquireBuffer(bytes: number, what: () => string): GPUBuffer {
  const { device, info } = engineDevice();
  const maxBinding = info.limits.maxStorageBufferBindingSize;
  const size = Math.min(bucketSize(bytes), maxBinding);
  if (bytes > maxBinding) {
    throw new Error(`cannot allocate ${what()}: ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this adapter's ` +
      `maxStorageBufferBindingSize of ${(maxBinding / 2 ** 20).toFixed(0)} MiB; process it in smaller chunks`);
  }
  const list = free.get(size);
  let buffer = list?.pop();
  if (!buffer) {
    buffer = device.createBuffer({ size, usage: USAGE(), label: what() });
    stats.allocatedBytes += buffer.size;
    stats.buffers++;
    stats.created++;
  }
  stats.inUseBytes += buffer.size;
  stats.peakInUseBytes = Math.max(stats.peakInUseBytes, stats.inUseBytes);
  return buffer;
}

export function releaseBuffer(buffer: GPUBuffer): void {
  stats.inUseBytes -= buffer.size;
  const key = buffer.size;
  let list = free.get(key);
  if (!list) free.set(key, (list = []));
  list.push(buffer);
}

/** Destroys every cached (unused) buffer. */
export function trimPool(): void {
  for (const list of free.values()) {
    for (const b of list) {
      stats.allocatedBytes -= b.size;
      stats.buffers--;
      b.destroy();
    }
  }
  free.clear();
}

export function poolStats(): PoolStats {
  return { ...stats };
}

export function resetPeak(): void {
  stats.peakInUseBytes = stats.inUseBytes;
}

/** Forgets every buffer (after the device is destroyed). */
export function resetPool(): void {
  free.clear();
  Object.assign(stats, { allocatedBytes: 0, inUseBytes: 0, peakInUseBytes: 0, buffers: 0, created: 0 });
}
