// Tensors as they sit in a checkpoint file: a dtype, a shape and raw little-endian bytes on the
// host. Checkpoint readers produce them, writers consume them; the GPU side only sees float32.

export type DType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'F64' | 'BOOL';

/** A tensor read from or written to a checkpoint file. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  /** Raw little-endian bytes, row-major: its own copy or a subarray of the file it came from. */
  data: Uint8Array;
}

/** A checkpoint file that cannot be read; the message is one line starting with the file name. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export const dtypeBytes: Record<DType, number> = {
  F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, F64: 8, BOOL: 1,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(dtypeBytes, value);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

/** The tensor's values as float32 (int64 values beyond 2^24 lose precision, as in torch). */
export function toFloat32(t: HostTensor, name: string): Float32Array {
  const count = numel(t.shape);
  const expected = count * dtypeBytes[t.dtype];
  if (t.data.byteLength !== expected) {
    throw new CheckpointError(
      `${name}: ${t.dtype} tensor of shape [${t.shape}] has ${t.data.byteLength} bytes, expected ${expected}`);
  }
  // slice() copies into a fresh, aligned buffer: file subarrays may start at any byte offset.
  // Typed arrays use the host byte order; every platform WebGPU runs on is little-endian.
  const aligned = t.data.slice().buffer;
  switch (t.dtype) {
    case 'F32': return new Float32Array(aligned);
    case 'F16': return Float32Array.from(new Uint16Array(aligned), float16ToNumber);
    case 'BF16': return new Float32Array(Uint32Array.from(new Uint16Array(aligned), (bits) => bits << 16).buffer);
    case 'F64': return Float32Array.from(new Float64Array(aligned));
    case 'I64': return Float32Array.from(new BigInt64Array(aligned), (value) => Number(value));
    case 'I32': return Float32Array.from(new Int32Array(aligned));
    case 'U8': case 'BOOL': return Float32Array.from(t.data);
  }
}

/** Wraps float32 values as a tensor, stored as F32 or rounded (to nearest even) to F16. */
export function fromFloat32(shape: number[], values: Float32Array, dtype: 'F32' | 'F16' = 'F32'): HostTensor {
  if (values.length !== numel(shape)) {
    throw new CheckpointError(`fromFloat32: ${values.length} values do not fill shape [${shape}]`);
  }
  const data = dtype === 'F32' ? new Float32Array(values) : Uint16Array.from(values, numberToFloat16);
  return { dtype, shape: [...shape], data: new Uint8Array(data.buffer) };
}

/** Exact value of an IEEE binary16 bit pattern (subnormals, infinities and NaN included). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** The binary16 bit pattern nearest to `value` (ties to even; beyond 65504 + half an ulp, infinity). */
export function numberToFloat16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= 65520) return sign | 0x7c00;
  // Subnormal range: count units of 2^-24; a result of 1024 is exactly the smallest normal, 0x400.
  if (magnitude < 2 ** -14) return sign | roundHalfToEven(magnitude * 2 ** 24);
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent--; // log2 may be off by one next to powers of two
  if (2 ** (exponent + 1) <= magnitude) exponent++;
  // Every step is exact in float64; a rounded-up mantissa of 1024 carries into the exponent.
  const mantissa = roundHalfToEven((magnitude / 2 ** exponent - 1) * 1024);
  return sign | (((exponent + 15) << 10) + mantissa);
}

function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return fraction < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The arrays one after another. */
export function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
