// A generator from the bytes of one of our safetensors checkpoints (configuration in the metadata),
// without Node: the shared model/checkpoint.ts does the building. `gramhd train` checkpoints (G/
// keys) are refused: picking their EMA weights needs train/, which the browser never loads.
import { parseSafetensors } from '../engine/io/safetensors.ts';
import { buildGenerator, configFromText } from '../model/checkpoint.ts';
import { CONFIG_NAMES, type GeneratorConfig } from '../model/config.ts';
import type { GramGenerator } from '../model/gram.ts';
import type { GramHDGenerator } from '../model/gramhd.ts';

export interface LoadedGenerator {
  generator: GramGenerator | GramHDGenerator;
  config: GeneratorConfig;
  /** Whether the checkpoint held truncation averages (now set on the generator). */
  storedAverage: boolean;
}

function resolveConfigText(value: string, where: string): GeneratorConfig {
  const config = configFromText(value, where);
  if (!config) throw new Error(`${where}: '${value}' is neither a configuration name (${CONFIG_NAMES.join(', ')}) nor JSON`);
  return config;
}

/** Parses safetensors `bytes` (named `where` in errors) and builds the generator on the engine's device. */
export function generatorFromBytes(bytes: Uint8Array, where: string, config?: string): LoadedGenerator {
  const file = parseSafetensors(bytes, where);
  const stored = file.metadata.config;
  let resolved: GeneratorConfig;
  if (config !== undefined) resolved = resolveConfigText(config, 'config');
  else if (stored !== undefined) resolved = resolveConfigText(stored, `${where}: metadata config`);
  else throw new Error(`${where}: no configuration in the metadata`);
  if ([...file.tensors.keys()].some((k) => k.startsWith('G/'))) {
    throw new Error(`${where}: a gramhd train checkpoint (G/ keys); the browser loads generator checkpoints only`);
  }
  return { ...buildGenerator(file.tensors, resolved, where), config: resolved };
}
