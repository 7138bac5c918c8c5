// The browser API: load one of our safetensors checkpoints over HTTP and render a seed at a pose into
// a WebGPU canvas. The image never comes back to the CPU for display: a fullscreen-triangle render
// pass reads the generator's output buffer and writes the canvas texture. The same submit copies the
// presented texture into a mappable buffer, so that tests can read what is on screen
// (window.__gramhdLastFrame, RGBA bytes; headless Chromium cannot screenshot a WebGPU canvas).
import { engineDevice, initDevice, noGrad, Tensor, tidy } from '../engine/index.ts';
import { flush, withEncoder } from '../engine/runtime.ts';
import { cameraFromPose } from '../model/camera.ts';
import type { GeneratorConfig } from '../model/config.ts';
import type { GramGenerator } from '../model/gram.ts';
import type { GramHDGenerator } from '../model/gramhd.ts';
import { generatorFromBytes } from './load.ts';
import { TorchGenerator } from '../model/torch-random.ts';

export interface GramHDModel {
  readonly url: string;
  readonly config: GeneratorConfig;
  readonly generator: GramGenerator | GramHDGenerator;
  /** The checkpoint held truncation averages; otherwise they come from each seed's torch stream. */
  readonly storedAverage: boolean;
  /** The seed whose per-seed average is set (when not stored). */
  averageSeed: number | null;
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
}

export interface FrameInfo {
  width: number;
  height: number;
  /** Milliseconds from the call to the frame being on screen and read back. */
  ms: number;
  format: GPUTextureFormat;
}

declare global {
  interface Window {
    /** The last frame presented by renderToCanvas, RGBA, row-major from the top-left. */
    __gramhdLastFrame?: Uint8Array;
    __gramhdLastFrameInfo?: FrameInfo;
  }
}

function gpuOf(): GPU | undefined {
  return typeof navigator !== 'undefined' ? navigator.gpu : undefined;
}

/** Whether this browser exposes WebGPU at all. */
export function hasWebGPU(): boolean {
  return gpuOf() !== undefined;
}

async function fetchBytes(url: string, onProgress?: LoadOptions['onProgress']): Promise<Uint8Array> {
  const response = await fetch(url);
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
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** Fetches a safetensors checkpoint and builds its generator on the WebGPU device. */
export async function loadCheckpoint(url: string, options: LoadOptions = {}): Promise<GramHDModel> {
  if (!hasWebGPU()) throw new Error('this browser has no WebGPU (navigator.gpu is missing): use Chrome/Edge 113+ or enable WebGPU');
  await initDevice(gpuOf());
  const bytes = await fetchBytes(url, options.onProgress);
  const name = decodeURIComponent(url.split('/').pop() || url);
  const { generator, config, storedAverage } = generatorFromBytes(bytes, name, options.config);
  return {
    url, config, generator, storedAverage, averageSeed: null,
    dispose: () => generator.dispose(),
  };
}

// --- display ---------------------------------------------------------------------------------------

const DISPLAY_WGSL = /* wgsl */ `
struct Params { width: u32, height: u32 }
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

@fragment fn fs(@builtin(position) pos: vec4f) -> @location(0) vec4f {
  let x = min(u32(pos.x), params.width - 1u);
  let y = min(u32(pos.y), params.height - 1u);
  let plane = params.width * params.height;
  let p = y * params.width + x;
  return vec4f(level(image[p]), level(image[plane + p]), level(image[2u * plane + p]), 1.0);
}
`;

let display: { device: GPUDevice; format: GPUTextureFormat; pipeline: GPURenderPipeline } | null = null;
const configured = new WeakMap<HTMLCanvasElement, { context: GPUCanvasContext; device: GPUDevice }>();

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

/** Draws image 0 of `image` [B, 3, H, W] (values in [-1, 1]) into the canvas, sized H x W, and
 * resolves with the presented pixels read back (RGBA). */
async function present(image: Tensor, canvas: HTMLCanvasElement): Promise<{ data: Uint8Array; format: GPUTextureFormat }> {
  const { device } = engineDevice();
  const [, channels, height, width] = image.shape;
  if (channels !== 3) throw new Error(`expected an RGB image, got [${image.shape.join(', ')}]`);
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const context = contextFor(canvas, device);
  const texture = context.getCurrentTexture();
  const pipeline = displayPipeline(device, texture.format);
  const params = device.createBuffer({ size: 8, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([width, height]));
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: params } }, { binding: 1, resource: { buffer: image.buffer } }],
  });
  const bytesPerRow = Math.ceil((width * 4) / 256) * 256;
  const staging = device.createBuffer({ size: bytesPerRow * height, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  // in the engine's pending encoder, after the dispatches that produce the image: one submit
  withEncoder((encoder) => {
    const pass = encoder.beginRenderPass({
      colorAttachments: [{ view: texture.createView(), loadOp: 'clear', storeOp: 'store', clearValue: { r: 0, g: 0, b: 0, a: 1 } }],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.draw(3);
    pass.end();
    encoder.copyTextureToBuffer({ texture }, { buffer: staging, bytesPerRow, rowsPerImage: height }, [width, height, 1]);
  });
  flush();
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
  params.destroy();
  return { data, format: texture.format };
}

/** The latent code of `seed` (torch.manual_seed(seed); torch.randn(1, z_dim)) and, when asked, the
 * 10000 latents the CLI averages for that seed's truncation centre. */
export function seedLatents(seed: number, zDim: number, withAverage: boolean): { z: Float32Array; averageZ: Float32Array | null } {
  const g = new TorchGenerator(seed);
  const z = g.randn(zDim);
  return { z, averageZ: withAverage ? g.randn(10000 * zDim) : null };
}

let queue: Promise<unknown> = Promise.resolve();

/** Renders `seed` at the pose into the canvas (resized to the image), like `gramhd render --average
 * auto`: the stored truncation averages, else the seed's own. Calls are serialised. */
export function renderToCanvas(model: GramHDModel, canvas: HTMLCanvasElement, options: RenderOptions = {}): Promise<FrameInfo> {
  const run = queue.then(() => renderNow(model, canvas, options));
  queue = run.catch(() => undefined);
  return run;
}

async function renderNow(model: GramHDModel, canvas: HTMLCanvasElement, options: RenderOptions): Promise<FrameInfo> {
  const started = performance.now();
  const seed = options.seed ?? 0;
  const psi = options.truncation ?? 0.7;
  const zDim = model.config.z_dim;
  const needAverage = psi !== 1 && !model.storedAverage && model.averageSeed !== seed;
  const { z, averageZ } = seedLatents(seed, zDim, needAverage);
  if (averageZ) {
    tidy(() => noGrad(() => model.generator.computeTruncationAverage(Tensor.fromData(averageZ, [10000, zDim]))));
    model.averageSeed = seed;
  }
  const camera = cameraFromPose(Math.PI / 2 + (options.pitch ?? 0), Math.PI / 2 + (options.yaw ?? 0));
  const image = tidy(() => noGrad(() => model.generator.forward(Tensor.fromData(z, [1, zDim]), [camera], {
    truncationPsi: psi,
    lockViewDependence: options.lockViewDependence ?? true,
  }).image));
  let frame: { data: Uint8Array; format: GPUTextureFormat };
  try {
    frame = await present(image, canvas);
  } finally {
    image.dispose();
  }
  const info: FrameInfo = { width: canvas.width, height: canvas.height, ms: performance.now() - started, format: frame.format };
  if (typeof window !== 'undefined') {
    window.__gramhdLastFrame = frame.data;
    window.__gramhdLastFrameInfo = info;
  }
  return info;
}
