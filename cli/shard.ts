// `--shard I/N` for the embarrassingly parallel commands (render, data synth, eval generate): shard
// I of N takes the I-th of N contiguous, near-equal blocks of the command's item list (seeds or image
// indices), so N shards together write exactly the files one run writes, each file by one shard.
// Without --shard the shard comes from the launcher's environment, first match wins:
//   - Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX, when GRAMHD_SHARD_COUNT holds the count (the Job
//     does not export its `completions`; set the variable to the same number in the pod template)
//   - Slurm job arrays: (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP of
//     SLURM_ARRAY_TASK_COUNT
//   - an MPI launcher: PMI_RANK/PMI_SIZE (MPICH's mpiexec, srun --mpi=pmi2) or
//     OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE; read from the environment, MPI itself is not loaded
// and else the whole list (shard 0/1).

export interface Shard {
  /** 0-based, < count. */
  index: number;
  count: number;
  /** Where the shard came from, for messages ('--shard', 'JOB_COMPLETION_INDEX', ...). */
  source: string;
}

export const WHOLE: Shard = { index: 0, count: 1, source: 'default' };

const SHARD_FLAG_HELP = 'shard I/N: process the I-th (0-based) of N equal contiguous parts of the list, so that N shards write exactly what one run writes (default: from JOB_COMPLETION_INDEX + GRAMHD_SHARD_COUNT, SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or the MPI rank/size; else 0/1)';

/** The yargs option for `--shard`. */
export const shardOption = { type: 'string', describe: SHARD_FLAG_HELP } as const;

function parseIndexCount(text: string, what: string, index: string, count: string): Shard {
  const i = Number(index);
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: shard count '${count}' is not a positive integer`);
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`${what}: shard index '${index}' is not an integer in 0..${n - 1} (${text})`);
  return { index: i, count: n, source: what };
}

/** The shard of this process: `flag` ('I/N') when given, else the launcher's environment. */
export function resolveShard(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard {
  if (flag !== undefined) {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(String(flag));
    if (!m) throw new Error(`--shard: '${flag}' is not of the form I/N (e.g. 0/4)`);
    return parseIndexCount(String(flag), '--shard', m[1], m[2]);
  }
  // JOB_COMPLETION_INDEX alone does not shard: an Indexed Job may run gramhd for other reasons
  // (CI, training), and only GRAMHD_SHARD_COUNT says the command is meant to be split
  if (env.GRAMHD_SHARD_COUNT !== undefined) {
    if (env.JOB_COMPLETION_INDEX === undefined) {
      throw new Error('GRAMHD_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not (a Kubernetes Indexed Job sets it); pass --shard I/N instead');
    }
    return parseIndexCount(`JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX}`, 'JOB_COMPLETION_INDEX/GRAMHD_SHARD_COUNT', env.JOB_COMPLETION_INDEX, env.GRAMHD_SHARD_COUNT);
  }
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    const id = Number(env.SLURM_ARRAY_TASK_ID);
    const min = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    const step = Number(env.SLURM_ARRAY_TASK_STEP ?? 1);
    const offset = (id - min) / step;
    return parseIndexCount(`SLURM_ARRAY_TASK_ID=${id}, MIN=${min}, STEP=${step}`, 'SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT', String(offset), env.SLURM_ARRAY_TASK_COUNT);
  }
  if (env.PMI_RANK !== undefined && env.PMI_SIZE !== undefined) {
    return parseIndexCount(`PMI_RANK=${env.PMI_RANK}`, 'PMI_RANK/PMI_SIZE', env.PMI_RANK, env.PMI_SIZE);
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined && env.OMPI_COMM_WORLD_SIZE !== undefined) {
    return parseIndexCount(`OMPI_COMM_WORLD_RANK=${env.OMPI_COMM_WORLD_RANK}`, 'OMPI_COMM_WORLD_RANK/SIZE', env.OMPI_COMM_WORLD_RANK, env.OMPI_COMM_WORLD_SIZE);
  }
  return WHOLE;
}

/** The half-open index range [start, end) of `shard` in a list of `total` items: blocks whose sizes
 * differ by at most one, in order, covering 0..total-1 exactly once over all shards. */
export function shardRange(total: number, shard: Shard): [number, number] {
  return [Math.floor((shard.index * total) / shard.count), Math.floor(((shard.index + 1) * total) / shard.count)];
}

/** ' (shard 1/3: items 3..5 of 8)' for progress lines; '' for the whole list. */
export function describeShard(shard: Shard, total: number, noun: string): string {
  if (shard.count === 1) return '';
  const [start, end] = shardRange(total, shard);
  return ` (shard ${shard.index}/${shard.count} from ${shard.source}: ${noun} ${start}..${end - 1} of ${total})`;
}
