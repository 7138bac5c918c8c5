// Modules, layers and initialisation.
export { Module, parameter, buffer, freeze, type StateValue, type LoadOptions } from './module.ts';
export { Linear, Conv2d, LeakyReLU, ReLU, Sequential, type Layer, type LinearOptions, type Conv2dLayerOptions } from './layers.ts';
export { Random, manualSeed, defaultRandom } from './random.ts';
export { uniform_, normal_, constant_, kaimingNormal_, fans } from './init.ts';
export { assign } from './assign.ts';
