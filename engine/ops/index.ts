// The op set. Import ops from here: it also hands autograd the few ops it needs itself.
import { installAutogradOps } from '../autograd.ts';
import { add, onesLike, zerosLike } from './elementwise.ts';

installAutogradOps({ add, onesLike, zerosLike });

export * from './elementwise.ts';
export * from './reduce.ts';
export * from './shape.ts';
export * from './scan.ts';
export * from './matmul.ts';
export * from './pad.ts';
export * from './conv.ts';
export * from './pool.ts';
export * from './resample.ts';
export * from './pool-padded.ts';
