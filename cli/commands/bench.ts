// `gramhd bench kernels [--json] [--quick]`: kernel timings on this machine's adapter (cli/bench/).
// Progress goes to stderr, the table (or JSON) to stdout.
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice } from '../../engine/index.ts';
import { BENCH_COLUMNS, benchCells, benchKernels, type BenchReport } from '../bench/kernels.ts';
import { initNodeDevice } from '../node-gpu.ts';

interface BenchArgs {
  suite: 'kernels';
  json: boolean;
  quick: boolean;
}

function printTable(report: BenchReport): void {
  const table = [BENCH_COLUMNS, ...report.rows.map(benchCells)];
  const widths = BENCH_COLUMNS.map((_, i) => Math.max(...table.map((cells) => cells[i].length)));
  // text left, numbers right
  const format = (cells: string[]) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`adapter: ${report.adapter}`);
  for (const line of report.context) console.log(line);
  console.log();
  for (const cells of table) console.log(format(cells));
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench <suite>',
  describe: 'Time the engine on this adapter (suite: kernels)',
  builder: (yargs: Argv) => yargs
    .positional('suite', { choices: ['kernels'] as const, demandOption: true, describe: 'what to time' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
    .option('quick', { type: 'boolean', default: false, describe: 'fewer repetitions and no 98k-row case' }),
  handler: async ({ json, quick }) => {
    const { info } = await initNodeDevice();
    let report: BenchReport;
    try {
      report = await benchKernels(info, {
        quick,
        onRow: (row) => process.stderr.write(`  ${row.kernel} ${row.shape}: ${row.ms.toFixed(2)} ms\n`),
      });
    } finally {
      destroyDevice();
    }
    if (json) console.log(JSON.stringify(report, null, 2));
    else printTable(report);
  },
};
