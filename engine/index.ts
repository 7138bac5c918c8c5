// The engine's public surface.
export { initDevice, engineDevice, destroyDevice, type EngineDevice, type DeviceInfo } from './device.ts';
export { Tensor, numel, type DType } from './tensor.ts';
export { tidy, tidyAsync } from './scope.ts';
export { grad, backward, noGrad, isGradEnabled } from './autograd.ts';
export { flush, synchronize, startKernelProfile, stopKernelProfile, discardKernelProfile } from './runtime.ts';
export type { KernelTime } from './kernel-profile.ts';
export { poolStats, trimPool, resetPeak } from './buffer-pool.ts';
export * as ops from './ops/index.ts';
export * as nn from './nn/index.ts';
export * as optim from './optim/index.ts';
