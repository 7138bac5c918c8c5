// `gramhd train`: the authors' train.py on one device. Writes snapshots, checkpoints, log.jsonl and
// losses.svg into --output_dir; resumes everything (optimisers, EMAs, step, RNG) from --load_dir.
import type { Argv, CommandModule } from 'yargs';
import { destroyDevice } from '../../engine/index.ts';
import { train } from '../../train/loop.ts';
import { RECONSTRUCTION_LEARNING_RATES } from '../../train/reconstruction-process.ts';
import { resolveConfig } from '../checkpoint.ts';
import { initWorld } from '../mpi.ts';
import { initNodeDevice } from '../node-gpu.ts';

interface TrainArgs {
  config?: string;
  data_dir: string;
  output_dir: string;
  load_dir?: string;
  set_step?: number;
  total_step: number;
  sample_interval: number;
  save_interval: number;
  gram_ckpt?: string;
  seed: number;
  workers: number;
  eval_interval?: number;
  eval_samples: number;
  eval_real_cache?: string;
  inception_weights?: string;
  adapter?: string;
  objective?: 'gan' | 'reconstruction';
  recon_lr?: number;
  code_lr?: number;
  depth_lambda: number;
}

const positive = (name: string, v: number | undefined) => {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`--${name} must be a positive integer, got ${v}`);
};

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'Train GRAM (stage one) or GRAM-HD (stage two) on an image folder with poses (the authors\' train.py)',
  builder: (yargs: Argv) => yargs
    .option('config', { type: 'string', describe: 'configuration: a name (GRAM64_FFHQ, GRAMHD256_FFHQ, ...), JSON text, or a .json file; needs a training block. Optional with --load_dir (default: the checkpoint\'s)' })
    .option('data_dir', { type: 'string', demandOption: true, describe: 'dataset folder: images with poses/<name>.mat (FFHQ layout) or poses/<name>_pose.npy (AFHQ layout), as the configuration\'s training.dataset says' })
    .option('output_dir', { type: 'string', demandOption: true, describe: 'where snapshots (<step>_fixed.png, <step>_tilted.png, GRAM-HD also _sr), checkpoints (<step>.safetensors), log.jsonl and losses.svg go (created if missing)' })
    .option('load_dir', { type: 'string', describe: 'resume from a checkpoint <step>.safetensors in this folder: weights, both EMAs, both optimiser states, step and RNG state' })
    .option('set_step', { type: 'number', describe: 'the step of the --load_dir checkpoint to resume from (default: the latest)' })
    .option('total_step', { type: 'number', default: 100000, describe: 'train until this step (counted from the start of the run, not of this resumption)' })
    .option('sample_interval', { type: 'number', default: 1000, describe: 'write EMA snapshots (5x5 grids, front and tilted cameras, truncation 0.7) and refresh losses.svg every this many steps' })
    .option('save_interval', { type: 'number', default: 5000, describe: 'write a checkpoint every this many steps (and at the last step)' })
    .option('gram_ckpt', { type: 'string', describe: 'GRAM-HD only: the stage-one checkpoint (our <step>.safetensors, whose first EMA is used, or a GRAM generator .safetensors/.pt) whose representation starts the GRAM-HD one (the reference\'s gram_model_file)' })
    .option('seed', { type: 'number', default: 0, describe: 'seeds the initial weights, the latent/camera stream, the data order and flips, and the snapshot latents (a resumed run keeps its checkpoint\'s seed)' })
    .option('workers', { type: 'number', default: 0, describe: 'worker threads decoding images ahead of training (0: decode on the training thread between GPU waits)' })
    .option('eval_interval', { type: 'number', describe: 'every this many steps, compute the FID of --eval_samples EMA samples (untruncated, seeds 0..N-1 as `gramhd eval generate --truncation 1`) against --eval_real_cache; logged as FID in log.jsonl' })
    .option('eval_samples', { type: 'number', default: 1000, describe: 'samples per FID evaluation (the real cache must hold at least as many)' })
    .option('eval_real_cache', { type: 'string', describe: 'the real images\' feature cache (<tmp_dir>/<name>.safetensors written by `gramhd eval`), extracted at the configuration\'s img_size' })
    .option('inception_weights', { type: 'string', describe: 'torch-fidelity\'s weights-inception-2015-12-05-6726825d.pth, for --eval_interval' })
    .option('adapter', { type: 'string', describe: 'WebGPU adapter by (part of) its name, e.g. llvmpipe; a comma-separated list gives each process of a node the entry of its local rank (default: GRAMHD_ADAPTER, else Dawn\'s choice). Under mpiexec/srun every rank trains data-parallel: rank 0\'s weights, averaged gradients, only rank 0 writes' })
    .option('objective', { choices: ['gan', 'reconstruction'] as const, describe: 'default: the --load_dir checkpoint\'s objective, else gan. gan: the authors\' adversarial training. reconstruction (stage one only, not in the authors\' code): a warm start where every image has its own latent code, optimised with the generator to render that image at its dataset pose (no flips); resume its checkpoint with --objective gan to continue adversarially (the generator\'s optimiser then starts afresh)' })
    .option('recon_lr', { type: 'number', describe: `reconstruction: the generator\'s Adam learning rate (the configuration\'s gen_lr is the GAN\'s); default ${RECONSTRUCTION_LEARNING_RATES.lr}, or the --load_dir checkpoint\'s` })
    .option('code_lr', { type: 'number', describe: `reconstruction: the per-image codes\' Adam learning rate; default ${RECONSTRUCTION_LEARNING_RATES.codeLr}, or the --load_dir checkpoint\'s` })
    .option('depth_lambda', { type: 'number', default: 0, describe: 'reconstruction: weight of the depth term, the mean squared error of the rendered depth on foreground pixels against the dataset\'s depth/<name>.npy maps (gramhd data synth --depth); 0: colour only' })
    .check((argv) => {
      if (!(argv.depth_lambda >= 0)) throw new Error(`--depth_lambda must be non-negative, got ${argv.depth_lambda}`);
      if (argv.recon_lr !== undefined && !(argv.recon_lr > 0)) throw new Error(`--recon_lr must be positive, got ${argv.recon_lr}`);
      if (argv.code_lr !== undefined && !(argv.code_lr > 0)) throw new Error(`--code_lr must be positive, got ${argv.code_lr}`);
      positive('total_step', argv.total_step);
      positive('sample_interval', argv.sample_interval);
      positive('save_interval', argv.save_interval);
      if (argv.set_step !== undefined && (!Number.isInteger(argv.set_step) || argv.set_step < 0)) throw new Error(`--set_step must be a step number, got ${argv.set_step}`);
      if (argv.set_step !== undefined && argv.load_dir === undefined) throw new Error('--set_step needs --load_dir');
      if (argv.config === undefined && argv.load_dir === undefined) throw new Error('--config is required for a new run (a resumed run with --load_dir takes the checkpoint\'s)');
      if (!Number.isInteger(argv.seed) || argv.seed < 0) throw new Error(`--seed must be a non-negative integer, got ${argv.seed}`);
      if (!Number.isInteger(argv.workers) || argv.workers < 0) throw new Error(`--workers must be a non-negative integer, got ${argv.workers}`);
      positive('eval_interval', argv.eval_interval);
      if (argv.eval_interval !== undefined && (argv.eval_real_cache === undefined || argv.inception_weights === undefined)) throw new Error('--eval_interval needs --eval_real_cache and --inception_weights');
      if (!Number.isInteger(argv.eval_samples) || argv.eval_samples < 2) throw new Error(`--eval_samples must be an integer >= 2, got ${argv.eval_samples}`);
      return true;
    }),
  handler: async (args) => {
    const config = args.config !== undefined ? resolveConfig(args.config, '--config') : undefined;
    // under mpiexec/srun: one rank per process, MPI loaded only then
    const world = await initWorld();
    const device = await initNodeDevice({ adapter: args.adapter });
    if (world.size > 1) console.error(`rank ${world.rank}/${world.size}: adapter ${device.info.adapter}`);
    try {
      const result = await train({
        config,
        dataDir: args.data_dir,
        outputDir: args.output_dir,
        loadDir: args.load_dir,
        setStep: args.set_step,
        totalStep: args.total_step,
        sampleInterval: args.sample_interval,
        saveInterval: args.save_interval,
        gramCkpt: args.gram_ckpt,
        seed: args.seed,
        workers: args.workers,
        evaluation: args.eval_interval !== undefined
          ? { interval: args.eval_interval, samples: args.eval_samples, realCache: args.eval_real_cache!, inceptionWeights: args.inception_weights! }
          : undefined,
        world,
        objective: args.objective,
        reconstruction: { lr: args.recon_lr, codeLr: args.code_lr, depthLambda: args.depth_lambda },
      });
      if (world.rank !== 0) return;
      console.error(`trained to step ${result.step} (${result.stepsPerSecond.toFixed(2)} steps/s); checkpoints saved at ${result.saved.join(', ') || 'no step'}`);
    } finally {
      destroyDevice();
    }
  },
};
