// The browser API: load one of our safetensors checkpoints over HTTP and render a seed at a pose into
// a WebGPU canvas. The image never comes back to the CPU for display: a fullscreen-triangle render
// pass reads the generator's output buffer and writes the canvas texture. GRAM-HD shows its low-res
// render first, then the super-resolved frame. With locked view dependence (the default) a seed is
// baked once (model/orbit.ts: GRAM-HD's super-resolved textures, GRAM's codes) and every later pose of
// it is rendered from the bake. Exports (PNG, turntable MP4) do read back. Tests can
// ask for each presented frame's pixels (window.__gramhdCapture = true, then __gramhdLastFrame, RGBA;
// headless Chromium cannot screenshot a WebGPU canvas).
import { engineDevice, initDevice, noGrad, Tensor, tidy } from '../engine/index.ts';
import { throwPendingGpuError } from '../engine/device.ts';
import { resetPool } from '../engine/buffer-pool.ts';
import { flush, withEncoder } from '../engine/runtime.ts';
import { cameraFromPose } from '../model/camera.ts';
import { isGramHD, type GeneratorConfig } from '../model/config.ts';
import { renderManifolds, type GramGenerator } from '../model/gram.ts';
import { GramHDGenerator } from '../model/gramhd.ts';
import { bake, bakeGram, view, viewGram, type GramBake, type GramHDBake } from '../model/orbit.ts';
import { generatorFromBytes } from './load.ts';
import { TorchGenerator } from '../model/torch-random.ts';
import { encodePng } from './png.ts';
import { H264_CODEC, h264Config, Mp4Writer, type WebCodecs } from './mp4.ts';

/** A loaded checkpoint. Events: `device-lost` (detail: the reason) when the GPU device it lives on
 * is lost; restoreDevice() then rebuilds it on a new device. */
export interface GramHDModel extends EventTarget {
  readonly url: string;
  readonly config: GeneratorConfig;
  readonly generator: GramGenerator | GramHDGenerator;
  /** GRAM-HD: there is a low-res frame to show before the super-resolved one. */
  readonly hasLowRes: boolean;
  /** The checkpoint held truncation averages; otherwise they come from each seed's torch stream. */
  readonly storedAverage: boolean;
  /** The seed whose per-seed average is set (when not stored). */
  averageSeed: number | null;
  /** Why the GPU device was lost, or null while it works. */
  readonly lost: string | null;
  /** The bake kept for the last seed and truncation rendered (one at a time; freed when either
   * changes, on restoreDevice and on dispose): its seed, truncation and milliseconds. */
  readonly baked: { seed: number; truncation: number; ms: number } | null;
  dispose(): void;
}

export interface LoadOptions {
  /** Called as bytes arrive; `total` is null when the server sends no Content-Length. */
  onProgress?: (loaded: number, total: number | null) => void;
  /** Configuration name or JSON overriding the checkpoint's metadata. */
  config?: string;
}

export interface RenderOptions {
  seed?: number;
  /** Radians, offset from the front view (pitch = yaw = pi/2). */
  yaw?: number;
  pitch?: number;
  /** Truncation psi (1 = none). */
  truncation?: number;
  /** Render the view direction fixed at the front (the reference's multiview/video setting). */
  lockViewDependence?: boolean;
  /** GRAM-HD: show the low-res frame before the super-resolved one (default true). This renders the
   * low-res image once more than the forward does (the forward has no point to stop at). */
  progressive?: boolean;
  /** GRAM-HD: show only the low-res frame (fast; for dragging). */
  lowResOnly?: boolean;
  /** Called once per frame on screen: the low-res one (GRAM-HD), then the final one. */
  onFrame?: (info: FrameInfo) => void;
}

export type FrameStage = 'low-res' | 'final';

export interface FrameInfo {
  /** 'low-res': GRAM-HD's low-res render, upscaled to the canvas; 'final': the generator's image. */
  stage: FrameStage;
  /** The canvas size (the generator's image size). */
  width: number;
  height: number;
  /** The size of the image shown (lr_img_size for the low-res frame). */
  imageWidth: number;
  imageHeight: number;
  /** Milliseconds from the call to the GPU having drawn this frame. */
  ms: number;
  /** Final frames rendered from a bake: how long that bake took (GPU work done), whether this call
   * or an earlier one baked it; null otherwise. */
  bakeMs: number | null;
  /** Whether this call baked (the seed's or truncation's first final frame). */
  baked: boolean;
  /** Final frames rendered from a bake: milliseconds from the view's start to the frame drawn. */
  viewMs: number | null;
  format: GPUTextureFormat;
  seed: number;
}

declare global {
  interface Window {
    /** Set to true to have every presented frame read back into __gramhdLastFrame (tests). */
    __gramhdCapture?: boolean;
    /** The last frame presented by renderToCanvas, RGBA, row-major from the top-left. */
    __gramhdLastFrame?: Uint8Array;
    __gramhdLastFrameInfo?: FrameInfo;
    /** The last low-res frame (GRAM-HD), as __gramhdLastFrame. */
    __gramhdLowResFrame?: Uint8Array;
  }
}

function gpuOf(): GPU | undefined {
  return typeof navigator !== 'undefined' ? navigator.gpu : undefined;
}

/** Whether this browser exposes WebGPU at all. */
export function hasWebGPU(): boolean {
  return gpuOf() !== undefined;
}

const NO_WEBGPU = 'This browser has no WebGPU (navigator.gpu is missing): use Chrome/Edge 113+ or enable WebGPU';

/** The engine's device from navigator.gpu, with a browser's words for a missing adapter. */
async function startDevice(): Promise<void> {
  if (!hasWebGPU()) throw new Error(NO_WEBGPU);
  try {
    await initDevice(gpuOf());
  } catch (error) {
    if (!/no WebGPU adapter/.test((error as Error).message)) throw error;
    throw new Error('This browser has WebGPU but offers no GPU adapter (hardware acceleration may be off or the GPU blocklisted; chrome://gpu says why)');
  }
}

async function fetchBytes(url: string, onProgress?: LoadOptions['onProgress']): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`${url}: could not fetch the checkpoint (${(error as Error).message})`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const header = response.headers.get('content-length');
  const total = header !== null && Number.isFinite(Number(header)) ? Number(header) : null;
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress?.(bytes.byteLength, total);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  onProgress?.(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onProgress?.(loaded, total);
  }
  if (total !== null && loaded < total) throw new Error(`${url}: the download stopped after ${loaded} of ${total} bytes`);
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** A kept bake and the seed and truncation it belongs to. */
interface BakeEntry {
  generator: GramGenerator | GramHDGenerator;
  seed: number;
  truncation: number;
  /** Milliseconds from the bake's start to its GPU work done. */
  ms: number;
  bake: GramHDBake | GramBake;
}

class LoadedModel extends EventTarget implements GramHDModel {
  generator!: GramGenerator | GramHDGenerator;
  config!: GeneratorConfig;
  storedAverage = false;
  averageSeed: number | null = null;
  lost: string | null = null;
  bakeEntry: BakeEntry | null = null;
  /** The device the generator lives on. */
  device: GPUDevice | null = null;
  private disposed = false;

  constructor(readonly url: string, private readonly bytes: Uint8Array, private readonly configText: string | undefined) {
    super();
  }

  get hasLowRes(): boolean {
    return isGramHD(this.config);
  }

  get baked(): GramHDModel['baked'] {
    const e = this.bakeEntry;
    return e && { seed: e.seed, truncation: e.truncation, ms: e.ms };
  }

  /** The kept bake of `seed` at `truncation` on the current generator, if that is the one kept. */
  bakeOf(seed: number, truncation: number): BakeEntry | null {
    const e = this.bakeEntry;
    return e && e.generator === this.generator && e.seed === seed && e.truncation === truncation ? e : null;
  }

  /** Frees the kept bake. */
  dropBake(): void {
    this.bakeEntry?.bake.dispose();
    this.bakeEntry = null;
  }

  /** Builds the generator on the engine's current device and watches that device. */
  build(): void {
    const name = decodeURIComponent(this.url.split('/').pop() || this.url);
    const { generator, config, storedAverage } = generatorFromBytes(this.bytes, name, this.configText);
    Object.assign(this, { generator, config, storedAverage, averageSeed: null, lost: null });
    const { device } = engineDevice();
    this.device = device;
    void device.lost.then((info) => {
      if (this.disposed || this.generator !== generator) return;
      this.lost = info.message ? `${info.reason}: ${info.message}` : info.reason;
      this.dispatchEvent(new CustomEvent('device-lost', { detail: this.lost }));
    });
  }

  dispose(): void {
    this.disposed = true;
    this.dropBake();
    this.generator.dispose();
  }
}

/** Fetches a safetensors checkpoint and builds its generator on the WebGPU device. */
export async function loadCheckpoint(url: string, options: LoadOptions = {}): Promise<GramHDModel> {
  await startDevice();
  const bytes = await fetchBytes(url, options.onProgress);
  const model = new LoadedModel(url, bytes, options.config);
  model.build();
  return model;
}

/** After a `device-lost` event: acquires a new device and rebuilds the model's generator on it (the
 * checkpoint's bytes are kept for this), after the renders already asked for have ended. Renders
 * continue with renderToCanvas as before. */
export function restoreDevice(model: GramHDModel): Promise<void> {
  return serialised(() => restoreNow(model as LoadedModel));
}

async function restoreNow(m: LoadedModel): Promise<void> {
  if (!m.lost) return;
  for (const [canvas, entry] of [...shown]) if (entry.device === m.device) forgetImage(canvas);
  m.dropBake();
  m.generator.dispose();
  // the pool now holds the lost device's buffers: forget them all (cached ones of a newer device
  // too, when another model was restored first: they are only dropped from the cache)
  resetPool();
  try {
    throwPendingGpuError();
  } catch {
    // the loss itself, already reported
  }
  await startDevice();
  m.build();
}

/** Loses the engine's device on purpose (device.destroy()): how tests exercise the retry path. */
export function loseDeviceForTesting(): void {
  engineDevice().device.destroy();
}

// --- display ---------------------------------------------------------------------------------------

const DISPLAY_WGSL = /* wgsl */ `
struct Params { width: u32, height: u32, canvasWidth: u32, canvasHeight: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> image: array<f32>;

@vertex fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4f {
  let p = vec2f(f32((i << 1u) & 2u), f32(i & 2u));
  return vec4f(p * 2.0 - 1.0, 0.0, 1.0);
}

// [-1, 1] -> the byte the CLI writes ((x / 2 + 1 / 2) clipped, times 255, truncated), as unorm
fn level(x: f32) -> f32 {
  let v = clamp(x * 0.5 + 0.5, 0.0, 1.0);
  return floor(v * 255.0) / 255.0;
}

// nearest-neighbour scaling of the image to the canvas (the low-res frame of GRAM-HD)
@fragment fn fs(@builtin(position) pos: vec4f) -> @location(0) vec4f {
  let x = min(u32(pos.x) * params.width / params.canvasWidth, params.width - 1u);
  let y = min(u32(pos.y) * params.height / params.canvasHeight, params.height - 1u);
  let plane = params.width * params.height;
  let p = y * params.width + x;
  return vec4f(level(image[p]), level(image[plane + p]), level(image[2u * plane + p]), 1.0);
}
`;

let display: { device: GPUDevice; format: GPUTextureFormat; pipeline: GPURenderPipeline } | null = null;
const configured = new WeakMap<HTMLCanvasElement, { context: GPUCanvasContext; device: GPUDevice }>();
/** The image each canvas shows, kept on the GPU for exportPNG. */
const shown = new Map<HTMLCanvasElement, { image: Tensor; stage: FrameStage; device: GPUDevice }>();

function forgetImage(canvas: HTMLCanvasElement): void {
  shown.get(canvas)?.image.dispose();
  shown.delete(canvas);
}

function displayPipeline(device: GPUDevice, format: GPUTextureFormat): GPURenderPipeline {
  if (display?.device === device && display.format === format) return display.pipeline;
  const module = device.createShaderModule({ code: DISPLAY_WGSL, label: 'gramhd display' });
  const pipeline = device.createRenderPipeline({
    layout: 'auto',
    vertex: { module, entryPoint: 'vs' },
    fragment: { module, entryPoint: 'fs', targets: [{ format }] },
    primitive: { topology: 'triangle-list' },
    label: 'gramhd display',
  });
  display = { device, format, pipeline };
  return pipeline;
}

function contextFor(canvas: HTMLCanvasElement, device: GPUDevice): GPUCanvasContext {
  const known = configured.get(canvas);
  if (known?.device === device) return known.context;
  const context = canvas.getContext('webgpu');
  if (!context) throw new Error('canvas.getContext("webgpu") returned null');
  context.configure({
    device,
    format: gpuOf()!.getPreferredCanvasFormat(),
    usage: GPUTextureUsage.RENDER_ATTACHMENT | GPUTextureUsage.COPY_SRC,
    alphaMode: 'opaque',
  });
  configured.set(canvas, { context, device });
  return context;
}

function capturing(): boolean {
  return typeof window !== 'undefined' && window.__gramhdCapture === true;
}

/** Draws image 0 of `image` [B, 3, h, w] (values in [-1, 1]) into the canvas, sized `size` (default
 * the image's), nearest-neighbour scaled; the canvas keeps the image (for exportPNG). With capture
 * on, resolves with the presented pixels read back (RGBA); otherwise once the GPU has drawn it. */
async function present(image: Tensor, stage: FrameStage, canvas: HTMLCanvasElement, size?: [number, number]): Promise<{ data: Uint8Array | null; format: GPUTextureFormat }> {
  const { device } = engineDevice();
  const [, channels, imageHeight, imageWidth] = image.shape;
  if (channels !== 3) throw new Error(`expected an RGB image, got [${image.shape.join(', ')}]`);
  const [height, width] = size ?? [imageHeight, imageWidth];
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const context = contextFor(canvas, device);
  const texture = context.getCurrentTexture();
  const pipeline = displayPipeline(device, texture.format);
  const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([imageWidth, imageHeight, width, height]));
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: params } }, { binding: 1, resource: { buffer: image.buffer } }],
  });
  const capture = capturing();
  const bytesPerRow = Math.ceil((width * 4) / 256) * 256;
  const staging = capture ? device.createBuffer({ size: bytesPerRow * height, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  // in the engine's pending encoder, after the dispatches that produce the image: one submit
  withEncoder((encoder) => {
    const pass = encoder.beginRenderPass({
      colorAttachments: [{ view: texture.createView(), loadOp: 'clear', storeOp: 'store', clearValue: { r: 0, g: 0, b: 0, a: 1 } }],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.draw(3);
    pass.end();
    if (staging) encoder.copyTextureToBuffer({ texture }, { buffer: staging, bytesPerRow, rowsPerImage: height }, [width, height, 1]);
  });
  flush();
  if (shown.get(canvas)?.image !== image) forgetImage(canvas);
  shown.set(canvas, { image, stage, device });
  params.destroy();
  if (!staging) {
    await device.queue.onSubmittedWorkDone();
    return { data: null, format: texture.format };
  }
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = new Uint8Array(staging.getMappedRange());
  const data = new Uint8Array(width * height * 4);
  const bgra = texture.format.startsWith('bgra');
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = y * bytesPerRow + x * 4;
      const d = (y * width + x) * 4;
      data[d] = mapped[s + (bgra ? 2 : 0)];
      data[d + 1] = mapped[s + 1];
      data[d + 2] = mapped[s + (bgra ? 0 : 2)];
      data[d + 3] = mapped[s + 3];
    }
  }
  staging.unmap();
  staging.destroy();
  return { data, format: texture.format };
}

/** Lets the browser put the frame just drawn on screen before more GPU work is queued behind it. */
function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 100); // rAF does not run in hidden tabs
    requestAnimationFrame(() => {
      clearTimeout(timer);
      setTimeout(resolve, 0);
    });
  });
}

/** The latent code of `seed` (torch.manual_seed(seed); torch.randn(1, z_dim)) and, when asked, the
 * 10000 latents the CLI averages for that seed's truncation centre. */
export function seedLatents(seed: number, zDim: number, withAverage: boolean): { z: Float32Array; averageZ: Float32Array | null } {
  const g = new TorchGenerator(seed);
  const z = g.randn(zDim);
  return { z, averageZ: withAverage ? g.randn(10000 * zDim) : null };
}

let queue: Promise<unknown> = Promise.resolve();

/** Runs `job` after every render or export already asked for (the engine renders one at a time and
 * the truncation average belongs to one seed at a time). */
function serialised<T>(job: () => Promise<T>): Promise<T> {
  const run = queue.then(job);
  queue = run.catch(() => undefined);
  return run;
}

/** Why rendering on this model cannot go on (the device is gone), as an Error. */
function checkDevice(model: GramHDModel): void {
  if (model.lost) throw new Error(`The GPU device was lost (${model.lost}). Retry to create a new one.`);
}

/** Sets the seed's truncation centre (unless the checkpoint stores one) and returns its z [1, z_dim]. */
function prepareSeed(model: GramHDModel, seed: number, psi: number): Float32Array {
  const zDim = model.config.z_dim;
  const needAverage = psi !== 1 && !model.storedAverage && model.averageSeed !== seed;
  const { z, averageZ } = seedLatents(seed, zDim, needAverage);
  if (averageZ) {
    tidy(() => noGrad(() => model.generator.computeTruncationAverage(Tensor.fromData(averageZ, [10000, zDim]))));
    model.averageSeed = seed;
  }
  return z;
}

function cameraOf(options: { yaw?: number; pitch?: number }) {
  return cameraFromPose(Math.PI / 2 + (options.pitch ?? 0), Math.PI / 2 + (options.yaw ?? 0));
}

/** The generator's image [1, 3, H, W] for a seed and pose (the caller disposes it). */
function renderImage(model: GramHDModel, z: Float32Array, options: RenderOptions): Tensor {
  return tidy(() => noGrad(() => model.generator.forward(Tensor.fromData(z, [1, model.config.z_dim]), [cameraOf(options)], {
    truncationPsi: options.truncation ?? 0.7,
    lockViewDependence: options.lockViewDependence ?? true,
  }).image));
}

/** The bake of `seed` at `truncation` (z its latent): the kept one, else a new one replacing it,
 * timed to its GPU work done. */
async function bakeSeed(m: LoadedModel, z: Float32Array, seed: number, truncation: number): Promise<BakeEntry> {
  const kept = m.bakeOf(seed, truncation);
  if (kept) return kept;
  m.dropBake();
  const started = performance.now();
  const { generator } = m;
  const latent = (): Tensor => Tensor.fromData(z, [1, m.config.z_dim]);
  const baked = tidy(() => (generator instanceof GramHDGenerator
    ? bake(generator, latent(), { truncationPsi: truncation })
    : bakeGram(generator, latent(), truncation)));
  flush();
  await engineDevice().device.queue.onSubmittedWorkDone();
  m.bakeEntry = { generator, seed, truncation, ms: performance.now() - started, bake: baked };
  return m.bakeEntry;
}

/** The image [1, 3, H, W] of a bake's view at the pose (the caller disposes it): model/orbit.ts's
 * view (GRAM-HD, without the low-res image) or viewGram (GRAM). */
async function viewImage(entry: BakeEntry, options: { yaw?: number; pitch?: number }): Promise<Tensor> {
  const cameras = [cameraOf(options)];
  if (entry.generator instanceof GramHDGenerator) {
    const baked = entry.bake as GramHDBake;
    return tidy(() => view(baked, cameras).image);
  }
  const { image, depth } = await viewGram(entry.bake as GramBake, cameras);
  depth.dispose();
  return image;
}

/** GRAM-HD's low-res image [1, 3, HL, HL]: the forward's first step (the same renderManifolds call). */
function renderLowRes(model: GramHDModel, z: Float32Array, options: RenderOptions): Tensor {
  const { config, generator } = model;
  if (!isGramHD(config)) throw new Error('only GRAM-HD has a low-res frame');
  return tidy(() => noGrad(() => {
    const { used } = generator.codes(Tensor.fromData(z, [1, config.z_dim]), options.truncation ?? 0.7);
    return renderManifolds(generator.representation, used, [cameraOf(options)],
      { camera: config.camera, renderer: config.renderer, imgSize: config.lr_img_size },
      { lockViewDependence: options.lockViewDependence ?? true }).image;
  }));
}

/** Renders `seed` at the pose into the canvas (sized to the generator's image), like `gramhd render
 * --average auto`: the stored truncation averages, else the seed's own. With locked view dependence
 * the seed is baked on its first final frame (GRAM-HD shows the low-res frame first, during the bake:
 * options.progressive) and later poses of the same seed and truncation render from the bake alone.
 * Calls are serialised; resolves with the last frame's info. */
export function renderToCanvas(model: GramHDModel, canvas: HTMLCanvasElement, options: RenderOptions = {}): Promise<FrameInfo> {
  return serialised(() => renderNow(model, canvas, options));
}

async function renderNow(model: GramHDModel, canvas: HTMLCanvasElement, options: RenderOptions): Promise<FrameInfo> {
  checkDevice(model);
  const m = model as LoadedModel;
  const started = performance.now();
  const seed = options.seed ?? 0;
  const truncation = options.truncation ?? 0.7;
  const locked = options.lockViewDependence ?? true;
  const size: [number, number] = [model.config.img_size, model.config.img_size];
  const show = async (image: Tensor, stage: FrameStage, from?: { entry: BakeEntry; baked: boolean; viewStarted: number }): Promise<FrameInfo> => {
    let frame: { data: Uint8Array | null; format: GPUTextureFormat };
    try {
      frame = await present(image, stage, canvas, size);
    } catch (error) {
      forgetImage(canvas);
      image.dispose();
      throw error;
    }
    const now = performance.now();
    const info: FrameInfo = {
      stage, width: canvas.width, height: canvas.height, imageWidth: image.shape[3], imageHeight: image.shape[2],
      ms: now - started, format: frame.format, seed,
      bakeMs: from ? from.entry.ms : null, baked: from?.baked ?? false, viewMs: from ? now - from.viewStarted : null,
    };
    if (typeof window !== 'undefined' && frame.data) {
      window.__gramhdLastFrame = frame.data;
      window.__gramhdLastFrameInfo = info;
      if (stage === 'low-res') window.__gramhdLowResFrame = frame.data;
    }
    options.onFrame?.(info);
    return info;
  };
  const fromBake = async (entry: BakeEntry, baked: boolean): Promise<FrameInfo> => {
    const viewStarted = performance.now();
    return show(await viewImage(entry, options), 'final', { entry, baked, viewStarted });
  };
  const kept = locked && !options.lowResOnly ? m.bakeOf(seed, truncation) : null;
  if (kept) return fromBake(kept, false);
  const z = prepareSeed(model, seed, truncation);
  if (model.hasLowRes && (options.lowResOnly || (options.progressive ?? true))) {
    const info = await show(renderLowRes(model, z, options), 'low-res');
    if (options.lowResOnly) return info;
    await nextFrame();
    checkDevice(model);
  }
  if (!locked) return show(renderImage(model, z, options), 'final');
  return fromBake(await bakeSeed(m, z, seed, truncation), true);
}

// --- export ----------------------------------------------------------------------------------------

/** 8-bit RGBA of image 0 of `values` [B, 3, h, w] scaled (nearest) to width x height, as the display
 * shader computes it (float32: x * 0.5 + 0.5 clamped, times 255, floored). */
function toRgba(values: Float32Array, shape: readonly number[], width: number, height: number): Uint8Array {
  const [, , h, w] = shape;
  const f = Math.fround;
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.floor((y * h) / height), h - 1);
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.floor((x * w) / width), w - 1);
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const v = Math.min(Math.max(f(f(values[c * h * w + sy * w + sx] * 0.5) + 0.5), 0), 1);
        out[o + c] = Math.floor(f(v * 255)) || 0;
      }
      out[o + 3] = 255;
    }
  }
  return out;
}

/** The frame the canvas shows as a PNG (read back from the GPU image it was drawn from). */
export function exportPNG(canvas: HTMLCanvasElement): Promise<Blob> {
  return serialised(async () => {
    const last = shown.get(canvas);
    if (!last) throw new Error('nothing rendered into this canvas yet');
    const values = await last.image.toFloat32();
    const rgba = toRgba(values, last.image.shape, canvas.width, canvas.height);
    return new Blob([await encodePng(rgba, canvas.width, canvas.height)], { type: 'image/png' });
  });
}

export interface TurntableOptions {
  seed?: number;
  truncation?: number;
  /** Radians from the front view; default 0. */
  pitch?: number;
  /** Frames (default 60, as `gramhd render --type video`). */
  frames?: number;
  /** Frames per second (default 30). */
  fps?: number;
  /** The yaw swings -amplitude -> amplitude -> -amplitude (default 0.3 rad). */
  amplitude?: number;
  /** Called after each frame is rendered. */
  onProgress?: (done: number, total: number) => void;
}

/** Null when this browser can encode an H.264 video of this size, else why not (for the page). */
export async function mp4Unsupported(width: number, height: number, fps = 30): Promise<string | null> {
  if (typeof VideoEncoder === 'undefined') return 'this browser has no WebCodecs VideoEncoder (MP4 export needs Chrome/Edge 94+ over https or localhost)';
  if (width % 2 || height % 2) return `H.264 needs an even frame size, not ${width}x${height}`;
  const support = await VideoEncoder.isConfigSupported(h264Config(width, height, fps)).catch(() => ({ supported: false }));
  return support.supported ? null : `this browser cannot encode H.264 (${H264_CODEC}) at ${width}x${height}: MP4 export needs a browser with an H.264 encoder (Chrome/Edge)`;
}

/** The yaws of a turntable of n frames: -a -> a -> -a, each half without its last point (n = 60 gives
 * the CLI's video poses). */
export function turntableYaws(n: number, amplitude = 0.3): number[] {
  const half = Math.max(1, Math.floor(n / 2));
  return Array.from({ length: n }, (_, i) => (i < half ? -amplitude + (2 * amplitude * i) / half : amplitude - (2 * amplitude * (i - half)) / Math.max(1, n - half)));
}

/** Renders a yaw sweep of `seed` and encodes it as an H.264 MP4 (WebCodecs + mp4-muxer), like `gramhd
 * render --type video`: from the seed's bake (kept for the viewer), frames read back one at a time. */
export function exportTurntableMP4(model: GramHDModel, options: TurntableOptions = {}): Promise<Blob> {
  return serialised(async () => {
    checkDevice(model);
    const size = model.config.img_size;
    const fps = options.fps ?? 30;
    const why = await mp4Unsupported(size, size, fps);
    if (why) throw new Error(`MP4 export: ${why}`);
    const writer = await Mp4Writer.open(globalThis as WebCodecs, size, size, fps);
    try {
      const seed = options.seed ?? 0;
      const truncation = options.truncation ?? 0.7;
      const z = prepareSeed(model, seed, truncation);
      const entry = await bakeSeed(model as LoadedModel, z, seed, truncation);
      const yaws = turntableYaws(options.frames ?? 60, options.amplitude ?? 0.3);
      for (let i = 0; i < yaws.length; i++) {
        checkDevice(model);
        const image = await viewImage(entry, { pitch: options.pitch, yaw: yaws[i] });
        let values: Float32Array;
        try {
          values = await image.toFloat32();
        } finally {
          image.dispose();
        }
        writer.add(toRgba(values, image.shape, size, size));
        options.onProgress?.(i + 1, yaws.length);
      }
      return new Blob([await writer.finish()], { type: 'video/mp4' });
    } finally {
      writer.close();
    }
  });
}
