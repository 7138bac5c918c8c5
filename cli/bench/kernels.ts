// `gramhd bench kernels`: times the engine's heavy kernels at the shapes the model runs them at
// (matmul for the radiance network's linear layers and their gradients, 3x3 convolutions of the
// super-resolution network and their gradients) plus memory-bound references (elementwise, reduction), and reports
// each as time, GFLOP/s and GB/s of the minimal traffic (every input read once, output written
// once), with the adapter and what bounds it.
import { cpus } from 'node:os';
import { ops, Tensor, tidy, type DeviceInfo } from '../../engine/index.ts';
import { fixedSubgroupSize, resolveMatmulKernel, type MatmulKernelChoice } from '../../engine/ops/matmul.ts';
import { gpuTimeSource, timeGpu } from '../../engine/timing.ts';

export interface BenchRow {
  kernel: string;
  shape: string;
  /** Best and median of the timed runs. */
  ms: number;
  medianMs: number;
  gflops: number | null;
  gbps: number;
  /** Software adapters: the least CPU time this process spent on one run (all the adapter's
   * threads), which other load on the machine inflates far less than the elapsed time. */
  cpuMs: number | null;
}

export interface BenchReport {
  adapter: string;
  software: boolean;
  timing: 'timestamps' | 'wall-clock';
  context: string[];
  rows: BenchRow[];
}

interface BenchCase {
  kernel: string;
  shape: string;
  flops: number | null;
  bytes: number;
  /** Makes the inputs (disposed after the case) and the work to time, which frees what it makes. */
  setup: () => { inputs: Tensor[]; work: () => void };
}

const F32 = 4;
const random = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
  return Tensor.fromData(data, shape);
};

/** op(A) [m, k] x op(B) [k, n] with the chosen kernel; A is stored [k, m] when ta, B [n, k] when tb. */
function matmulCase(label: string, m: number, n: number, k: number, ta: boolean, tb: boolean, kernel: MatmulKernelChoice): BenchCase {
  return {
    kernel: kernel === 'auto' ? `matmul (auto: ${resolveMatmulKernel('auto')})` : `matmul (${kernel})`,
    shape: `${label}${label ? ': ' : ''}${m}x${k}${ta ? ' (A^T)' : ''} · ${k}x${n}${tb ? ' (B^T)' : ''}`,
    flops: 2 * m * n * k,
    bytes: F32 * (m * k + k * n + m * n),
    setup: () => {
      const a = random(ta ? [k, m] : [m, k]);
      const b = random(tb ? [n, k] : [k, n]);
      return { inputs: [a, b], work: () => tidy(() => { ops.matmul(a, b, { transA: ta, transB: tb, kernel }); }) };
    },
  };
}

function conv3x3Case(batch: number, channels: number, size: number): BenchCase {
  const outputs = batch * channels * size * size;
  return {
    kernel: 'conv2d 3x3',
    shape: `[${batch}, ${channels}, ${size}, ${size}] -> ${channels} ch, pad 1`,
    flops: 2 * outputs * channels * 9,
    bytes: F32 * (2 * outputs + channels * channels * 9 + channels),
    setup: () => {
      const x = random([batch, channels, size, size]);
      const w = random([channels, channels, 3, 3]);
      const b = random([channels]);
      return { inputs: [x, w, b], work: () => tidy(() => { ops.conv2d(x, w, b, { padding: 1 }); }) };
    },
  };
}

/** The two gradients of conv3x3Case's convolution, each one op: dL/dx (the transposed
 * convolution) and dL/dW (summed over the batch), as training runs them. */
function conv3x3GradCase(of: 'input' | 'weight', batch: number, channels: number, size: number): BenchCase {
  const outputs = batch * channels * size * size;
  const weightShape = [channels, channels, 3, 3];
  const inputShape = [batch, channels, size, size];
  return {
    kernel: `conv2d 3x3 dL/d${of === 'input' ? 'x' : 'W'}`,
    shape: `[${batch}, ${channels}, ${size}, ${size}] -> ${channels} ch, pad 1`,
    flops: 2 * outputs * channels * 9,
    bytes: F32 * (2 * outputs + channels * channels * 9),
    setup: () => {
      const gy = random(inputShape);
      if (of === 'input') {
        const w = random(weightShape);
        return { inputs: [gy, w], work: () => tidy(() => { ops.conv2dTransposeInput(gy, w, inputShape, { padding: 1 }); }) };
      }
      const x = random(inputShape);
      return { inputs: [x, gy], work: () => tidy(() => { ops.conv2dWeightGrad(x, gy, weightShape, { padding: 1 }); }) };
    },
  };
}

const M16 = 1 << 24;

function benchCases(quick: boolean): BenchCase[] {
  const matmulKernels: MatmulKernelChoice[] = ['reference', 'tiled'];
  if (fixedSubgroupSize() !== null) matmulKernels.push('subgroup');
  const rays = 16384;
  return [
    ...matmulKernels.map((kernel) => matmulCase('', 1024, 1024, 1024, false, false, kernel)),
    matmulCase('', 1024, 1024, 1024, false, true, 'auto'),
    // radiance network: linear layers x W^T on N rays, and the two gradients of the 256-wide one
    matmulCase('linear 3->256', rays, 256, 3, false, true, 'auto'),
    matmulCase('linear 256->256', rays, 256, 256, false, true, 'auto'),
    ...(quick ? [] : [matmulCase('linear 256->256', 64 * 64 * 24, 256, 256, false, true, 'auto')]),
    matmulCase('linear 128->128', rays, 128, 128, false, true, 'auto'),
    matmulCase('dL/dx of 256->256', rays, 256, 256, false, false, 'auto'),
    matmulCase('dL/dW of 256->256', 256, 256, rays, true, false, 'auto'),
    // super-resolution network: 64-channel 3x3 convolutions at 64^2 and 128^2, and their gradients
    conv3x3Case(4, 64, 64),
    conv3x3Case(4, 64, 128),
    conv3x3GradCase('input', 4, 64, 64),
    conv3x3GradCase('weight', 4, 64, 64),
    {
      kernel: 'add', shape: '16M + 16M', flops: M16, bytes: 3 * F32 * M16,
      setup: () => { const a = random([M16]); const b = random([M16]); return { inputs: [a, b], work: () => tidy(() => { ops.add(a, b); }) }; },
    },
    {
      kernel: 'sin', shape: '16M', flops: null, bytes: 2 * F32 * M16,
      setup: () => { const a = random([M16]); return { inputs: [a], work: () => tidy(() => { ops.sin(a); }) }; },
    },
    {
      kernel: 'sum', shape: '16M -> 1', flops: M16, bytes: F32 * (M16 + 1),
      setup: () => { const a = random([M16]); return { inputs: [a], work: () => tidy(() => { ops.sum(a); }) }; },
    },
  ];
}

/** Host memory bandwidth (one thread copying 64 MiB), the roofline a CPU adapter's memory-bound
 * kernels are held to. */
function hostCopyGBps(): number {
  const src = new Float32Array(M16);
  const dst = new Float32Array(M16);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - start);
  }
  return (2 * src.byteLength) / best / 1e6;
}

function adapterContext(info: DeviceInfo, timing: BenchReport['timing']): string[] {
  const l = info.limits;
  const lines = [
    `limits: storage binding ${(l.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup memory ${l.maxComputeWorkgroupStorageSize / 1024} KiB, ` +
      `${l.maxComputeInvocationsPerWorkgroup} invocations/workgroup, subgroup size ${fixedSubgroupSize() ?? 'varies or none'}, features: ${[...info.features].join(', ') || 'none'}`,
    timing === 'timestamps'
      ? 'timing: compute-pass timestamps (device time, unquantised: Node asks Dawn for full resolution); best and median of the runs'
      : 'timing: wall clock around synchronize() (includes submit and readback latency); best and median of the runs',
  ];
  if (info.isSoftware) {
    const cpu = cpus();
    lines.push(`software adapter: kernels run on the host CPU (${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown'}); ` +
      `roofline reference: host memcpy ${hostCopyGBps().toFixed(1)} GB/s on one thread, no GPU peak applies; ` +
      'CPU ms is the process CPU time of the best run, all cores together (robust to other load)');
  } else {
    lines.push('hardware adapter: WebGPU does not report peak FLOP/s or bandwidth; compare with the vendor figures');
  }
  return lines;
}

export async function benchKernels(info: DeviceInfo, options: { quick: boolean; onRow?: (row: BenchRow) => void }): Promise<BenchReport> {
  const timing = gpuTimeSource();
  const warmup = options.quick ? 1 : 2;
  const runs = options.quick ? 3 : 7;
  const rows: BenchRow[] = [];
  for (const c of benchCases(options.quick)) {
    const { inputs, work } = c.setup();
    const times: number[] = [];
    let cpuMs = Infinity;
    for (let i = 0; i < warmup + runs; i++) {
      const cpuStart = process.cpuUsage();
      const { ms } = await timeGpu(work);
      const cpu = process.cpuUsage(cpuStart);
      if (i >= warmup) {
        times.push(ms);
        cpuMs = Math.min(cpuMs, (cpu.user + cpu.system) / 1000);
      }
    }
    times.sort((a, b) => a - b);
    const ms = times[0];
    const row: BenchRow = {
      kernel: c.kernel, shape: c.shape, ms, medianMs: times[Math.floor(times.length / 2)],
      gflops: c.flops === null ? null : c.flops / ms / 1e6, gbps: c.bytes / ms / 1e6,
      cpuMs: info.isSoftware ? cpuMs : null,
    };
    rows.push(row);
    options.onRow?.(row);
    for (const t of inputs) t.dispose();
  }
  return { adapter: info.adapter, software: info.isSoftware, timing, context: adapterContext(info, timing), rows };
}

export const BENCH_COLUMNS = ['kernel', 'shape', 'best ms', 'median ms', 'GFLOP/s', 'GB/s', 'CPU ms'];

/** Three significant digits (whole numbers from 100). */
const figure = (v: number) => (v >= 100 ? v.toFixed(0) : v > 0 ? v.toPrecision(3) : '0');

export function benchCells(row: BenchRow): string[] {
  return [row.kernel, row.shape, figure(row.ms), figure(row.medianMs), row.gflops === null ? '-' : figure(row.gflops), figure(row.gbps), row.cpuMs === null ? '-' : figure(row.cpuMs)];
}
