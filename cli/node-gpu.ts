// Node's WebGPU: Dawn through the `webgpu` package. The Dawn instance returned by create() must stay
// referenced for the device's whole life (a collected instance segfaults the process), so it lives
// in this module.
import { create, globals } from 'webgpu';
import { initDevice, type EngineDevice } from '../engine/device.ts';

let dawn: GPU | null = null;

export async function initNodeDevice(): Promise<EngineDevice> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  if (!dawn) {
    Object.assign(globalThis, globals);
    dawn = create([]);
  }
  return initDevice(dawn);
}
