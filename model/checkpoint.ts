// Building a generator from checkpoint tensors, shared by the CLI (files, .pt) and the browser
// (fetched safetensors): the configuration from a name or JSON, the truncation averages our
// checkpoints carry under avg_* (not module state), and one-line errors that list every missing,
// unexpected or mis-shaped key.
import { noGrad, Tensor } from '../engine/index.ts';
import { toFloat32, type HostTensor } from '../engine/io/host-tensor.ts';
import type { StateValue } from '../engine/nn/module.ts';
import { configByName, CONFIG_NAMES, isGramHD, parseConfig, type GeneratorConfig } from './config.ts';
import { GramGenerator } from './gram.ts';
import { GramHDGenerator } from './gramhd.ts';

/** Keys of our checkpoints that hold truncation averages rather than module state. */
export const AVERAGE_KEYS = ['avg_frequencies', 'avg_phase_shifts', 'avg_style'] as const;

export interface BuiltGenerator {
  generator: GramGenerator | GramHDGenerator;
  /** Whether the checkpoint held truncation averages (now set on the generator). */
  storedAverage: boolean;
}

/** A configuration from a name (GRAM64_FFHQ, ...) or JSON text; `where` names its origin in errors. */
export function configFromText(value: string, where: string): GeneratorConfig | null {
  const text = value.trim();
  if (text.startsWith('{')) return parseConfig(text, where);
  if (CONFIG_NAMES.includes(text)) return configByName(text);
  return null;
}

/** A list for a one-line message: the first few entries and how many more. */
function few(keys: readonly string[], n = 4): string {
  return keys.length <= n ? keys.join(', ') : `${keys.slice(0, n).join(', ')} (and ${keys.length - n} more)`;
}

/**
 * The generator of `config` with the state in `tensors` (named `where` in errors). `replace` may
 * swap in other weights once the keys are known to fit (a training checkpoint's EMA shadows).
 */
export function buildGenerator(
  tensors: ReadonlyMap<string, HostTensor>, config: GeneratorConfig, where: string,
  replace?: (generator: GramGenerator | GramHDGenerator) => Map<string, StateValue>,
): BuiltGenerator {
  const state = new Map<string, StateValue>();
  const averages = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, t] of tensors) {
    const value = { shape: t.shape, data: toFloat32(t, `${where}: ${key}`) };
    if ((AVERAGE_KEYS as readonly string[]).includes(key)) averages.set(key, value);
    else state.set(key, value);
  }
  const hd = isGramHD(config);
  const generator = hd ? new GramHDGenerator(config) : new GramGenerator(config);
  const what = config.name ?? (hd ? 'the GRAM-HD configuration' : 'the GRAM configuration');
  const own = generator.stateDict();
  const problems: string[] = [];
  const missing = [...own.keys()].filter((k) => !state.has(k));
  const unexpected = [...state.keys()].filter((k) => !own.has(k));
  const mismatched = [...own].filter(([k, t]) => state.has(k) && state.get(k)!.shape.join(',') !== t.shape.join(','))
    .map(([k, t]) => `${k} [${state.get(k)!.shape.join(',')}] vs [${t.shape.join(',')}]`);
  if (missing.length) problems.push(`${missing.length} missing keys: ${few(missing)}`);
  if (unexpected.length) problems.push(`${unexpected.length} unexpected keys: ${few(unexpected)}`);
  if (mismatched.length) problems.push(`${mismatched.length} shape mismatches (checkpoint vs model): ${few(mismatched, 3)}`);
  try {
    if (problems.length) throw new Error(`${where}: does not fit ${what}: ${problems.join('; ')}`);
    if (replace) for (const [key, value] of replace(generator)) state.set(key, value);
    try {
      generator.loadStateDict(state);
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`);
    }
  } catch (error) {
    generator.dispose();
    throw error;
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
  return { generator, storedAverage };
}
