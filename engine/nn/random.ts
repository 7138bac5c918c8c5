// A small seeded generator on the CPU for parameter initialisation and sampling. PyTorch's own
// stream (Mersenne Twister + its normal sampler) is not reproduced: exact weights come from
// checkpoints, so this only has to be deterministic and statistically sound.

/** xoshiro128** seeded through splitmix32: fast, 128 bits of state, passes BigCrush. */
export class Random {
  private s = new Uint32Array(4);
  /** The second Box-Muller value, returned by the next normal() call. */
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.nextUint32() / 4294967296);
  }

  /** Normal with the given mean and standard deviation (Box-Muller, both values used). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    // 1 - u lies in (0, 1], so the logarithm is finite
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spareNormal = radius * Math.sin(angle);
    return mean + std * radius * Math.cos(angle);
  }

  uniformArray(n: number, lo = 0, hi = 1): Float32Array {
    return Float32Array.from({ length: n }, () => this.uniform(lo, hi));
  }

  normalArray(n: number, mean = 0, std = 1): Float32Array {
    return Float32Array.from({ length: n }, () => this.normal(mean, std));
  }

  /** The full generator state (four state words and the pending Box-Muller value), as plain JSON
   * data, for checkpoints: setState() of it continues the stream exactly. */
  getState(): { s: number[]; spare: number | null } {
    return { s: Array.from(this.s), spare: this.spareNormal };
  }

  /** Restores a getState() snapshot. */
  setState(state: { s: readonly number[]; spare: number | null }): void {
    if (!Array.isArray(state.s) || state.s.length !== 4 || state.s.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new Error(`Random.setState: expected four 32-bit state words, got ${JSON.stringify(state.s)}`);
    }
    if (state.spare !== null && typeof state.spare !== 'number') throw new Error(`Random.setState: bad spare normal ${JSON.stringify(state.spare)}`);
    this.s.set(state.s);
    this.spareNormal = state.spare;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

let global = new Random(0);

/** Reseeds the generator that layers use when none is passed (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  global = new Random(seed);
}

/** The generator layers initialise from when none is passed. */
export function defaultRandom(): Random {
  return global;
}
