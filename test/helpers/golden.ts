// Where the golden vectors live: test/golden once they are copied into the repository, until then
// the shared folder next to it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export const goldenDir = existsSync(join(repoRoot, 'test/golden'))
  ? join(repoRoot, 'test/golden')
  : join(repoRoot, '../shared/golden');

/** The golden gram_small generator as our safetensors checkpoint (its `param/` tensors under their
 * state_dict keys, the manifest's configuration in the metadata), written to `dir`. */
export function writeGoldenGramSmall(dir: string): { ckpt: string; config: Record<string, unknown> } {
  const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
  const { note: _note, ...config } = manifest.gram_small.config as Record<string, unknown>;
  const golden = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, 'gram_small.safetensors'))), 'gram_small');
  const params = [...golden.tensors].filter(([k]) => k.startsWith('param/')).map(([k, t]) => [k.slice('param/'.length), t] as [string, typeof t]);
  const ckpt = join(dir, 'gram_small.safetensors');
  writeFileSync(ckpt, serializeSafetensors(params, { config: JSON.stringify(config) }));
  return { ckpt, config };
}

/** This process's environment without MPI, Slurm-array or Indexed-Job variables, which would make
 * a spawned gramhd shard itself (the suite may run under mpiexec). */
export function launcherFreeEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PMI_|PMIX_|OMPI_|SLURM_ARRAY|JOB_COMPLETION_INDEX|GRAMHD_SHARD_COUNT)/.test(k)));
}
