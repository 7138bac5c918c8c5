// The one GPUDevice the engine runs on: acquired from whatever `GPU` the entry point hands over
// (navigator.gpu in a browser, Dawn's `create()` in Node), with the adapter's real limits and the
// optional features the engine can use. GPU errors and device loss become JS errors at the next
// synchronisation point, never silent zeros.

export interface DeviceInfo {
  /** Adapter description as Dawn/Chrome report it (vendor, architecture, device, description). */
  adapter: string;
  features: Set<string>;
  limits: GPUSupportedLimits;
  isSoftware: boolean;
}

export interface EngineDevice {
  device: GPUDevice;
  info: DeviceInfo;
}

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

const NO_ADAPTER_HELP =
  'no WebGPU adapter found. On Linux without a GPU driver install Mesa lavapipe: ' +
  'add bookworm-backports to /etc/apt/sources.list.d/debian.sources, then ' +
  '`apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` (scripts/setup.sh does this); ' +
  'in a browser, use one with WebGPU enabled (Chrome 113+).';

let current: EngineDevice | null = null;
let pendingError: Error | null = null;

/** Acquires the adapter and device from `gpu` and makes it the engine's device. */
export async function initDevice(gpu: GPU | undefined, options: { powerPreference?: GPUPowerPreference } = {}): Promise<EngineDevice> {
  if (current) return current;
  if (!gpu) throw new Error(NO_ADAPTER_HELP);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of [
    'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage',
  ] as const) {
    requiredLimits[name] = adapter.limits[name];
  }
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  const ai = adapter.info;
  const adapterName = [ai.vendor, ai.architecture, ai.device, ai.description].filter(Boolean).join(' ') || 'unknown adapter';
  const info: DeviceInfo = {
    adapter: adapterName,
    features: new Set(features),
    limits: device.limits,
    isSoftware: /llvmpipe|lavapipe|swiftshader/i.test(adapterName) || (ai as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
  };
  device.addEventListener('uncapturederror', (event) => {
    const e = (event as GPUUncapturedErrorEvent).error;
    const kind = e instanceof GPUOutOfMemoryError ? 'GPU out of memory' : 'GPU error';
    pendingError ??= new Error(`${kind}: ${e.message.split('\n')[0]}`);
  });
  void device.lost.then((lost) => {
    if (current?.device === device) current = null;
    if (lost.reason !== 'destroyed') pendingError ??= new Error(`GPU device lost: ${lost.message || lost.reason}`);
  });
  current = { device, info };
  return current;
}

/** The engine's device; throws if initDevice has not run or the device was lost. */
export function engineDevice(): EngineDevice {
  throwPendingGpuError();
  if (!current) throw new Error('no GPU device: call initDevice() (cli/node-gpu.ts in Node) before using tensors');
  return current;
}

/** Raises a GPU error or device loss recorded since the last check. */
export function throwPendingGpuError(): void {
  if (pendingError) {
    const e = pendingError;
    pendingError = null;
    throw e;
  }
}

/** Destroys the device (tests and CLI exit); a later initDevice acquires a fresh one. */
export function destroyDevice(): void {
  current?.device.destroy();
  current = null;
}
