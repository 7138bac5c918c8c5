// The demo page: renders ?ckpt=URL&seed=N&yaw=Y&pitch=P&truncation=T into canvas#view through a
// <gramhd-viewer>; body[data-status] becomes "done" once the final frame is on screen (GRAM-HD shows
// a low-res frame before it: body[data-stage]), "error" (with the message shown) when anything
// fails, including a lost GPU device (then a Retry button). Seed controls, PNG and turntable MP4
// export (&frames=N frames, default 60). body[data-bake-ms], [data-view-ms] and [data-frame-ms]: the
// last bake's, view's and frame's milliseconds; &stats=1 shows them over the image.
import { exportPNG, hasWebGPU, loseDeviceForTesting, mp4Unsupported, type FrameInfo } from './gramhd.ts';
import './viewer.ts';
import type { GramHDViewer } from './viewer.ts';

declare global {
  interface Window {
    __gramhdFrames?: number;
    /** performance.now() when the page script started (ms after navigation began). */
    __gramhdStartedMs?: number;
    /** ms from the page script's start to the first low-res frame (GRAM-HD) and the first final frame. */
    __gramhdFirstLowResMs?: number;
    __gramhdFirstFrameMs?: number;
    /** Every frame shown: stage, seed, ms (after the page script started); frameMs (call to drawn),
     * bakeMs (the bake it came from), viewMs (its view from the bake), baked (this frame baked). */
    __gramhdFrameLog?: { stage: string; seed: number; ms: number; frameMs: number; bakeMs: number | null; viewMs: number | null; baked: boolean }[];
    /** Test hooks. */
    __gramhdTest?: { loseDevice(): void; showShot(): Promise<void> };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const message = $('message');
const exportStatus = $('export-status');
const stageLabel = $('stage');
const seedInput = $<HTMLInputElement>('seed');
const retry = $<HTMLButtonElement>('retry');
const started = performance.now();
window.__gramhdStartedMs = started;

function textOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function fail(error: unknown): void {
  console.error(error);
  message.textContent = `Error: ${textOf(error)}`;
  document.body.dataset.status = 'error';
}

function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

function main(): void {
  if (!hasWebGPU()) {
    throw new Error('This browser does not support WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge, or enable WebGPU (in Chromium: --enable-unsafe-webgpu).');
  }
  const params = new URLSearchParams(location.search);
  const ckpt = params.get('ckpt');
  if (!ckpt) throw new Error('No checkpoint: add ?ckpt=URL of a .safetensors checkpoint (e.g. ?ckpt=/ckpts/model.safetensors&seed=0).');
  const viewer = $<GramHDViewer>('viewer');
  for (const [name, fallback] of [['seed', '0'], ['yaw', '0'], ['pitch', '0'], ['truncation', '0.7']] as const) {
    const value = params.get(name) ?? fallback;
    if (!Number.isFinite(Number(value))) throw new Error(`?${name}=${value} is not a number`);
    viewer.setAttribute(name, value);
  }
  const frames = Number(params.get('frames') ?? 60);
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`?frames=${params.get('frames')} is not a positive integer`);
  seedInput.value = String(viewer.seed);
  window.__gramhdFrames = 0;
  window.__gramhdFrameLog = [];

  const setSeed = (seed: number) => {
    if (!Number.isFinite(seed)) return;
    seed = Math.max(0, Math.trunc(seed));
    seedInput.value = String(seed);
    params.set('seed', String(seed));
    history.replaceState(null, '', `?${params}`);
    document.body.dataset.status = 'loading';
    viewer.seed = seed;
  };
  seedInput.addEventListener('change', () => setSeed(Number(seedInput.value)));
  $('seed-prev').addEventListener('click', () => setSeed(viewer.seed - 1));
  $('seed-next').addEventListener('click', () => setSeed(viewer.seed + 1));
  $('seed-random').addEventListener('click', () => setSeed(Math.floor(Math.random() * 10000)));

  viewer.addEventListener('load-progress', (e) => {
    const { loaded, total } = (e as CustomEvent<{ loaded: number; total: number | null }>).detail;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    message.textContent = total ? `Loading ${ckpt}: ${mb(loaded)} / ${mb(total)} MB` : `Loading ${ckpt}: ${mb(loaded)} MB`;
  });
  viewer.addEventListener('frame', (e) => {
    const info = (e as CustomEvent<FrameInfo & { yaw: number; pitch: number }>).detail;
    const now = performance.now() - started;
    window.__gramhdFrames = (window.__gramhdFrames ?? 0) + 1;
    window.__gramhdFrameLog!.push({ stage: info.stage, seed: info.seed, ms: now, frameMs: info.ms, bakeMs: info.bakeMs, viewMs: info.viewMs, baked: info.baked });
    document.body.dataset.frameMs = info.ms.toFixed(1);
    if (info.bakeMs !== null) document.body.dataset.bakeMs = info.bakeMs.toFixed(1);
    if (info.viewMs !== null) document.body.dataset.viewMs = info.viewMs.toFixed(1);
    const lowRes = info.stage === 'low-res';
    stageLabel.textContent = lowRes ? `low-res ${info.imageWidth}x${info.imageHeight}` : `${info.width}x${info.height}`;
    stageLabel.classList.toggle('low-res', lowRes);
    document.body.dataset.stage = info.stage;
    const pose = `seed ${info.seed}, yaw ${info.yaw.toFixed(2)}, pitch ${info.pitch.toFixed(2)}`;
    if (lowRes) {
      window.__gramhdFirstLowResMs ??= now;
      message.textContent = `${pose}: low-res ${info.imageWidth}x${info.imageHeight} in ${info.ms.toFixed(0)} ms, super-resolving…`;
      return;
    }
    window.__gramhdFirstFrameMs ??= now;
    const timing = info.bakeMs === null ? '' : info.baked
      ? ` (bake ${info.bakeMs.toFixed(0)} ms, view ${info.viewMs!.toFixed(0)} ms)` : ` from the bake (view ${info.viewMs!.toFixed(0)} ms)`;
    message.textContent = `${pose}: ${info.width}x${info.height} in ${info.ms.toFixed(0)} ms${timing}`;
    document.body.dataset.status = 'done';
  });
  viewer.addEventListener('render-error', (e) => fail((e as CustomEvent<unknown>).detail));
  viewer.addEventListener('device-lost', (e) => {
    fail(new Error(`The GPU device was lost (${(e as CustomEvent<string>).detail}). Press Retry to start a new one.`));
    retry.hidden = false;
  });
  retry.addEventListener('click', () => {
    retry.hidden = true;
    document.body.dataset.status = 'loading';
    message.textContent = 'Starting a new GPU device…';
    viewer.retry().catch((error) => {
      fail(error);
      retry.hidden = false;
    });
  });

  const exporting = async (what: string, job: () => Promise<void>) => {
    exportStatus.classList.remove('error');
    exportStatus.textContent = `${what}…`;
    try {
      await job();
    } catch (error) {
      console.error(error);
      exportStatus.textContent = textOf(error);
      exportStatus.classList.add('error');
    }
  };
  $('export-png').addEventListener('click', () => void exporting('Saving PNG', async () => {
    download(await viewer.exportPNG(), `gramhd_seed${viewer.seed}.png`);
    exportStatus.textContent = 'PNG saved.';
  }));
  $('export-mp4').addEventListener('click', () => void exporting('Checking the video encoder', async () => {
    const size = viewer.loadedModel?.config.img_size;
    if (!size) throw new Error('MP4 export: no checkpoint loaded yet');
    const why = await mp4Unsupported(size, size);
    if (why) throw new Error(`MP4 export is not available: ${why}`);
    const blob = await viewer.exportTurntableMP4({
      frames,
      onProgress: (done, total) => { exportStatus.textContent = `Rendering the turntable: frame ${done} of ${total}…`; },
    });
    download(blob, `gramhd_seed${viewer.seed}.mp4`);
    exportStatus.textContent = `MP4 saved (${frames} frames, ${(blob.size / 1024).toFixed(0)} KiB).`;
  }));

  window.__gramhdTest = {
    loseDevice: loseDeviceForTesting,
    // headless Chromium cannot screenshot a WebGPU canvas: show the exported frame in an <img> over it
    showShot: async () => {
      const img = $<HTMLImageElement>('shot');
      img.src = URL.createObjectURL(await exportPNG(viewer.canvas));
      await img.decode();
    },
  };
  viewer.setAttribute('src', ckpt);
}

try {
  main();
} catch (error) {
  fail(error);
}
