// `mpiexec -n N node bin/gramhd.js bench allreduce --config NAME`: the data-parallel gradient
// exchange of a configuration's full-size networks, timed as training runs it (train/data-parallel.ts
// averageGradients): the discriminator's and the generator's trainable gradients, each packed and read
// back once, allreduced over the ranks, scaled and uploaded. Gradients are copies of the weights (the
// exchange does not look at the values).
import { noGrad, ops, type Tensor } from '../../engine/index.ts';
import { isGramHD, type GeneratorConfig } from '../../model/config.ts';
import type { GramHDGenerator } from '../../model/gramhd.ts';
import type { Collective } from '../../train/collective.ts';
import { averageGradients, newExchangeStats } from '../../train/data-parallel.ts';
import { freezeRepresentation } from '../../train/gramhd-process.ts';
import { buildModels } from '../../train/loop.ts';

export interface ExchangeTiming {
  net: 'D' | 'G';
  /** Gradients exchanged (trainable parameters). */
  params: number;
  megabytes: number;
  /** Means over the repetitions, milliseconds per exchange. */
  readbackMs: number;
  allreduceMs: number;
  uploadMs: number;
}

export async function benchExchange(config: GeneratorConfig, world: Collective, repetitions: number): Promise<ExchangeTiming[]> {
  if (world.size < 2) throw new Error('bench allreduce needs an MPI world of 2 or more ranks: mpiexec -n 2 node bin/gramhd.js bench allreduce --config NAME');
  const { generator, discriminator } = buildModels(config, 0);
  // GRAM-HD trains only the representation's feature heads (and everything else), as gramhd-process does
  if (isGramHD(config)) freezeRepresentation(generator as GramHDGenerator);
  const nets: ['D' | 'G', Tensor[]][] = [['D', discriminator.parameters()], ['G', generator.parameters().filter((p) => p.requiresGrad)]];
  const out: ExchangeTiming[] = [];
  try {
    for (const [net, params] of nets) {
      for (const p of params) p.grad = noGrad(() => ops.clone(p)).keep();
      await averageGradients(world, params); // warm-up: pipelines, buffer pool
      const stats = newExchangeStats();
      for (let i = 0; i < repetitions; i++) await averageGradients(world, params, stats);
      out.push({
        net, params: params.reduce((n, p) => n + p.size, 0), megabytes: stats.bytes / repetitions / 1e6,
        readbackMs: stats.readbackMs / repetitions, allreduceMs: stats.allreduceMs / repetitions, uploadMs: stats.uploadMs / repetitions,
      });
      for (const p of params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  } finally {
    generator.dispose();
    for (const t of discriminator.stateDict().values()) t.dispose();
  }
  return out;
}
