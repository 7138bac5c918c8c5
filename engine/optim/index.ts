// Optimisation: Adam, gradient clipping and the parameter EMA.
export { Adam, type AdamOptions } from './adam.ts';
export { clipGradNorm } from './clip.ts';
export { ExponentialMovingAverage } from './ema.ts';
