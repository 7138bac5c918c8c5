// PyTorch's CPU random stream, reproduced so that `--seeds N` gives the latent code the authors'
// inference gets from torch.manual_seed(N) followed by torch.randn (CPU generator). Derived from
// PyTorch's source (read, not copied):
// - CPUGeneratorImpl holds an mt19937 engine seeded with the low 32 bits of the seed by the standard
//   recurrence (state[i] = 1812433253 * (state[i-1] ^ state[i-1] >>> 30) + i); manual_seed also clears
//   the cached second Box-Muller value. random() is one 32-bit output; random64() is two, the first
//   as the high word (make64BitsFrom32Bits(hi, lo)).
// - uniform_real_distribution<float>: the low 24 bits of random() times 2^-24;
//   uniform_real_distribution<double>: the low 53 bits of random64() times 2^-53 (TransformationHelper
//   uniform_real: mask of numeric_limits<T>::digits bits).
// - normal_kernel (aten/src/ATen/native/cpu/DistributionTemplates.h): a contiguous float tensor of
//   >= 16 elements is first filled with float uniforms, then Box-Muller runs over blocks of 16
//   (normal_fill_16 / normal_fill_16_AVX2): for j < 8, u1 = 1 - data[j], u2 = data[j + 8],
//   radius = sqrt(-2 log u1), theta = 2 pi u2, data[j] = radius cos theta, data[j + 8] = radius sin
//   theta. When the size is not a multiple of 16, the last 16 elements are refilled with fresh
//   uniforms and transformed again. Smaller tensors draw each value with normal_distribution<double>:
//   u1, u2 double uniforms, r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, value r cos theta, and r sin theta
//   cached for the next scalar normal draw.
// The block path's float arithmetic is emulated with Math.fround after each float operation; torch's
// AVX2 build uses its own vectorised log/sincos, so values can differ from torch in the last bit
// or two (about 1e-7 relative), never in the stream position.

const N = 624;
const M = 397;
const TWO_PI_F32 = Math.fround(2 * Math.PI);

/** torch.Generator on the CPU: mt19937 plus torch's uniform and normal transformations. */
export class TorchGenerator {
  private readonly state = new Uint32Array(N);
  private index = N;
  private nextDoubleNormal: number | null = null;

  constructor(seed: number | bigint = 67280421310721) {
    this.manualSeed(seed);
  }

  /** torch.manual_seed(seed): the engine restarts from the seed's low 32 bits. */
  manualSeed(seed: number | bigint): void {
    const low = Number(BigInt.asUintN(32, BigInt(seed)));
    const s = this.state;
    s[0] = low;
    for (let i = 1; i < N; i++) {
      const prev = s[i - 1] ^ (s[i - 1] >>> 30);
      s[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
    this.nextDoubleNormal = null;
  }

  /** One mt19937 output (torch's generator->random()). */
  random(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < N; i++) {
      const y = (s[i] & 0x80000000) | (s[(i + 1) % N] & 0x7fffffff);
      s[i] = s[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** Skips n outputs of the engine (the draws of a tensor whose values are not needed). */
  skip(n: number): void {
    for (let i = 0; i < n; i++) {
      if (this.index >= N) this.twist();
      this.index++;
    }
  }

  /** uniform_real_distribution<float>(0, 1): 24 random bits. */
  uniformFloat(): number {
    return (this.random() & 0xffffff) / 16777216;
  }

  /** uniform_real_distribution<double>(0, 1): the low 53 bits of random64(). */
  uniformDouble(): number {
    const hi = this.random();
    const lo = this.random();
    return ((hi & 0x1fffff) * 4294967296 + lo) / 9007199254740992;
  }

  /** normal_distribution<double>(0, 1), with torch's cached second value. */
  normalDouble(): number {
    if (this.nextDoubleNormal !== null) {
      const cached = this.nextDoubleNormal;
      this.nextDoubleNormal = null;
      return cached;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** torch.randn(n) as float32 (any shape with n elements, contiguous). */
  randn(n: number): Float32Array {
    const out = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(out, i);
    if (n % 16 !== 0) {
      const start = n - 16;
      for (let i = 0; i < 16; i++) out[start + i] = this.uniformFloat();
      normalFill16(out, start);
    }
    return out;
  }

  /** Advances the stream exactly as torch.randn(n) would, without computing the values. */
  skipRandn(n: number): void {
    if (n < 16) {
      for (let i = 0; i < n; i++) this.normalDouble();
      return;
    }
    this.skip(n + (n % 16 !== 0 ? 16 : 0));
  }
}

/** Box-Muller over data[start .. start + 16) in float32: pairs (j, j + 8). */
function normalFill16(data: Float32Array, start: number): void {
  const f = Math.fround;
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - data[start + j]);
    const u2 = data[start + j + 8];
    const radius = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const theta = f(TWO_PI_F32 * u2);
    data[start + j] = f(radius * f(Math.cos(theta)));
    data[start + j + 8] = f(radius * f(Math.sin(theta)));
  }
}
