// One Dawn device for the whole test process.
import { initNodeDevice } from '../../cli/node-gpu.ts';

export const gpu = await initNodeDevice();
