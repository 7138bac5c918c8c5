// Node's WebGPU: Dawn through the `webgpu` package. The Dawn instance returned by create() must stay
// referenced for the device's whole life (a collected instance segfaults the process), so it lives
// in this module.
//
// Choosing the adapter (one GPU per process): `--adapter` or GRAMHD_ADAPTER holds a name, matched by
// Dawn against its adapters' names ('llvmpipe', 'SwiftShader', 'NVIDIA GeForce RTX 4090'), or a
// comma-separated list, of which each process takes the entry of its node-local rank (MPI_LOCALRANKID
// from MPICH's mpiexec, SLURM_LOCALID from srun, OMPI_COMM_WORLD_LOCAL_RANK) modulo the list's length.
// Identical GPUs have identical names; there the launcher or container hides all but one GPU per
// process (Kubernetes' per-pod GPU, or for Mesa drivers MESA_VK_DEVICE_SELECT=vendor:device per rank).
import { create, globals } from 'webgpu';
import { initDevice, type EngineDevice } from '../engine/device.ts';

let dawn: GPU | null = null;

/** This process's rank among the processes of its node, from the launcher's environment (0 without one). */
export function localRank(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MPI_LOCALRANKID ?? env.SLURM_LOCALID ?? env.OMPI_COMM_WORLD_LOCAL_RANK ?? '0';
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** The adapter name this process asks Dawn for: one entry of a comma-separated list, by local rank. */
export function adapterForRank(spec: string | undefined, rank: number): string | undefined {
  if (spec === undefined || spec.trim() === '') return undefined;
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  return names.length ? names[rank % names.length] : undefined;
}

export async function initNodeDevice(options: { adapter?: string } = {}): Promise<EngineDevice> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const fromFlag = options.adapter !== undefined;
  const adapter = adapterForRank(options.adapter ?? process.env.GRAMHD_ADAPTER, localRank());
  if (!dawn) {
    Object.assign(globalThis, globals);
    // Dawn rounds timestamp queries (to 65.5 us on lavapipe and on NVIDIA) against timing attacks
    // by web content; a CLI runs only its own kernels, and the benches need the real times.
    const flags = ['disable-dawn-features=timestamp_quantization'];
    if (adapter !== undefined) flags.push(`adapter=${adapter}`);
    dawn = create(flags);
  }
  try {
    return await initDevice(dawn);
  } catch (e) {
    const message = (e as Error).message;
    // Dawn's answer to an unmatched name lists the adapters over several lines: one line here
    if (adapter !== undefined && /no suitable backends/.test(message)) {
      const available = [...message.matchAll(/name: '([^']*)'/g)].map((m) => m[1]);
      throw new Error(`${fromFlag ? '--adapter' : 'GRAMHD_ADAPTER'} '${adapter}': no such adapter; available: ${available.map((a) => `'${a}'`).join(', ') || 'none'}`);
    }
    throw e;
  }
}
