// `gramhd verify --golden DIR [--case NAME ...]`: runs golden cases (cli/verify/) and prints one row
// per output: relative error against the float64 truth, the error allowed, pass or FAIL. Exits
// non-zero when any output fails or a requested case cannot be run.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { readFileBytes } from '../../train/files.ts';
import { initWorld } from '../mpi.ts';
import { initNodeDevice } from '../node-gpu.ts';
import { verifyCases } from '../verify/cases.ts';
import type { ManifestCase, VerifyRow } from '../verify/compare.ts';

interface VerifyArgs {
  golden: string;
  case?: string[];
}

interface LocatedCase {
  entry: ManifestCase;
  /** The folder holding the case's manifest and safetensors file. */
  dir: string;
}

/** The cases of DIR/manifest.json and, when present, of the evaluation cases in DIR/eval/. */
async function readManifests(dir: string): Promise<Map<string, LocatedCase>> {
  const cases = new Map<string, LocatedCase>();
  for (const folder of [dir, join(dir, 'eval')]) {
    if (folder !== dir && !existsSync(join(folder, 'manifest.json'))) continue;
    for (const [name, entry] of await readManifest(folder)) if (!cases.has(name)) cases.set(name, { entry, dir: folder });
  }
  return cases;
}

/** The case entries of manifest.json (its other keys, seed, torch version and format, are notes). */
async function readManifest(dir: string): Promise<Map<string, ManifestCase>> {
  const path = join(dir, 'manifest.json');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await readFileBytes(path)));
  } catch (error) {
    throw new Error(error instanceof SyntaxError ? `${path}: not valid JSON (${error.message})` : (error as Error).message);
  }
  const cases = new Map<string, ManifestCase>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (typeof entry === 'object' && entry !== null && 'outputs' in entry) cases.set(name, entry as ManifestCase);
  }
  return cases;
}

/** The cases to run: the requested ones, each checked, or every supported case the manifest has. */
function selectCases(requested: string[] | undefined, manifest: Map<string, LocatedCase>, manifestPath: string): string[] {
  if (!requested?.length) {
    // by default, every supported case whose file is there (a folder may hold only some cases)
    const supported = [...verifyCases.keys()].filter((name) => manifest.has(name));
    const missing = supported.filter((name) => !existsSync(join(manifest.get(name)!.dir, `${name}.safetensors`)));
    for (const name of missing) console.error(`skipping case ${name}: no ${name}.safetensors next to ${manifestPath}`);
    return supported.filter((name) => !missing.includes(name));
  }
  for (const name of requested) {
    if (!manifest.has(name)) throw new Error(`case ${name} is not in ${manifestPath} (it has: ${[...manifest.keys()].join(', ')})`);
    if (!verifyCases.has(name)) throw new Error(`case ${name} is not supported yet (supported: ${[...verifyCases.keys()].join(', ')})`);
  }
  return [...new Set(requested)];
}

/** The cases `gramhd verify` can run under mpiexec. */
const TRAINING_CASES = ['train_gram', 'train_gramhd'];

function formatRow(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe: 'Compare this port with the golden vectors of the authors\' PyTorch code',
  builder: (yargs: Argv) => yargs
    .option('golden', { type: 'string', demandOption: true, describe: 'folder with manifest.json and <case>.safetensors files' })
    .option('case', { type: 'string', array: true, describe: 'case to run (repeatable); default: every supported case' }),
  handler: async ({ golden, case: requested }) => {
    const manifest = await readManifests(golden);
    // under mpiexec the training cases split their batch over the ranks (data-parallel, gradients
    // averaged over the ranks), to check the multi-process step against the same golden numbers
    const world = await initWorld();
    let names = selectCases(requested, manifest, join(golden, 'manifest.json'));
    if (world.size > 1) {
      const other = names.filter((n) => !TRAINING_CASES.includes(n));
      if (requested?.length && other.length) throw new Error(`under mpiexec only the training cases (${TRAINING_CASES.join(', ')}) run, split over the ranks; not ${other.join(', ')}`);
      names = names.filter((n) => TRAINING_CASES.includes(n));
    }
    const device = await initNodeDevice();
    if (world.size > 1) console.error(`rank ${world.rank}/${world.size}: adapter ${device.info.adapter}; ${names.join(', ')} with the batch split over ${world.size} ranks`);
    const results: { name: string; rows: VerifyRow[] }[] = [];
    try {
      for (const name of names) {
        const { entry, dir } = manifest.get(name)!;
        const file = join(dir, `${name}.safetensors`);
        const { tensors } = parseSafetensors(await readFileBytes(file), file);
        results.push({ name, rows: await verifyCases.get(name)!({ name, file, entry, tensors, world }) });
      }
    } finally {
      destroyDevice();
    }
    const table = [['case', 'output', 'rel. error', 'allowed', 'result'], ...results.flatMap(({ name, rows }) => rows.map((row) => [
      name, row.output, row.relErr.toExponential(2), row.allowed.toExponential(2), row.pass ? 'pass' : 'FAIL',
    ]))];
    const widths = table[0].map((_, i) => Math.max(...table.map((cells) => cells[i].length)));
    if (world.rank === 0) for (const cells of table) console.log(formatRow(cells, widths));
    const rows = results.flatMap((r) => r.rows);
    const failed = rows.filter((row) => !row.pass).length;
    // every rank holds the same averaged gradients and weights; rank 0 reports, the others only fail
    if (world.rank !== 0) {
      if (failed > 0) throw new Error(`rank ${world.rank}: ${failed} of ${rows.length} outputs exceed their allowed error`);
      return;
    }
    if (failed > 0) throw new Error(`${failed} of ${rows.length} outputs exceed their allowed error`);
    console.log(`all ${rows.length} outputs of ${names.join(', ')} within their allowed error`);
  },
};
