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
let errorCount = 0;
let cascadeError: Error | null = null;
/** A cascade error was thrown in place of a root error that had not arrived yet. */
let rootAlreadySurfaced = false;

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
    const message = `${e instanceof GPUOutOfMemoryError ? 'GPU out of memory' : 'GPU error'}: ${e.message.split('\n')[0]}`;
    // Dawn follows a failure with errors about every object built on it. They add nothing once
    // the root error is known, and before that they stand in for it without counting as a new one.
    if (/due to a previous error/.test(e.message)) {
      if (errorCount === 0) cascadeError ??= new Error(message);
      return;
    }
    reportGpuError(message);
  });
  void device.lost.then((lost) => {
    if (current?.device === device) current = null;
    if (lost.reason !== 'destroyed') reportGpuError(`GPU device lost: ${lost.message || lost.reason}`);
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

/** Records an asynchronous GPU failure; the next synchronisation point throws it. */
export function reportGpuError(message: string): void {
  if (rootAlreadySurfaced) {
    rootAlreadySurfaced = false;
    return;
  }
  errorCount++;
  pendingError ??= new Error(message);
}

/** How many GPU errors were recorded so far (the runtime drops work encoded before one). */
export function gpuErrorCount(): number {
  return errorCount;
}

/** Raises a GPU error or device loss recorded since the last check. */
export function throwPendingGpuError(): void {
  if (!pendingError && cascadeError) {
    pendingError = cascadeError;
    errorCount++;
    rootAlreadySurfaced = true;
  }
  cascadeError = null;
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
