// The pi-GAN mapping network: z -> 256 -> 256 -> 256 (LeakyReLU 0.2) -> frequencies and phase
// shifts for every FiLM layer, split in half. `w` is the output of the last LeakyReLU; truncation
// averages are taken over w and mapped through the last layer.
import { ops, type Tensor } from '../engine/index.ts';
import { kaimingNormal_, normal_ } from '../engine/nn/init.ts';
import { LeakyReLU, Linear, Sequential } from '../engine/nn/layers.ts';
import { Module } from '../engine/nn/module.ts';
import { defaultRandom, type Random } from '../engine/nn/random.ts';

/** FiLM conditioning, [B, layers * hidden] each. */
export interface FilmCodes {
  frequencies: Tensor;
  phase_shifts: Tensor;
}

export class MappingNetwork extends Module {
  network: Sequential;

  constructor(readonly zDim: number, hiddenDim: number, readonly outputDim: number, rng: Random = defaultRandom()) {
    super();
    const linear = (i: number, o: number) => new Linear(i, o, { rng });
    this.network = new Sequential(
      linear(zDim, hiddenDim), new LeakyReLU(0.2),
      linear(hiddenDim, hiddenDim), new LeakyReLU(0.2),
      linear(hiddenDim, hiddenDim), new LeakyReLU(0.2),
      linear(hiddenDim, outputDim),
    );
    // kaiming normal (a = 0.2, fan_in) on every weight, biases keep torch's default; the last
    // layer's weights are then scaled by 0.25
    const linears = this.network.layers.filter((l): l is Linear => l instanceof Linear);
    for (const l of linears.slice(0, -1)) kaimingNormal_(l.weight, { a: 0.2, mode: 'fanIn' }, rng);
    const kaimingStd = Math.sqrt(2 / (1 + 0.2 ** 2)) / Math.sqrt(hiddenDim);
    normal_(linears[linears.length - 1].weight, 0, 0.25 * kaimingStd, rng);
  }

  private get lastLayer(): Linear {
    return this.network.layers[this.network.layers.length - 1] as Linear;
  }

  /** z [B, z_dim] -> w [B, hidden]: every layer but the last. */
  w(z: Tensor): Tensor {
    return this.network.layers.slice(0, -1).reduce((h, layer) => layer.forward(h), z);
  }

  /** w [B, hidden] -> frequencies, phase shifts [B, outputDim / 2]. */
  fromW(w: Tensor): FilmCodes {
    return split(this.lastLayer.forward(w));
  }

  /** z [B, z_dim] -> frequencies, phase shifts [B, outputDim / 2]. */
  forward(z: Tensor): FilmCodes {
    if (z.rank !== 2 || z.shape[1] !== this.zDim) throw new Error(`mapping network: z must be [B, ${this.zDim}], got [${z.shape.join(', ')}]`);
    return split(this.network.forward(z));
  }
}

function split(out: Tensor): FilmCodes {
  const half = out.shape[out.rank - 1] / 2;
  return { frequencies: ops.narrow(out, -1, 0, half), phase_shifts: ops.narrow(out, -1, half, half) };
}

/** Truncation: lerp(average, codes, psi), per code. */
export function truncate(codes: FilmCodes, average: FilmCodes, psi: number): FilmCodes {
  if (psi === 1) return codes;
  return {
    frequencies: ops.lerp(average.frequencies, codes.frequencies, psi),
    phase_shifts: ops.lerp(average.phase_shifts, codes.phase_shifts, psi),
  };
}
