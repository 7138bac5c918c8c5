// `gramhd convert`: a torch.save'd state_dict (.pt) or a safetensors file to float32 (or float16)
// safetensors, every tensor under its state_dict key. A `gramhd train` checkpoint (G/, D/, ema/, ...)
// becomes the generator to ship: its first EMA's weights under the generator's keys, with the
// training configuration in the metadata.
import type { Argv, CommandModule } from 'yargs';
import { fromFloat32, toFloat32 } from '../../engine/io/host-tensor.ts';
import type { HostTensor } from '../../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { parseTorchPt } from '../../engine/io/torch-pt.ts';
import { configByName, CONFIG_NAMES } from '../../model/config.ts';
import { destroyDevice } from '../../engine/index.ts';
import { loadGenerator } from '../checkpoint.ts';
import { readFileBytes, writeFileAtomic } from '../../train/files.ts';
import { initNodeDevice } from '../node-gpu.ts';

interface ConvertArgs {
  input: string;
  output: string;
  config?: string;
  float16: boolean;
}

/**
 * The safetensors metadata value recorded for `--config NAME`: a named configuration expanded into
 * its full JSON (what the render command reads back); any other value is stored as given.
 */
export function configMetadata(name: string): string {
  return CONFIG_NAMES.includes(name) ? JSON.stringify(configByName(name)) : name;
}

export const convertCommand: CommandModule<object, ConvertArgs> = {
  command: 'convert <input> <output>',
  describe: 'Convert a checkpoint (.pt from torch.save, or .safetensors) to float32 safetensors; a training checkpoint to its EMA generator',
  builder: (yargs: Argv) => yargs
    .positional('input', { type: 'string', demandOption: true, describe: 'torch.save state_dict (.pt, .pth, ...) or .safetensors file; a `gramhd train` checkpoint <step>.safetensors gives its first EMA generator' })
    .positional('output', { type: 'string', demandOption: true, describe: 'safetensors file to write' })
    .option('config', { type: 'string', describe: 'name of the model configuration, stored in the metadata' })
    .option('float16', { type: 'boolean', default: false, describe: 'store floating-point tensors as float16' }),
  handler: async ({ input, output, config, float16 }) => {
    const bytes = await readFileBytes(input);
    const tensors = input.endsWith('.safetensors') ? parseSafetensors(bytes, input).tensors : parseTorchPt(bytes, input);
    if ([...tensors.keys()].some((k) => k.startsWith('G/'))) {
      await writeFileAtomic(output, await emaGeneratorFile(input, config, float16));
      return;
    }
    const converted: [string, HostTensor][] = [...tensors].map(([key, t]) => [key, convertTensor(t, key, float16)]);
    const metadata = config === undefined ? undefined : { config: configMetadata(config) };
    await writeFileAtomic(output, serializeSafetensors(converted, metadata));
  },
};

/** Floating-point tensors become F32 (or F16); integer and boolean tensors keep their dtype. */
function convertTensor(t: HostTensor, key: string, float16: boolean): HostTensor {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) return t;
  return fromFloat32(t.shape, toFloat32(t, key), float16 ? 'F16' : 'F32');
}

/** A training checkpoint's EMA generator as a generator safetensors file (config in the metadata). */
async function emaGeneratorFile(input: string, config: string | undefined, float16: boolean): Promise<Uint8Array> {
  await initNodeDevice();
  try {
    const { generator, config: resolved } = await loadGenerator(input, config);
    const entries: [string, HostTensor][] = [];
    for (const [key, t] of generator.stateDict()) {
      entries.push([key, fromFloat32([...t.shape], await t.toFloat32(), float16 ? 'F16' : 'F32')]);
    }
    generator.dispose();
    return serializeSafetensors(entries, { config: JSON.stringify(resolved) });
  } finally {
    destroyDevice();
  }
}
