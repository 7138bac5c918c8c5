// A golden case's generator as one of our checkpoints (what `gramhd convert` writes): its parameters,
// its configuration in the metadata and its stored truncation averages. Shared by the browser test
// and the web measurements.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import type { HostTensor } from '../../engine/io/host-tensor.ts';
import { goldenDir } from '../helpers/golden.ts';

/** Writes `<dir>/<name>.safetensors` and returns its path. */
export function goldenCheckpoint(name: 'gram_small' | 'gramhd_small', dir: string): string {
  const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
  const { note: _note, ...config } = manifest[name].config as Record<string, unknown>;
  const golden = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, `${name}.safetensors`))), name);
  const entries: [string, HostTensor][] = [...golden.tensors].filter(([k]) => k.startsWith('param/')).map(([k, t]) => [k.slice('param/'.length), t]);
  for (const key of ['avg_frequencies', 'avg_phase_shifts', 'avg_style']) {
    const t = golden.tensors.get(`in/${key}`);
    if (t) entries.push([key, t]);
  }
  const path = join(dir, `${name}.safetensors`);
  writeFileSync(path, serializeSafetensors(entries, { config: JSON.stringify(config) }));
  return path;
}
