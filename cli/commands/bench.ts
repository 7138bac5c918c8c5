// `gramhd bench kernels [--json] [--quick]`: kernel timings on this machine's adapter (cli/bench/).
// `gramhd bench train --config NAME [--steps N] [--warmup N] [--batch N] [--json]`: D+G training
// steps per second at a configuration's size, split per stage (cli/bench/train.ts).
// `gramhd bench model --config NAME [--runs N] [--img_size S] [--json]`: one generator forward per
// stage with GFLOP/s and peak GPU memory (cli/bench/model.ts).
// `gramhd bench orbit --config NAME [--views N] [--runs N] [--stages] [--img_size S] [--json]`: a GRAM-HD
// bake, the views rendered from it and the full forward per view, with peak GPU memory (cli/bench/orbit.ts).
// Progress goes to stderr, the table (or JSON) to stdout.
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice } from '../../engine/index.ts';
import { BENCH_COLUMNS, benchCells, benchKernels, type BenchReport } from '../bench/kernels.ts';
import { benchModel, printModelTable } from '../bench/model.ts';
import { benchOrbit, printOrbitTable } from '../bench/orbit.ts';
import { benchTrain, type TrainBenchReport } from '../bench/train.ts';
import { benchExchange } from '../bench/allreduce.ts';
import { initWorld } from '../mpi.ts';
import { resolveConfig } from '../checkpoint.ts';
import { initNodeDevice } from '../node-gpu.ts';

interface BenchArgs {
  suite: 'kernels' | 'train' | 'model' | 'orbit' | 'allreduce';
  json: boolean;
  quick: boolean;
  config?: string;
  steps: number;
  warmup: number;
  batch?: number;
  runs: number;
  img_size?: number;
  kernels?: number;
  views: number;
  stages: boolean;
}

function printTrainTable(report: TrainBenchReport): void {
  console.log(`adapter: ${report.adapter}`);
  for (const line of report.context) console.log(line);
  console.log(`config: ${report.config}, ${report.imgSize}x${report.imgSize}, batch ${report.batch} (split ${report.batchSplit}), ${report.warmup} warm-up + ${report.steps} timed steps`);
  console.log(`steps/s: ${report.stepsPerSecond.toFixed(4)} (${(report.stepMs / 1000).toFixed(2)} s per D+G step); last losses D ${report.losses.d.toFixed(4)}, G ${report.losses.g.toFixed(4)}`);
  console.log();
  const rows = [['stage', 'ms', '%'], ...report.stages.map((r) => [r.stage, r.ms.toFixed(1), r.percent.toFixed(1)])];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  if (!report.kernels) return;
  console.log();
  console.log('slowest kernels (GPU time per timed step, each dispatch timed in a pass of its own):');
  const krows = [['kernel', 'calls', 'ms'], ...report.kernels.map((k) => [k.key, String(k.calls / report.steps), k.ms.toFixed(1)])];
  const kw = [0, 1, 2].map((i) => Math.max(...krows.map((r) => r[i].length)));
  for (const r of krows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(kw[i]) : cell.padStart(kw[i]))).join('  '));
}

const positiveInt = (name: string, v: number | undefined, min = 1) => {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
};

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
  describe: 'Time the engine on this adapter (suite: kernels, train: D+G steps per second by stage, model: one generator forward by stage, or orbit: GRAM-HD bake and views from it against full forwards; allreduce: under mpiexec, the data-parallel gradient exchange of --config\'s networks, --steps times)',
  builder: (yargs: Argv) => yargs
    .positional('suite', { choices: ['kernels', 'train', 'model', 'orbit', 'allreduce'] as const, demandOption: true, describe: 'what to time' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
    .option('quick', { type: 'boolean', default: false, describe: 'kernels: fewer repetitions and no 98k-row case' })
    .option('config', { type: 'string', describe: 'train: the configuration (a name such as GRAM64_FFHQ, JSON text, or a .json file) whose full-size models train on random images' })
    .option('steps', { type: 'number', default: 3, describe: 'train: timed D+G steps' })
    .option('warmup', { type: 'number', default: 1, describe: 'train: untimed steps first (pipeline compilation, buffer pool)' })
    .option('batch', { type: 'number', describe: 'train: override the configuration\'s batch_size (batch_split is capped to it)' })
    .option('runs', { type: 'number', default: 1, describe: 'model: runs of the stage timing (best of); each is one forward per stage call' })
    .option('kernels', { type: 'number', describe: 'train: also time every dispatch of the timed steps and list this many of the slowest kernels (needs timestamp-query)' })
    .option('img_size', { type: 'number', describe: 'model, orbit: override img_size for a quicker run (GRAM-HD: lr_img_size times a power of two)' })
    .option('views', { type: 'number', default: 10, describe: 'orbit: views rendered from the bake, each timed alone (poses along the video\'s orbit)' })
    .option('stages', { type: 'boolean', default: false, describe: 'orbit: also split the bake and the full forward into stages (one more run of each per stage call)' })
    .check((argv) => {
      if ((argv.suite === 'train' || argv.suite === 'model' || argv.suite === 'orbit' || argv.suite === 'allreduce') && argv.config === undefined) throw new Error(`bench ${argv.suite} needs --config`);
      positiveInt('runs', argv.runs);
      positiveInt('img_size', argv.img_size);
      positiveInt('steps', argv.steps);
      positiveInt('warmup', argv.warmup, 0);
      positiveInt('batch', argv.batch);
      positiveInt('kernels', argv.kernels);
      positiveInt('views', argv.views);
      return true;
    }),
  handler: async ({ suite, json, quick, config, steps, warmup, batch, runs, img_size, kernels, views, stages }) => {
    if (suite === 'allreduce') {
      const resolved = resolveConfig(config!, '--config');
      const world = await initWorld();
      const { info } = await initNodeDevice();
      try {
        const rows = await benchExchange(resolved, world, steps);
        if (world.rank !== 0) return;
        if (json) console.log(JSON.stringify({ adapter: info.adapter, ranks: world.size, config: resolved.name, exchanges: rows }, null, 2));
        else {
          console.log(`${resolved.name ?? 'config'} on ${world.size} ranks (${info.adapter}); ms per exchange, mean of ${steps}`);
          for (const r of rows) console.log(`${r.net}: ${r.params} gradients, ${r.megabytes.toFixed(1)} MB: readback ${r.readbackMs.toFixed(1)}, allreduce ${r.allreduceMs.toFixed(1)}, upload ${r.uploadMs.toFixed(1)}`);
        }
      } finally {
        destroyDevice();
      }
      return;
    }
    const printed = <R>(report: R, table: (r: R) => void) => (json ? console.log(JSON.stringify(report, null, 2)) : table(report));
    // checked before the device starts, as the yargs check requires --config for these suites
    const resolved = suite === 'kernels' ? null : resolveConfig(config!, '--config');
    const { info } = await initNodeDevice();
    try {
      if (suite === 'orbit') {
        printed(await benchOrbit(resolved!, info, { runs, imgSize: img_size, views, stages, onProgress: (line) => process.stderr.write(`  ${line}\n`) }), printOrbitTable);
      } else if (suite === 'model') {
        printed(await benchModel(resolved!, info, {
          runs, imgSize: img_size,
          onRun: (run, cut, calls, ms) => process.stderr.write(`  run ${run}, forward ${cut}/${calls}${cut === calls ? ' (whole)' : ''}: ${(ms / 1000).toFixed(2)} s\n`),
        }), printModelTable);
      } else if (suite === 'train') {
        printed(await benchTrain(resolved!, info, {
          steps, warmup, batch, kernels,
          onStep: (step, warm, ms) => process.stderr.write(`  step ${step}${warm ? ' (warm-up)' : ''}: ${(ms / 1000).toFixed(2)} s\n`),
        }), printTrainTable);
      } else {
        printed(await benchKernels(info, {
          quick,
          onRow: (row) => process.stderr.write(`  ${row.kernel} ${row.shape}: ${row.ms.toFixed(2)} ms\n`),
        }), printTable);
      }
    } finally {
      destroyDevice();
    }
  },
};
