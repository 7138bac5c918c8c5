// Kernel dispatch: pipelines cached by kernel key, dispatches batched into one command encoder and
// one compute pass until a readback, an upload or the batch limit forces a submit. Each dispatch's
// uniforms go into one shared arena that is written with a single writeBuffer before the submit
// (queue order makes reusing it for the next batch safe).
import { engineDevice, gpuErrorCount, reportGpuError, throwPendingGpuError } from './device.ts';
import * as kernelProfile from './kernel-profile.ts';
import { awaitGpu } from './gpu-wait.ts';
import type { Kernel } from '../kernels/kernel.ts';

export type { Kernel };

const MAX_DISPATCHES_PER_SUBMIT = 512;
const UNIFORM_ARENA_BYTES = 1 << 18;

const pipelines = new Map<string, GPUComputePipeline>();
/** getBindGroupLayout makes a new object on every call in Dawn; one per pipeline is enough. */
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let dispatches = 0;
const arena = new Uint8Array(UNIFORM_ARENA_BYTES);
let arenaUsed = 0;
let uniformBuffer: GPUBuffer | null = null;
let uniformDevice: GPUDevice | null = null;
/** GPU errors seen when the pending encoder was created: work recorded before an error may use
 * invalid objects, so such an encoder is dropped instead of submitted. */
let encoderErrorCount = 0;
/** Set by timedPass while it encodes: the next compute pass writes these timestamps. */
let passTimestamps: GPUComputePassTimestampWrites | undefined;
let passesBegun = 0;

/** Kernels whose pipeline failed to build, with the reason: using one again throws at once. */
const brokenKernels = new Map<string, string>();

function pipelineFor(kernel: Kernel, device: GPUDevice): GPUComputePipeline {
  const broken = brokenKernels.get(kernel.key);
  if (broken) throw new Error(`GPU error: kernel ${kernel.key} does not compile: ${broken}`);
  let p = pipelines.get(kernel.key);
  if (!p) {
    const code = typeof kernel.code === 'string' ? kernel.code : kernel.code();
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: kernel.key });
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: kernel.key });
    void device.popErrorScope().then((e) => {
      if (!e) return;
      const reason = e.message.split('\n')[0];
      brokenKernels.set(kernel.key, reason);
      pipelines.delete(kernel.key);
      reportGpuError(`GPU error: kernel ${kernel.key} does not compile: ${reason}`);
    });
    pipelines.set(kernel.key, p);
  }
  return p;
}

function ensureEncoder(device: GPUDevice): GPUCommandEncoder {
  if (uniformDevice !== device) {
    pipelines.clear();
    uniformBuffer = device.createBuffer({ size: UNIFORM_ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    uniformDevice = device;
    // work pending from a lost device cannot be submitted to the new one
    encoder = null;
    pass = null;
    dispatches = 0;
    arenaUsed = 0;
  }
  if (encoder && gpuErrorCount() !== encoderErrorCount) {
    // an error surfaced since this encoder began: what it holds belongs to the failed work
    encoder = null;
    pass = null;
    dispatches = 0;
    arenaUsed = 0;
  }
  if (!encoder) {
    encoder = device.createCommandEncoder();
    encoderErrorCount = gpuErrorCount();
  }
  return encoder;
}

/** Splits a 1-D workgroup count over x and y when it exceeds the per-dimension limit. */
export function foldGroups(groups: number, maxPerDim: number): [number, number, number] {
  if (groups <= maxPerDim) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/** Encodes one dispatch of `kernel` over `groups` workgroups. */
export function dispatch(kernel: Kernel, buffers: GPUBuffer[], uniforms: ArrayBufferView | null, groups: [number, number, number] | number): void {
  const { device, info } = engineDevice();
  const align = info.limits.minUniformBufferOffsetAlignment;
  if (uniforms && arenaUsed + Math.ceil(uniforms.byteLength / align) * align > UNIFORM_ARENA_BYTES) flush();
  const enc = ensureEncoder(device);
  const pipeline = pipelineFor(kernel, device);
  const entries: GPUBindGroupEntry[] = [];
  if (uniforms) {
    const offset = arenaUsed;
    arena.set(new Uint8Array(uniforms.buffer, uniforms.byteOffset, uniforms.byteLength), offset);
    arenaUsed += Math.ceil(uniforms.byteLength / align) * align;
    entries.push({ binding: 0, resource: { buffer: uniformBuffer!, offset, size: uniforms.byteLength } });
  }
  const first = uniforms ? 1 : 0;
  buffers.forEach((buffer, i) => entries.push({ binding: first + i, resource: { buffer } }));
  let layout = layouts.get(pipeline);
  if (!layout) layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
  const bindGroup = device.createBindGroup({ layout, entries });
  const profiled = kernelProfile.kernelProfileActive() && !passTimestamps;
  if (profiled) {
    pass?.end();
    pass = enc.beginComputePass({ timestampWrites: kernelProfile.profiledPassWrites(kernel.key) });
  }
  pass ??= beginPass(enc);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  const g = typeof groups === 'number' ? foldGroups(groups, info.limits.maxComputeWorkgroupsPerDimension) : groups;
  pass.dispatchWorkgroups(g[0], g[1], g[2]);
  if (profiled) {
    pass.end();
    pass = null;
  }
  if (++dispatches >= MAX_DISPATCHES_PER_SUBMIT) flush();
}

function beginPass(enc: GPUCommandEncoder): GPUComputePassEncoder {
  passesBegun++;
  return enc.beginComputePass(passTimestamps ? { timestampWrites: passTimestamps } : undefined);
}

/** Encodes the dispatches `fn` makes in a compute pass of their own that writes `timestamps` at its
 * start and end (GPU timing; needs the timestamp-query feature). The work must fit one pass: no
 * uploads, readbacks or more dispatches than one submit holds. */
export function timedPass(timestamps: GPUComputePassTimestampWrites, fn: () => void): void {
  const enc = ensureEncoder(engineDevice().device);
  pass?.end();
  pass = null;
  const before = passesBegun;
  passTimestamps = timestamps;
  try {
    fn();
    if (encoder !== enc || passesBegun - before > 1) throw new Error('timedPass: the timed work did not fit one compute pass (it flushed)');
    pass ??= beginPass(enc);
  } finally {
    passTimestamps = undefined;
  }
  pass.end();
  pass = null;
}

/** Gives access to the pending encoder outside a compute pass (copies, timestamp resolves). */
export function withEncoder(fn: (encoder: GPUCommandEncoder) => void): void {
  const { device } = engineDevice();
  const enc = ensureEncoder(device);
  pass?.end();
  pass = null;
  fn(enc);
}

/**
 * Copies `bytes` from each source offset to its destination offset (byte offsets, multiples of 4)
 * with the encoder's buffer copies instead of a kernel: a memcpy on CPU adapters, where a copy
 * kernel pays a per-lane load and store per element, and a DMA on GPUs. The buffers must differ.
 * Returns false, encoding nothing, inside a timedPass, whose work must stay in one compute pass.
 */
export function copyBufferRuns(src: GPUBuffer, dst: GPUBuffer, runs: readonly { from: number; to: number }[], bytes: number): boolean {
  if (passTimestamps) return false;
  withEncoder((enc) => {
    for (const { from, to } of runs) enc.copyBufferToBuffer(src, from, dst, to, bytes);
  });
  dispatches += runs.length;
  if (dispatches >= MAX_DISPATCHES_PER_SUBMIT) flush();
  return true;
}

/** Submits everything encoded so far. */
export function flush(): void {
  if (!encoder) return;
  const { device } = engineDevice();
  pass?.end();
  pass = null;
  if (gpuErrorCount() !== encoderErrorCount) {
    encoder = null;
    dispatches = 0;
    arenaUsed = 0;
    throwPendingGpuError();
    throw new Error('GPU error: work recorded before an earlier GPU error was dropped');
  }
  if (arenaUsed > 0) device.queue.writeBuffer(uniformBuffer!, 0, arena, 0, arenaUsed);
  const readProfile = kernelProfile.resolveProfiledSubmit(encoder);
  device.queue.submit([encoder.finish()]);
  readProfile?.();
  encoder = null;
  dispatches = 0;
  arenaUsed = 0;
}

/** Writes host data into a GPU buffer, after the work that may still read its previous contents. */
export function upload(buffer: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
  const { device } = engineDevice();
  flush();
  device.queue.writeBuffer(buffer, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
}

/** Copies `bytes` from `buffer` back to the host. */
export async function readback(buffer: GPUBuffer, bytes: number, offsetBytes = 0): Promise<ArrayBuffer> {
  const out = await readbackConcat([{ buffer, bytes: Math.ceil(bytes / 4) * 4, offsetBytes }]);
  return out.byteLength === bytes ? out : out.slice(0, bytes);
}

/** Copies `bytes` (a multiple of 4) of each buffer, from its `offsetBytes`, back to the host one
 * after another, through one staging buffer and one map: a single GPU round trip for many tensors. */
export async function readbackConcat(parts: readonly { buffer: GPUBuffer; bytes: number; offsetBytes?: number }[]): Promise<ArrayBuffer> {
  const { device } = engineDevice();
  const total = parts.reduce((n, p) => n + p.bytes, 0);
  const staging = device.createBuffer({ size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  withEncoder((enc) => {
    let offset = 0;
    for (const p of parts) {
      if (p.bytes > 0) enc.copyBufferToBuffer(p.buffer, p.offsetBytes ?? 0, staging, offset, p.bytes);
      offset += p.bytes;
    }
  });
  flush();
  try {
    await awaitGpu(staging.mapAsync(GPUMapMode.READ));
  } catch (e) {
    throwPendingGpuError();
    throw e;
  }
  throwPendingGpuError();
  const out = staging.getMappedRange().slice(0, total);
  staging.unmap();
  staging.destroy();
  return out;
}

/** Waits until the GPU has finished all submitted work. */
export async function synchronize(): Promise<void> {
  flush();
  await awaitGpu(engineDevice().device.queue.onSubmittedWorkDone());
  throwPendingGpuError();
}


/** Starts timing every dispatch by kernel key (see kernel-profile.ts). */
export function startKernelProfile(): void {
  flush();
  kernelProfile.startKernelProfile(MAX_DISPATCHES_PER_SUBMIT);
}

/** Ends the profile started by startKernelProfile: GPU time per kernel key, slowest first. */
export function stopKernelProfile(): Promise<kernelProfile.KernelTime[]> {
  return kernelProfile.stopKernelProfile(flush);
}

/** Drops a running profile unread (a profiled run that failed). */
export const discardKernelProfile = kernelProfile.discardKernelProfile;
