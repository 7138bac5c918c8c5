// `gramhd bench orbit`: what rendering many views of one latent costs with a bake (model/orbit.ts)
// against the full forward per view, for a GRAM-HD configuration with random weights (batch 1,
// truncation 0.7 towards a random stored average, locked view dependence): the bake's time, the
// time per view from the bake (geometry-only, as an orbit viewer renders; and with the low-res image
// too, as `gramhd render` writes it), the full forward's time, peak GPU memory of each, the bytes the
// bake holds, the equivalence of view(bake(z)) and the full forward for the first camera, and the
// error float16-rounded textures cost.
//
// Every time is wall clock from a synchronize() to a synchronize(). The views are timed one by one
// after a warm-up view (pipelines); their stages are split as `bench model` splits a forward
// (timeStages: one cut-short run per stage call). The bake and the full forward run --runs times
// each (best of), cold the first time (on a software adapter pipeline compilation is a few seconds
// of minutes); with --stages they are split into stages the same way, costing one run per stage call.
import { cpus } from 'node:os';
import { noGrad, synchronize, Tensor, tidy, type DeviceInfo } from '../../engine/index.ts';
import { poolStats, resetPeak } from '../../engine/buffer-pool.ts';
import { Random } from '../../engine/nn/random.ts';
import { cameraFromPose, type Camera } from '../../model/camera.ts';
import { isGramHD, type GeneratorConfig } from '../../model/config.ts';
import { GRAMHD_STAGES, GramHDGenerator } from '../../model/gramhd.ts';
import type { StageProfiler } from '../../model/gram.ts';
import { bake, bakeBytes, roundedToF16, view, type GramHDBake } from '../../model/orbit.ts';
import { fixedViews } from '../commands/render.ts';
import { relativeError } from '../verify/compare.ts';
import { timeStages, withImgSize, type StageTimes } from './model.ts';

const TRUNCATION = 0.7;

export interface OrbitBenchOptions {
  /** Overrides img_size (lr_img_size times a power of two). */
  imgSize?: number;
  /** Views timed one by one (poses of the video's orbit). */
  views?: number;
  /** Runs of the bake and the full forward (best of), and of the view stage split. */
  runs?: number;
  /** Also split the bake and the full forward into stages (one run per stage call). */
  stages?: boolean;
  seed?: number;
  onProgress?: (line: string) => void;
}

export interface ViewTimes {
  /** Per view, in order: wall and process CPU time (all threads; on a software adapter the work
   * itself, robust to other load). */
  ms: number[];
  cpuMs: number[];
  medianMs: number;
  medianCpuMs: number;
  minMs: number;
  peakInUseBytes: number;
}

export interface OrbitBenchReport {
  adapter: string;
  software: boolean;
  config: string;
  imgSize: number;
  lrImgSize: number;
  /** The bake: total (and stages with --stages), peak in-use GPU bytes while baking. */
  bake: StageTimes;
  /** Bytes the bake holds (its tensors) and what the textures take as float32 / rgba16float. */
  bakeHeldBytes: number;
  textureBytes: { float32: number; rgba16float: number };
  /** Views from the bake: geometry only (the orbit viewer's), with the low-res image (render's). */
  view: ViewTimes;
  viewLowRes: ViewTimes;
  /** The geometry-only view split into its stages. */
  viewStages: StageTimes;
  /** The full forward for one view (the first camera). */
  full: StageTimes;
  /** relative error of view(bake(z), camera 0) against the full forward: image, depth, low-res image. */
  equivalence: { image: number; depth: number; lrImage: number };
  /** The image from float16-rounded textures against float32 textures (camera 0): relative error and max |difference|. */
  f16: { relErr: number; maxAbs: number };
  /** 60 frames (a video): 60 full forwards vs one bake and 60 views with the low-res image, by
   * wall time and by process CPU time. */
  video: { fullMs: number; bakedMs: number; speedup: number; cpuSpeedup: number };
  context: string[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Times `fn` from a synchronised start to a synchronised end (wall and process CPU), with the peak
 * in-use bytes while it ran. */
async function timed<T>(fn: () => T): Promise<{ value: T; ms: number; cpuMs: number; peak: number }> {
  await synchronize();
  resetPeak();
  const t0 = performance.now();
  const c0 = cpuNow();
  const value = fn();
  await synchronize();
  return { value, ms: performance.now() - t0, cpuMs: cpuNow() - c0, peak: poolStats().peakInUseBytes };
}

/** A whole-run StageTimes (no split) from runs of `fn`, best of. */
async function wholeRuns(run: (profile: StageProfiler) => void, runs: number): Promise<StageTimes> {
  let best = Infinity;
  let bestCpu = Infinity;
  let peak = 0;
  for (let r = 0; r < runs; r++) {
    const t = await timed(() => run((_stage, fn) => fn()));
    best = Math.min(best, t.ms);
    bestCpu = Math.min(bestCpu, t.cpuMs);
    peak = Math.max(peak, t.peak);
  }
  return { totalMs: best, totalCpuMs: bestCpu, peakInUseBytes: peak, calls: 0, stages: [] };
}

export async function benchOrbit(config: GeneratorConfig, info: DeviceInfo, options: OrbitBenchOptions = {}): Promise<OrbitBenchReport> {
  const cfg = withImgSize(config, options.imgSize);
  if (!isGramHD(cfg)) throw new Error(`bench orbit: '${cfg.name ?? cfg.generator}' is not a GRAM-HD configuration (GRAM has nothing to bake)`);
  const runs = options.runs ?? 1;
  const viewCount = options.views ?? 10;
  const say = options.onProgress ?? (() => {});
  const rng = new Random(options.seed ?? 0);
  const generator = new GramHDGenerator(cfg, rng);
  const rf = generator.representation.rf_network;
  const randomTensor = (n: number) => Tensor.fromData(rng.normalArray(n, 0, 0.5), [1, n]);
  tidy(() => generator.setTruncationAverages({ frequencies: randomTensor(rf.codeDim), phase_shifts: randomTensor(rf.codeDim) }, randomTensor(generator.super_resolution.styleDim)));
  const z = Tensor.fromData(rng.normalArray(cfg.z_dim), [1, cfg.z_dim]);
  const { poses } = fixedViews('video');
  const cameras: Camera[] = Array.from({ length: viewCount }, (_, i) => {
    const [pitch, yaw] = poses[Math.floor((i * poses.length) / viewCount)];
    return cameraFromPose(pitch, yaw);
  });
  let baked: GramHDBake | null = null;
  try {
    // the bake: kept from its last run
    const bakeRun = (profile: StageProfiler) => {
      baked?.dispose();
      baked = bake(generator, z, { truncationPsi: TRUNCATION, profile });
    };
    say('bake');
    const bakeTimes = options.stages ? await timeStages(bakeRun, GRAMHD_STAGES, runs) : await wholeRuns(bakeRun, runs);
    say(`bake: ${(bakeTimes.totalMs / 1000).toFixed(2)} s`);
    if (!baked) bakeRun((_stage, fn) => fn());
    const b = baked as unknown as GramHDBake;
    const bakeHeldBytes = [b.codes.frequencies, b.codes.phase_shifts, ...b.textures.manifolds, b.textures.background].reduce((n, t) => n + 4 * t.size, 0);

    // views one by one, after a warm-up of each kind
    const viewTimes = async (lowRes: boolean): Promise<ViewTimes> => {
      tidy(() => view(b, [cameras[0]], { lowRes }));
      const ms: number[] = [];
      const cpuMs: number[] = [];
      let peak = 0;
      for (const camera of cameras) {
        const t = await timed(() => tidy(() => { view(b, [camera], { lowRes }); }));
        ms.push(t.ms);
        cpuMs.push(t.cpuMs);
        peak = Math.max(peak, t.peak);
      }
      say(`views${lowRes ? ' with the low-res image' : ''}: median ${median(ms).toFixed(1)} ms (CPU ${median(cpuMs).toFixed(1)} ms)`);
      return { ms, cpuMs, medianMs: median(ms), medianCpuMs: median(cpuMs), minMs: Math.min(...ms), peakInUseBytes: peak };
    };
    const geometryViews = await viewTimes(false);
    const lowResViews = await viewTimes(true);
    const viewStages = await timeStages((profile) => tidy(() => { view(b, [cameras[0]], { profile }); }), GRAMHD_STAGES, Math.max(runs, 3));

    // the full forward for camera 0, and the equivalence
    say('full forward');
    let full: { image: Tensor; depth: Tensor; lrImage: Tensor } | null = null;
    const fullRun = (profile: StageProfiler) => {
      if (full) for (const t of Object.values(full)) t.dispose();
      const out = tidy(() => noGrad(() => {
        const o = generator.forward(z, [cameras[0]], { truncationPsi: TRUNCATION, lockViewDependence: true, profile });
        return { image: o.image, depth: o.depth, lrImage: o.lrImage };
      }));
      full = out;
    };
    const fullTimes = options.stages ? await timeStages(fullRun, GRAMHD_STAGES, runs) : await wholeRuns(fullRun, runs);
    say(`full forward: ${(fullTimes.totalMs / 1000).toFixed(2)} s`);
    if (!full) fullRun((_stage, fn) => fn());
    const reference = full as unknown as { image: Tensor; depth: Tensor; lrImage: Tensor };
    const ours = tidy(() => view(b, [cameras[0]], { lowRes: true }));
    const equivalence = {
      image: relativeError(await ours.image.toFloat32(), await reference.image.toFloat32()),
      depth: relativeError(await ours.depth.toFloat32(), await reference.depth.toFloat32()),
      lrImage: relativeError(await ours.lrImage!.toFloat32(), await reference.lrImage.toFloat32()),
    };
    const half = roundedToF16(b);
    const halfImage = tidy(() => view(half, [cameras[0]]).image);
    half.dispose();
    const [a, f32] = [await halfImage.toFloat32(), await ours.image.toFloat32()];
    const f16 = { relErr: relativeError(a, f32), maxAbs: a.reduce((m, v, i) => Math.max(m, Math.abs(v - f32[i])), 0) };
    for (const t of [halfImage, ours.image, ours.depth, ours.lrImage!, ...Object.values(reference)]) t.dispose();

    const videoFull = 60 * fullTimes.totalMs;
    const videoBaked = bakeTimes.totalMs + 60 * lowResViews.medianMs;
    const cpu = cpus();
    return {
      adapter: info.adapter,
      software: info.isSoftware,
      config: cfg.name ?? '(unnamed)',
      imgSize: cfg.img_size,
      lrImgSize: cfg.lr_img_size,
      bake: bakeTimes,
      bakeHeldBytes,
      textureBytes: bakeBytes(cfg),
      view: geometryViews,
      viewLowRes: lowResViews,
      viewStages,
      full: fullTimes,
      equivalence,
      f16,
      video: { fullMs: videoFull, bakedMs: videoBaked, speedup: videoFull / videoBaked, cpuSpeedup: (60 * fullTimes.totalCpuMs) / (bakeTimes.totalCpuMs + 60 * lowResViews.medianCpuMs) },
      context: [
        `cpus: ${cpu.length} x ${cpu[0]?.model.trim() ?? '?'}${info.isSoftware ? ' (software adapter: kernels run on the host CPU; CPU time is the process\'s, all threads, robust to other load)' : ''}`,
        `batch 1, locked view dependence, truncation ${TRUNCATION} towards a random stored average, random weights; ${viewCount} views from the video's orbit, each timed alone after a warm-up`,
        `bake and full forward: best of ${runs} synchronised run${runs > 1 ? 's' : ''}, the first cold${options.stages ? '; stages split by cut-short runs as in bench model' : ''}`,
      ],
    };
  } finally {
    (baked as GramHDBake | null)?.dispose();
    z.dispose();
    generator.dispose();
  }
}

/** The report as a table. */
export function printOrbitTable(r: OrbitBenchReport): void {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`adapter: ${r.adapter}`);
  for (const line of r.context) console.log(line);
  console.log(`config: ${r.config} (GramHDGenerator), ${r.imgSize}x${r.imgSize} from ${r.lrImgSize}x${r.lrImgSize}`);
  console.log();
  const rows: string[][] = [['', 'time', 'CPU time', 'peak in-use GPU memory']];
  rows.push(['bake (once per latent)', s(r.bake.totalMs), s(r.bake.totalCpuMs), mib(r.bake.peakInUseBytes)]);
  rows.push(['view from the bake (geometry only), median', `${r.view.medianMs.toFixed(1)} ms`, `${r.view.medianCpuMs.toFixed(1)} ms`, mib(r.view.peakInUseBytes)]);
  rows.push(['view from the bake with the low-res image, median', `${r.viewLowRes.medianMs.toFixed(1)} ms`, `${r.viewLowRes.medianCpuMs.toFixed(1)} ms`, mib(r.viewLowRes.peakInUseBytes)]);
  rows.push(['full forward per view', s(r.full.totalMs), s(r.full.totalCpuMs), mib(r.full.peakInUseBytes)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  console.log();
  console.log(`full forward / view: ${(r.full.totalMs / r.view.medianMs).toFixed(1)}x (geometry only), ${(r.full.totalMs / r.viewLowRes.medianMs).toFixed(1)}x (with the low-res image)`);
  console.log(`video (60 frames): 60 full forwards ${s(r.video.fullMs)}, bake + 60 views ${s(r.video.bakedMs)}: ${r.video.speedup.toFixed(1)}x faster (${r.video.cpuSpeedup.toFixed(1)}x by CPU time)`);
  console.log(`bake holds ${mib(r.bakeHeldBytes)}; textures per latent: float32 ${mib(r.textureBytes.float32)}, rgba16float ${mib(r.textureBytes.rgba16float)}`);
  console.log(`view(bake(z)) vs full forward, relative error: image ${r.equivalence.image.toExponential(2)}, depth ${r.equivalence.depth.toExponential(2)}, low-res image ${r.equivalence.lrImage.toExponential(2)}`);
  console.log(`float16-rounded textures vs float32: image relative error ${r.f16.relErr.toExponential(2)}, max |difference| ${r.f16.maxAbs.toExponential(2)} (image in [-1, 1])`);
  const stageTable = (title: string, t: StageTimes) => {
    if (!t.stages.length) return;
    console.log();
    console.log(`${title}: ${t.totalMs.toFixed(1)} ms`);
    const table = [['stage', 'calls', 'ms', '%', 'peak MiB'], ...t.stages.map((row) => [row.stage, String(row.calls), row.ms.toFixed(1), (100 * row.ms / t.totalMs).toFixed(1), (row.peakBytes / 2 ** 20).toFixed(1)])];
    const w = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
    for (const row of table) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join('  '));
  };
  stageTable('view from the bake (geometry only), by stage', r.viewStages);
  stageTable('bake, by stage', r.bake);
  stageTable('full forward, by stage', r.full);
}
