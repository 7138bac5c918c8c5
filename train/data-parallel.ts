// Data-parallel training with DDP's semantics over a Collective (train/collective.ts): every rank
// starts from rank 0's weights, computes gradients on its own batch, and replaces them by the mean
// over ranks before clipping and Adam, so that every rank keeps identical weights, optimiser state
// and EMAs. The gradients travel through the host: packed on the GPU into one flat buffer, read back
// once, summed by the collective, scaled by 1 / size and uploaded.
import { synchronize, Tensor } from '../engine/index.ts';
import { readbackConcat, withEncoder } from '../engine/runtime.ts';
import { assign } from '../engine/nn/assign.ts';
import type { Module } from '../engine/nn/module.ts';
import { assertRanksAgree, type Collective } from './collective.ts';

/** Bytes and milliseconds of the gradient exchanges so far, for the timing notes in the log. */
export interface ExchangeStats {
  calls: number;
  bytes: number;
  /** Summed over calls: waiting for this rank's GPU work to finish (the backward), then for the
   * slowest rank (a barrier), then the packed readback, the allreduce proper, and scale + upload. */
  gpuWaitMs: number;
  rankWaitMs: number;
  readbackMs: number;
  allreduceMs: number;
  uploadMs: number;
}

export function newExchangeStats(): ExchangeStats {
  return { calls: 0, bytes: 0, gpuWaitMs: 0, rankWaitMs: 0, readbackMs: 0, allreduceMs: 0, uploadMs: 0 };
}

/** One flat float32 host copy of the tensors, in order: buffer copies into one staging buffer, one map. */
async function readPacked(tensors: readonly Tensor[]): Promise<Float32Array> {
  return new Float32Array(await readbackConcat(tensors.map((t) => ({ buffer: t.buffer, bytes: t.size * 4 }))));
}

/** New tensors of the given shapes holding consecutive parts of `host`: one upload of the whole
 * buffer, then GPU copies out of it (instead of one write and submit per tensor). */
function uploadUnpacked(host: Float32Array, shapes: readonly (readonly number[])[]): Tensor[] {
  const flat = Tensor.fromData(host, [host.length]);
  try {
    const out = shapes.map((shape) => Tensor.empty(shape).keep());
    withEncoder((enc) => {
      let offset = 0;
      for (const t of out) {
        if (t.size > 0) enc.copyBufferToBuffer(flat.buffer, offset, t.buffer, 0, t.size * 4);
        offset += t.size * 4;
      }
    });
    return out;
  } finally {
    flat.dispose();
  }
}

/**
 * Replaces the gradient of every parameter that has one by its mean over the world. Every rank must
 * call it at the same point with the same parameters (the model's structure fixes which have
 * gradients); a size-1 world returns at once.
 */
export async function averageGradients(world: Collective, params: readonly Tensor[], stats?: ExchangeStats): Promise<void> {
  if (world.size === 1) return;
  const withGrad = params.filter((p) => p.grad);
  if (withGrad.length === 0) return;
  // the readback would wait for the backward anyway: waiting first, and for the slowest rank
  // (a barrier, microseconds), lets the timings below show the exchange's own cost
  const tStart = performance.now();
  await synchronize();
  const tGpu = performance.now();
  world.barrier();
  const t0 = performance.now();
  const host = await readPacked(withGrad.map((p) => p.grad!));
  const t1 = performance.now();
  world.allreduceSum(host);
  const t2 = performance.now();
  // a power-of-two world divides exactly; others round once, as DDP's division does
  const scale = 1 / world.size;
  for (let i = 0; i < host.length; i++) host[i] *= scale;
  const grads = uploadUnpacked(host, withGrad.map((p) => p.shape));
  withGrad.forEach((p, i) => {
    p.grad!.dispose();
    p.grad = grads[i];
  });
  const t3 = performance.now();
  if (stats) {
    stats.calls++;
    stats.bytes += host.byteLength;
    stats.gpuWaitMs += tGpu - tStart;
    stats.rankWaitMs += t0 - tGpu;
    stats.readbackMs += t1 - t0;
    stats.allreduceMs += t2 - t1;
    stats.uploadMs += t3 - t2;
  }
}

/**
 * Copies rank 0's parameters and buffers of each module into every rank (DDP's start), after the
 * ranks have checked that they hold the same tensors (names and shapes): a mismatch stops every
 * rank with one message instead of a collective of different lengths.
 */
export async function broadcastModules(world: Collective, modules: readonly Module[]): Promise<void> {
  if (world.size === 1) return;
  const tensors = modules.flatMap((m) => [...m.stateDict()]);
  const layout = tensors.map(([name, t]) => `${name}[${t.shape.join('x')}]`).join(',');
  const count = tensors.reduce((n, [, t]) => n + t.size, 0);
  assertRanksAgree(world, 'the model (parameter names and shapes)', `${count} values: ${layout}`);
  const host = world.rank === 0 ? await readPacked(tensors.map(([, t]) => t)) : new Float32Array(count);
  world.broadcast(host, 0);
  if (world.rank === 0) return;
  let offset = 0;
  for (const [, t] of tensors) {
    assign(t, host.subarray(offset, offset + t.size));
    offset += t.size;
  }
}

/** The mean of each loss term over the world (NaN on any rank makes the mean NaN on every rank, so
 * all ranks stop at the same step). */
export function averageLosses(world: Collective, log: Record<string, number>): Record<string, number> {
  if (world.size === 1) return log;
  const keys = Object.keys(log).sort();
  const values = new Float64Array(keys.map((k) => log[k]));
  world.allreduceSum(values);
  return Object.fromEntries(keys.map((k, i) => [k, values[i] / world.size]));
}

/** A 64-bit FNV-1a hash of tensors' float32 bits, as hex: equal weights on every rank give equal hashes. */
export async function hashTensors(tensors: readonly Tensor[]): Promise<string> {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = (1n << 64n) - 1n;
  for (const t of tensors) {
    const words = new Uint32Array((await t.toFloat32()).buffer);
    // fold 32-bit words (BigInt per word is slow; mix two 32-bit halves instead)
    let lo = Number(h & 0xffffffffn) >>> 0;
    let hi = Number(h >> 32n) >>> 0;
    for (let i = 0; i < words.length; i++) {
      lo = Math.imul(lo ^ words[i], 0x01000193) >>> 0;
      hi = Math.imul(hi ^ lo, 0x01000193) >>> 0;
    }
    h = ((BigInt(hi) << 32n) | BigInt(lo)) * prime & mask;
  }
  return h.toString(16).padStart(16, '0');
}
