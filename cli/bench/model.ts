// `gramhd bench model`: one generator forward (random weights, batch 1, a frontal camera, locked
// view dependence, truncation 0.7 towards a stored random average) at a configuration's full size,
// split into the stages the generators name (GRAM_STAGES, GRAMHD_STAGES), with each stage's time,
// process CPU time, analytic GFLOP/s and peak GPU memory, and the peak in-use bytes of the forward.
//
// How stages are timed. The forward is synchronous and synchronize() is not, so a stage cannot be
// fenced from inside it. The generators instead take an optional `profile` hook that wraps every
// stage (per chunk of rays where they chunk: the hook is called once per stage *call*); the bench
// uses it to cut the forward short: for each call k of the K calls the forward makes, one run stops
// right after call k (the hook throws once its stage has been encoded; a tidy scope frees what the
// run made), then synchronize() waits for the GPU, and T_k is the wall (and process CPU) time from
// the synchronised start to that point. T_K is a whole forward ending in synchronize(), the total.
// Call k's time is T_k - T_{k-1}: its device work plus host encoding, with the host/device overlap of
// an unsynchronised forward (earlier stages are not fenced). Each T_k is the best of --runs runs,
// capped by T_{k+1} (a prefix cannot take longer than a longer prefix; load only adds time). Stage
// times therefore sum to the total by construction and are >= 0; on a loaded machine a cheap
// stage's difference is noisy (more --runs help). The cost is K forwards per run.
//
// FLOPs are counted analytically from the configuration's layer shapes, multiply-adds only (2 per
// MAC): a linear layer on M rows with an [N, K] weight is 2*M*N*K; a convolution is
// 2*Cout*Cin*k*k*Hout*Wout*N (modulated convolutions the same, the per-sample weight modulation
// not counted). Activations, sin, FiLM, intersection search, sorting, grid sampling and compositing
// are not counted, so the compositing and high-res stages have no GFLOP/s.
import { cpus } from 'node:os';
import { noGrad, ops, synchronize, Tensor, tidy, tidyAsync, type DeviceInfo } from '../../engine/index.ts';
import { poolStats, resetPeak } from '../../engine/buffer-pool.ts';
import { gpuTimeSource } from '../../engine/timing.ts';
import { Random } from '../../engine/nn/random.ts';
import type { Module } from '../../engine/nn/module.ts';
import { cameraFromPose, type Camera } from '../../model/camera.ts';
import { isGramHD, type GeneratorConfig } from '../../model/config.ts';
import { GRAM_STAGES, GramGenerator, manifoldIntersections, type StageProfiler } from '../../model/gram.ts';
import { GRAMHD_STAGES, GramHDGenerator } from '../../model/gramhd.ts';
import type { RadianceNetwork } from '../../model/radiance-network.ts';
import type { RRDBNet } from '../../model/sr/rrdbnet.ts';
import type { StyleRRDBNet } from '../../model/sr/style-rrdbnet.ts';

export interface ModelStageRow {
  stage: string;
  /** Calls of the stage in one forward (chunks of rays). */
  calls: number;
  /** Wall-clock time of the stage (sum over its calls). */
  ms: number;
  /** Process CPU time (all threads) over the same intervals. */
  cpuMs: number;
  percent: number;
  /** Analytic FLOPs of the stage; null where it is not matmul/convolution work. */
  gflop: number | null;
  gflops: number | null;
  /** Highest in-use pool bytes while the stage ran (in the whole-forward run). */
  peakBytes: number;
}

export interface ModelBenchReport {
  adapter: string;
  software: boolean;
  config: string;
  generator: 'GramGenerator' | 'GramHDGenerator';
  imgSize: number;
  /** GRAM-HD: the low-res render's size. */
  lrImgSize: number | null;
  runs: number;
  /** Best whole synchronised forward, wall and CPU. */
  totalMs: number;
  totalCpuMs: number;
  totalGflop: number;
  /** Peak in-use GPU bytes of the forward (resetPeak before, poolStats().peakInUseBytes after). */
  peakInUseBytes: number;
  stages: ModelStageRow[];
  /** GRAM: the best of `runs` renderVisible calls (render's and eval's path), wall ms, whether it
   * shaded only the visible points on this adapter, and the share of points that are visible;
   * null for GRAM-HD (dense). */
  visible: { ms: number; sparse: boolean; shadedFraction: number } | null;
  context: string[];
}

export interface ModelBenchOptions {
  runs?: number;
  /** Overrides img_size (GRAM-HD: must stay lr_img_size times a power of two). */
  imgSize?: number;
  seed?: number;
  onRun?: (run: number, cut: number, calls: number, ms: number) => void;
}

const TRUNCATION = 0.7;

/** Sum of the weights' sizes of the rank-2 (linear) parameters of a module: MACs per row. */
function linearMacs(module: Module): number {
  return module.namedParameters().reduce((s, [, t]) => s + (t.rank === 2 ? t.size : 0), 0);
}

/** MACs per point of the radiance network (its mapping network excluded): the FiLM layers, the
 * colour layer and the heads (sigma and rgb; the feature heads when asked for). */
function radianceMacs(rf: RadianceNetwork, feature: boolean): number {
  const heads = [...rf.output_sigma, ...rf.output_color, ...(feature ? rf.output_feature ?? [] : [])];
  return [...rf.network.map((l) => l.layer), rf.color_layer[0].layer, ...heads].reduce((s, l) => s + l.weight.size, 0);
}

/** FLOPs of an (Style)RRDBNet forward on n images of size lr -> lr * scale: conv_first, the RRDB
 * trunk and trunk_conv at lr, upconv i at lr * 2^i (the convolution comes before each 2x
 * upsampling), HRconv and conv_last at the output size. */
function srFlops(net: StyleRRDBNet | RRDBNet, n: number, lr: number): number {
  const conv = (weight: Tensor, size: number) => 2 * weight.size * size * size * n;
  const trunk = net.RRDB_trunk.namedParameters().filter(([, t]) => t.rank === 4).reduce((s, [, t]) => s + conv(t, lr), 0);
  const out = lr * net.scaleFactor;
  return conv(net.conv_first.weight, lr) + trunk + conv(net.trunk_conv.weight, lr) +
    net.upconvs.reduce((s, c, i) => s + conv(c.weight, lr << i), 0) +
    conv(net.HRconv.weight, out) + conv(net.conv_last.weight, out);
}

/** Analytic FLOPs per stage for batch 1 (see the file comment for what is counted). */
export function stageFlops(generator: GramGenerator): Record<string, number | null> {
  const c = generator.config;
  const rep = generator.representation;
  const s = c.renderer.num_samples;
  const m = c.renderer.num_manifolds;
  const sampleMacs = linearMacs(rep.sample_network);
  const mappingMacs = linearMacs(rep.rf_network.mapping_network);
  if (!(generator instanceof GramHDGenerator) || !isGramHD(c)) {
    const rays = c.img_size ** 2;
    return {
      mapping: 2 * mappingMacs,
      'sample network + intersection': 2 * rays * s * sampleMacs,
      radiance: 2 * rays * m * radianceMacs(rep.rf_network, false),
      compositing: null,
    };
  }
  const hl = c.lr_img_size;
  const rays = hl * hl;
  return {
    mapping: 2 * (mappingMacs + linearMacs(generator.super_resolution.mapping_network)),
    'sample network + intersection': 2 * rays * s * sampleMacs,
    radiance: 2 * rays * m * radianceMacs(rep.rf_network, false),
    compositing: null,
    // the same grid of HL^2 rays as the low-res render, with the feature heads
    'gridding + feature radiance': 2 * rays * s * sampleMacs + 2 * rays * m * radianceMacs(rep.rf_network, true),
    'SR (StyleRRDBNet)': srFlops(generator.super_resolution, m - 1, hl),
    'SR background (RRDBNet)': srFlops(generator.super_resolution_bg, 1, hl),
    'high-res sampling + compositing': null,
  };
}

/**
 * The configuration at another output size, for quicker runs. GRAM renders at it; GRAM-HD keeps
 * lr_img_size and changes the SR scale factor, which must stay a power of two >= 2, keeping the
 * first log2(scale) entries of each SR network's up_channels (the later, narrower steps go).
 */
export function withImgSize(config: GeneratorConfig, imgSize: number | undefined): GeneratorConfig {
  if (imgSize === undefined || imgSize === config.img_size) return config;
  if (!isGramHD(config)) return { ...config, img_size: imgSize };
  const steps = Math.log2(imgSize / config.lr_img_size);
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`--img_size ${imgSize}: a GRAM-HD size must be lr_img_size (${config.lr_img_size}) times a power of two >= 2`);
  }
  const { fg, bg } = config.super_resolution;
  return {
    ...config,
    img_size: imgSize,
    super_resolution: { fg: { ...fg, up_channels: fg.up_channels.slice(0, steps) }, bg: { ...bg, up_channels: bg.up_channels.slice(0, steps) } },
  };
}

class Cut extends Error {}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export async function benchModel(config: GeneratorConfig, info: DeviceInfo, options: ModelBenchOptions = {}): Promise<ModelBenchReport> {
  const runs = options.runs ?? 1;
  const cfg = withImgSize(config, options.imgSize);
  const hd = isGramHD(cfg);
  const rng = new Random(options.seed ?? 0);
  const generator = hd ? new GramHDGenerator(cfg, rng) : new GramGenerator(cfg, rng);
  const stageNames: readonly string[] = hd ? GRAMHD_STAGES : GRAM_STAGES;
  const rf = generator.representation.rf_network;
  const randomTensor = (n: number) => Tensor.fromData(rng.normalArray(n, 0, 0.5), [1, n]);
  const average = { frequencies: randomTensor(rf.codeDim), phase_shifts: randomTensor(rf.codeDim) };
  if (generator instanceof GramHDGenerator) generator.setTruncationAverages(average, randomTensor(generator.super_resolution.styleDim));
  else generator.setTruncationAverage(average);
  average.frequencies.dispose();
  average.phase_shifts.dispose();
  const z = Tensor.fromData(rng.normalArray(cfg.z_dim), [1, cfg.z_dim]);
  const camera = cameraFromPose(Math.PI / 2, Math.PI / 2);
  const forward = (profile: StageProfiler) => tidy(() => noGrad(() => {
    generator.forward(z, [camera], { truncationPsi: TRUNCATION, lockViewDependence: true, profile });
  }));

  try {
    const timed = await timeStages(forward, stageNames, runs, options.onRun);
    const flops = stageFlops(generator);
    const totalMs = timed.totalMs;
    const rows: ModelStageRow[] = timed.stages.map((row) => {
      const f = flops[row.stage] ?? null;
      return {
        ...row,
        percent: (100 * row.ms) / totalMs,
        gflop: f === null ? null : f / 1e9,
        gflops: f === null || row.ms <= 0 ? null : f / 1e6 / row.ms,
      };
    });
    const visible = generator instanceof GramHDGenerator ? null : await timeVisible(generator, z, camera, runs);
    const k = timed.calls;
    const cpu = cpus();
    return {
      adapter: info.adapter,
      software: info.isSoftware,
      config: cfg.name ?? '(unnamed)',
      generator: hd ? 'GramHDGenerator' : 'GramGenerator',
      imgSize: cfg.img_size,
      lrImgSize: isGramHD(cfg) ? cfg.lr_img_size : null,
      runs,
      totalMs,
      totalCpuMs: timed.totalCpuMs,
      totalGflop: Object.values(flops).reduce<number>((s, f) => s + (f ?? 0), 0) / 1e9,
      peakInUseBytes: timed.peakInUseBytes,
      stages: rows,
      visible,
      context: [
        `cpus: ${cpu.length} x ${cpu[0]?.model.trim() ?? '?'}${info.isSoftware ? ' (software adapter: kernels run on the host CPU; CPU ms is the process CPU time, all threads, robust to other load)' : ''}`,
        `forward: batch 1, frontal camera, locked view dependence, truncation ${TRUNCATION} towards a random stored average, random weights; device timer available: ${gpuTimeSource()} (unused: stages are fenced by synchronize())`,
        `stages: each stage call k is timed as T_k - T_{k-1}, T_k a forward cut short after call k and synchronised (best of ${runs} run${runs > 1 ? 's' : ''}, capped by T_{k+1}); ${k} stage calls, ${k} forwards per run`,
        'GFLOP: analytic multiply-adds x 2 of the linear layers and convolutions only (none for compositing and sampling stages)',
      ],
    };
  } finally {
    z.dispose();
    generator.dispose();
  }
}

/** Best of `runs` renderVisible calls after a warm-up, and the share of points it shades (the valid
 * intersections and every background point, of all of them). */
async function timeVisible(generator: GramGenerator, z: Tensor, camera: Camera, runs: number): Promise<{ ms: number; sparse: boolean; shadedFraction: number }> {
  const options = { truncationPsi: TRUNCATION, lockViewDependence: true };
  const once = async () => {
    await synchronize();
    const t = performance.now();
    const out = await generator.renderVisible(z, [camera], options);
    await out.image.data();
    const ms = performance.now() - t;
    out.image.dispose();
    out.depth.dispose();
    return ms;
  };
  await once();
  let best = Infinity;
  for (let r = 0; r < runs; r++) best = Math.min(best, await once());
  // the intersections alone (sample network, no radiance) say which points are valid
  const { config } = generator;
  const valid = await tidyAsync(() => noGrad(() => {
    const { isValid } = manifoldIntersections(generator.representation, [camera], { camera: config.camera, renderer: config.renderer, imgSize: config.img_size });
    return ops.mean(isValid).data();
  }));
  const levels = config.renderer.num_manifolds - 1;
  return { ms: best, sparse: generator.shadesSparsely(), shadedFraction: (valid[0] * levels + 1) / (levels + 1) };
}

/** Per-stage times of a synchronous GPU computation (see the file comment): totals and per stage. */
export interface StageTimes {
  /** Best whole synchronised run, wall and process CPU. */
  totalMs: number;
  totalCpuMs: number;
  /** Peak in-use pool bytes of the whole run. */
  peakInUseBytes: number;
  /** Stage calls in one run. */
  calls: number;
  stages: { stage: string; calls: number; ms: number; cpuMs: number; peakBytes: number }[];
}

/**
 * Times each stage of `run` (which must call `profile` around its stages, e.g. a generator forward,
 * and free what it makes) by cutting it short after each stage call in turn (the file comment
 * explains how): one warm-up run, then `runs` x (stage calls) runs. Rows in `stageNames` order.
 */
export async function timeStages(run: (profile: StageProfiler) => void, stageNames: readonly string[], runs: number,
  onRun?: (run: number, cut: number, calls: number, ms: number) => void): Promise<StageTimes> {
  // warm-up (pipelines, buffer pool) that also records the sequence of stage calls
  const calls: string[] = [];
  run((stage, fn) => {
    calls.push(stage);
    return fn();
  });
  await synchronize();
  for (const stage of calls) if (!stageNames.includes(stage)) throw new Error(`bench: unexpected stage '${stage}'`);

  const k = calls.length;
  const bestWall = new Array<number>(k).fill(Infinity);
  const bestCpu = new Array<number>(k).fill(Infinity);
  const stagePeak = new Map<string, number>();
  let peakInUseBytes = 0;
  for (let r = 0; r < runs; r++) {
    for (let cut = 1; cut <= k; cut++) {
      const whole = cut === k;
      let made = 0;
      let overall = 0;
      const profile: StageProfiler = (stage, fn) => {
        if (whole) {
          overall = Math.max(overall, poolStats().peakInUseBytes);
          resetPeak();
        }
        const result = fn();
        if (whole) stagePeak.set(stage, Math.max(stagePeak.get(stage) ?? 0, poolStats().peakInUseBytes));
        if (++made === cut && !whole) throw new Cut();
        return result;
      };
      await synchronize();
      if (whole) resetPeak();
      const wall0 = performance.now();
      const cpu0 = cpuNow();
      try {
        run(profile);
      } catch (e) {
        if (!(e instanceof Cut)) throw e;
      }
      if (whole) peakInUseBytes = Math.max(peakInUseBytes, overall, poolStats().peakInUseBytes);
      await synchronize();
      const wall = performance.now() - wall0;
      bestWall[cut - 1] = Math.min(bestWall[cut - 1], wall);
      bestCpu[cut - 1] = Math.min(bestCpu[cut - 1], cpuNow() - cpu0);
      onRun?.(r + 1, cut, k, wall);
    }
  }

  // a prefix of the run cannot take longer than a longer one; other load only adds time, so
  // each T_k is capped by T_{k+1} (from the whole run down), which keeps stage times >= 0
  for (let i = k - 2; i >= 0; i--) {
    bestWall[i] = Math.min(bestWall[i], bestWall[i + 1]);
    bestCpu[i] = Math.min(bestCpu[i], bestCpu[i + 1]);
  }
  const stages = stageNames.filter((name) => calls.includes(name)).map((stage) => {
    let ms = 0;
    let cpuMs = 0;
    calls.forEach((name, i) => {
      if (name !== stage) return;
      ms += bestWall[i] - (i > 0 ? bestWall[i - 1] : 0);
      cpuMs += bestCpu[i] - (i > 0 ? bestCpu[i - 1] : 0);
    });
    return { stage, calls: calls.filter((name) => name === stage).length, ms, cpuMs, peakBytes: stagePeak.get(stage) ?? 0 };
  });
  return { totalMs: bestWall[k - 1], totalCpuMs: bestCpu[k - 1], peakInUseBytes, calls: k, stages };
}

/** The report as a table: adapter header, then one row per stage and the total. */
export function printModelTable(report: ModelBenchReport): void {
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`adapter: ${report.adapter}`);
  for (const line of report.context) console.log(line);
  console.log(`config: ${report.config} (${report.generator}), ${report.imgSize}x${report.imgSize}${report.lrImgSize ? ` from ${report.lrImgSize}x${report.lrImgSize}` : ''}, batch 1`);
  console.log(`forward: ${(report.totalMs / 1000).toFixed(2)} s per image (CPU ${(report.totalCpuMs / 1000).toFixed(2)} s), ` +
    `${report.totalGflop.toFixed(2)} GFLOP counted, peak in-use GPU memory ${mib(report.peakInUseBytes)} MiB`);
  console.log();
  const rows = [
    ['stage', 'calls', 'ms', 'CPU ms', '%', 'GFLOP', 'GFLOP/s', 'peak MiB'],
    ...report.stages.map((r) => [r.stage, String(r.calls), r.ms.toFixed(1), r.cpuMs.toFixed(1), r.percent.toFixed(1),
      r.gflop === null ? '-' : r.gflop.toFixed(3), r.gflops === null ? '-' : r.gflops.toFixed(2), mib(r.peakBytes)]),
    ['total', '', report.totalMs.toFixed(1), report.totalCpuMs.toFixed(1), '100.0', report.totalGflop.toFixed(3),
      (report.totalGflop * 1000 / report.totalMs).toFixed(2), mib(report.peakInUseBytes)],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  if (report.visible) {
    console.log();
    const visible = `${(100 * report.visible.shadedFraction).toFixed(1)}% of the points are visible here`;
    console.log(`render and eval (${report.visible.sparse ? `shading the visible points only; ${visible}` : `dense on this adapter and model; ${visible}`}): ` +
      `${(report.visible.ms / 1000).toFixed(2)} s per image (the dense forward: ${(report.totalMs / 1000).toFixed(2)} s)`);
  }
}
