// The demo page: renders ?ckpt=URL&seed=N&yaw=Y&pitch=P&truncation=T into canvas#view through a
// <gramhd-viewer>; body[data-status] becomes "done" once the first frame is on screen, "error" (with
// the message shown) when anything fails.
import { hasWebGPU } from './gramhd.ts';
import './viewer.ts';
import type { GramHDViewer } from './viewer.ts';

declare global {
  interface Window {
    __gramhdFrames?: number;
    __gramhdFirstFrameMs?: number;
  }
}

const message = document.getElementById('message')!;
const started = performance.now();

function fail(error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  console.error(error);
  message.textContent = `Error: ${text}`;
  document.body.dataset.status = 'error';
}

function main(): void {
  if (!hasWebGPU()) {
    throw new Error('This browser does not support WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge, or enable WebGPU (in Chromium: --enable-unsafe-webgpu).');
  }
  const params = new URLSearchParams(location.search);
  const ckpt = params.get('ckpt');
  if (!ckpt) throw new Error('No checkpoint: add ?ckpt=URL of a .safetensors checkpoint (e.g. ?ckpt=/ckpts/model.safetensors&seed=0).');
  const viewer = document.getElementById('viewer') as GramHDViewer;
  for (const [name, fallback] of [['seed', '0'], ['yaw', '0'], ['pitch', '0'], ['truncation', '0.7']] as const) {
    const value = params.get(name) ?? fallback;
    if (!Number.isFinite(Number(value))) throw new Error(`?${name}=${value} is not a number`);
    viewer.setAttribute(name, value);
  }
  window.__gramhdFrames = 0;
  viewer.addEventListener('load-progress', (e) => {
    const { loaded, total } = (e as CustomEvent<{ loaded: number; total: number | null }>).detail;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    message.textContent = total ? `Loading ${ckpt}: ${mb(loaded)} / ${mb(total)} MB` : `Loading ${ckpt}: ${mb(loaded)} MB`;
  });
  viewer.addEventListener('frame', (e) => {
    const info = (e as CustomEvent<{ width: number; height: number; ms: number; yaw: number; pitch: number }>).detail;
    window.__gramhdFrames = (window.__gramhdFrames ?? 0) + 1;
    if (window.__gramhdFirstFrameMs === undefined) window.__gramhdFirstFrameMs = performance.now() - started;
    message.textContent = `${info.width}x${info.height}, yaw ${info.yaw.toFixed(2)}, pitch ${info.pitch.toFixed(2)}: ${info.ms.toFixed(0)} ms`;
    document.body.dataset.status = 'done';
  });
  viewer.addEventListener('render-error', (e) => fail((e as CustomEvent<unknown>).detail));
  viewer.setAttribute('src', ckpt);
}

try {
  main();
} catch (error) {
  fail(error);
}
