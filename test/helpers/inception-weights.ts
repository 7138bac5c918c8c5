// The hashed golden InceptionV3 weights as a torch.save'd state dict, like torch-fidelity's weights
// file.
import { hashedInceptionState } from '../../model/inception-hash-weights.ts';
import { int, orderedDict, program, tensor } from './pickle-writer.ts';
import { writeZip } from './zip-writer.ts';

export function hashedWeightsPt(): Uint8Array {
  const entries: [string, Uint8Array][] = [];
  const storages: { name: string; data: Uint8Array }[] = [];
  for (const [i, [key, value]] of [...hashedInceptionState()].entries()) {
    const count = value.data.length;
    const isLong = key.endsWith('num_batches_tracked');
    const data = isLong ? new Uint8Array(new BigInt64Array(count).buffer) : new Uint8Array(Float32Array.from(value.data).buffer);
    const strides = value.shape.map((_, d) => value.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    entries.push([key, tensor(isLong ? 'LongStorage' : 'FloatStorage', String(i), count, int(0), [...value.shape], strides)]);
    storages.push({ name: `archive/data/${i}`, data });
  }
  return writeZip([{ name: 'archive/data.pkl', data: program(orderedDict(...entries)) }, ...storages, { name: 'archive/version', data: new TextEncoder().encode('3\n') }]);
}
