// Building a generator from the bytes of one of our safetensors checkpoints (config in the metadata,
// optional truncation averages under avg_*), without Node. This duplicates the safetensors part of
// cli/checkpoint.ts loadGenerator (config resolution, state/average split, key checks, averages
// upload); `gramhd train` checkpoints (G/ prefix) are refused because picking their EMA weights needs
// train/. TODO(lead): hoist the shared part into model/ and make both call it.
import { noGrad, Tensor } from '../engine/index.ts';
import { toFloat32, type HostTensor } from '../engine/io/host-tensor.ts';
import { parseSafetensors } from '../engine/io/safetensors.ts';
import type { StateValue } from '../engine/nn/module.ts';
import { configByName, CONFIG_NAMES, isGramHD, parseConfig, type GeneratorConfig } from '../model/config.ts';
import { GramGenerator } from '../model/gram.ts';
import { GramHDGenerator } from '../model/gramhd.ts';

export const AVERAGE_KEYS = ['avg_frequencies', 'avg_phase_shifts', 'avg_style'] as const;

export interface LoadedGenerator {
  generator: GramGenerator | GramHDGenerator;
  config: GeneratorConfig;
  /** Whether the checkpoint held truncation averages (now set on the generator). */
  storedAverage: boolean;
}

/** A configuration from JSON text or a configuration name (no files in a browser). */
export function resolveConfigText(value: string, where: string): GeneratorConfig {
  const text = value.trim();
  if (text.startsWith('{')) return parseConfig(text, where);
  if (CONFIG_NAMES.includes(text)) return configByName(text);
  throw new Error(`${where}: '${value}' is neither a configuration name (${CONFIG_NAMES.join(', ')}) nor JSON`);
}

function few(keys: readonly string[], n = 4): string {
  return keys.length <= n ? keys.join(', ') : `${keys.slice(0, n).join(', ')} (and ${keys.length - n} more)`;
}

/** Parses safetensors `bytes` (named `where` in errors) and builds the generator on the engine's device. */
export function generatorFromBytes(bytes: Uint8Array, where: string, config?: string): LoadedGenerator {
  const file = parseSafetensors(bytes, where);
  const stored = file.metadata.config;
  let resolved: GeneratorConfig;
  if (config !== undefined) resolved = resolveConfigText(config, 'config');
  else if (stored !== undefined) resolved = resolveConfigText(stored, `${where}: metadata config`);
  else throw new Error(`${where}: no configuration in the metadata`);
  const tensors: Map<string, HostTensor> = file.tensors;
  if ([...tensors.keys()].some((k) => k.startsWith('G/'))) {
    throw new Error(`${where}: a training checkpoint; the browser renders inference checkpoints only (convert it first)`);
  }
  const state = new Map<string, StateValue>();
  const averages = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, t] of tensors) {
    const value = { shape: t.shape, data: toFloat32(t, `${where}: ${key}`) };
    if ((AVERAGE_KEYS as readonly string[]).includes(key)) averages.set(key, value);
    else state.set(key, value);
  }
  const hd = isGramHD(resolved);
  const generator = hd ? new GramHDGenerator(resolved) : new GramGenerator(resolved);
  const what = resolved.name ?? (hd ? 'the GRAM-HD configuration' : 'the GRAM configuration');
  const own = generator.stateDict();
  const problems: string[] = [];
  const missing = [...own.keys()].filter((k) => !state.has(k));
  const unexpected = [...state.keys()].filter((k) => !own.has(k));
  const mismatched = [...own].filter(([k, t]) => state.has(k) && state.get(k)!.shape.join(',') !== t.shape.join(','))
    .map(([k, t]) => `${k} [${state.get(k)!.shape.join(',')}] vs [${t.shape.join(',')}]`);
  if (missing.length) problems.push(`${missing.length} missing keys: ${few(missing)}`);
  if (unexpected.length) problems.push(`${unexpected.length} unexpected keys: ${few(unexpected)}`);
  if (mismatched.length) problems.push(`${mismatched.length} shape mismatches (checkpoint vs model): ${few(mismatched, 3)}`);
  if (problems.length) {
    generator.dispose();
    throw new Error(`${where}: does not fit ${what}: ${problems.join('; ')}`);
  }
  try {
    generator.loadStateDict(state);
  } catch (error) {
    generator.dispose();
    throw new Error(`${where}: ${(error as Error).message}`);
  }
  const storedAverage = averages.has('avg_frequencies') && averages.has('avg_phase_shifts') && (!hd || averages.has('avg_style'));
  if (storedAverage) {
    noGrad(() => {
      const upload = (key: string) => Tensor.fromData(averages.get(key)!.data, averages.get(key)!.shape);
      const codes = { frequencies: upload('avg_frequencies'), phase_shifts: upload('avg_phase_shifts') };
      if (generator instanceof GramHDGenerator) {
        const style = upload('avg_style');
        generator.setTruncationAverages(codes, style);
        style.dispose();
      } else generator.setTruncationAverage(codes);
      codes.frequencies.dispose();
      codes.phase_shifts.dispose();
    });
  }
  return { generator, config: resolved, storedAverage };
}
