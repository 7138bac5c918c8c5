// numpy's legacy RandomState (MT19937), as far as torch-fidelity's KID uses it:
// RandomState(seed).choice(n, size, replace=False), which is permutation(n)[:size], a Fisher-Yates
// shuffle from the last element down whose bounded draws are masked rejection sampling on 32-bit
// outputs. An integer seed goes through MT19937's init_genrand (not init_by_array).

const N = 624;
const M = 397;

export class NumpyRandomState {
  private readonly mt = new Uint32Array(N);
  private index = N;

  /** np.random.RandomState(seed) for an integer 0 <= seed < 2^32. */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`RandomState: seed must be an integer in [0, 2^32), got ${seed}`);
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The next 32-bit output (genrand_int32). */
  nextUint32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform integer in [0, max] by masked rejection (numpy's legacy random_interval). */
  interval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) throw new Error('RandomState.interval: ranges beyond 2^32 are not needed here');
    let mask = max;
    mask |= mask >>> 1; mask |= mask >>> 2; mask |= mask >>> 4; mask |= mask >>> 8; mask |= mask >>> 16;
    mask >>>= 0;
    let value: number;
    do value = (this.nextUint32() & mask) >>> 0; while (value > max);
    return value;
  }

  /** permutation(n): arange(n) shuffled in place from the last element down. */
  permutation(n: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = a[i]; a[i] = a[j]; a[j] = t;
    }
    return a;
  }

  /** choice(n, size, replace=False) with uniform probabilities: the first `size` of a permutation. */
  choiceWithoutReplacement(n: number, size: number): Int32Array {
    if (size > n) throw new Error(`RandomState.choice: cannot take a larger sample (${size}) than the population (${n}) without replacement`);
    return this.permutation(n).slice(0, size);
  }
}
