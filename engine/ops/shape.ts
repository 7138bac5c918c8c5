// Layout ops: reshape is a free view; permute, slice, concat, pad and flip are one strided-copy
// kernel with different strides. Each op's adjoint is another of them (slice <-> padInto,
// concat -> slices), so gradients of gradients work.
import { COPY_WG, stridedCopyKernel, stridedCopyUniforms } from '../../kernels/copy.ts';
import { record } from '../autograd.ts';
import { copyBufferRuns, dispatch } from '../runtime.ts';
import { numel, Tensor } from '../tensor.ts';
import { eq, full, mapElements, toF32 } from './elementwise.ts';

export function contiguousStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
  return st;
}

/** Drops size-1 dimensions and merges neighbours that are contiguous with each other in both
 * source and destination, so the kernel's per-dimension index arithmetic (an integer division
 * per dimension per element) runs over as few dimensions as the copy really has: a slice along
 * the last axis of [B, N, C] is a rank-2 copy, a whole-tensor copy rank 1. */
export function coalesceCopy(shape: readonly number[], src: readonly number[], dst: readonly number[]): { shape: number[]; src: number[]; dst: number[] } {
  const out = { shape: [] as number[], src: [] as number[], dst: [] as number[] };
  shape.forEach((size, d) => {
    if (size === 1) return;
    const k = out.shape.length - 1;
    if (k >= 0 && out.src[k] === src[d] * size && out.dst[k] === dst[d] * size) {
      out.shape[k] *= size;
      out.src[k] = src[d];
      out.dst[k] = dst[d];
    } else {
      out.shape.push(size);
      out.src.push(src[d]);
      out.dst.push(dst[d]);
    }
  });
  return out;
}

/** Contiguous runs at least this long (elements) and at most this many go through buffer copies. */
const MIN_BUFFER_RUN = 1024;
const MAX_BUFFER_RUNS = 256;

/** The start (in elements) of every contiguous run of a coalesced copy whose last dimension is
 * contiguous on both sides: the outer indices enumerated in order. */
function runStarts(c: { shape: number[]; src: number[]; dst: number[] }, srcOffset: number, dstOffset: number): { from: number; to: number }[] {
  let starts = [{ from: srcOffset, to: dstOffset }];
  for (let d = 0; d < c.shape.length - 1; d++) {
    starts = starts.flatMap((s) => Array.from({ length: c.shape[d] }, (_, i) => ({ from: s.from + i * c.src[d], to: s.to + i * c.dst[d] })));
  }
  return starts;
}

function copyInto(dst: Tensor, src: Tensor, shape: readonly number[], srcOffset: number, srcStrides: readonly number[], dstOffset: number, dstStrides: readonly number[]): void {
  const n = numel(shape);
  if (n === 0) return;
  const c = coalesceCopy(shape, srcStrides, dstStrides);
  const run = c.shape[c.shape.length - 1];
  if (src.buffer !== dst.buffer && c.src[c.shape.length - 1] === 1 && c.dst[c.shape.length - 1] === 1 && run >= MIN_BUFFER_RUN && n / run <= MAX_BUFFER_RUNS) {
    const bytes = 4; // f32 and i32
    const runs = runStarts(c, srcOffset, dstOffset).map((r) => ({ from: r.from * bytes, to: r.to * bytes }));
    if (copyBufferRuns(src.buffer, dst.buffer, runs, run * bytes)) return;
  }
  dispatch(stridedCopyKernel(c.shape.length), [src.buffer, dst.buffer], stridedCopyUniforms(c.shape, srcOffset, c.src, dstOffset, c.dst), Math.ceil(n / COPY_WG));
}

function normDim(dim: number, rank: number): number {
  const d = dim < 0 ? dim + rank : dim;
  if (d < 0 || d >= rank) throw new Error(`dimension ${dim} out of range for rank ${rank}`);
  return d;
}

/** A view with a new shape (one dimension may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
  const full_ = shape.map((s) => (s === -1 ? x.size / known : s));
  if (numel(full_) !== x.size || full_.some((s) => !Number.isInteger(s))) {
    throw new Error(`cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  return record(x.view(full_), 'reshape', [x], (g) => [reshape(g, x.shape)]);
}

export const flatten = (x: Tensor, start = 0): Tensor => reshape(x, [...x.shape.slice(0, start), -1]);
export const unsqueeze = (x: Tensor, dim: number): Tensor => {
  const d = dim < 0 ? dim + x.rank + 1 : dim;
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
};
export const squeeze = (x: Tensor, dim: number): Tensor => {
  const d = normDim(dim, x.rank);
  if (x.shape[d] !== 1) throw new Error(`squeeze: dimension ${dim} of [${x.shape.join(', ')}] is not 1`);
  return reshape(x, x.shape.filter((_, k) => k !== d));
};

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new Error(`permute: [${perm.join(', ')}] is not a permutation of rank ${x.rank}`);
  const outShape = perm.map((p) => x.shape[p]);
  const y = Tensor.empty(outShape, x.dtype);
  const st = contiguousStrides(x.shape);
  copyInto(y, x, outShape, 0, perm.map((p) => st[p]), 0, contiguousStrides(outShape));
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return record(y, 'permute', [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normDim(d0, x.rank);
  const b = normDim(d1, x.rank);
  const perm = [...x.shape.keys()];
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

export interface SliceSpec {
  /** Start per dimension (default 0). */
  start?: readonly number[];
  /** Size of the result per dimension (default: to the end). */
  size?: readonly number[];
  /** Step per dimension (default 1). */
  step?: readonly number[];
}

function sliceGeometry(shape: readonly number[], spec: SliceSpec) {
  const start = shape.map((_, d) => spec.start?.[d] ?? 0);
  const step = shape.map((_, d) => spec.step?.[d] ?? 1);
  const size = shape.map((s, d) => spec.size?.[d] ?? Math.ceil((s - start[d]) / step[d]));
  shape.forEach((s, d) => {
    if (start[d] < 0 || size[d] < 0 || step[d] < 1 || (size[d] > 0 && start[d] + (size[d] - 1) * step[d] >= s)) {
      throw new Error(`slice start ${start[d]} size ${size[d]} step ${step[d]} out of range for dimension ${d} of [${shape.join(', ')}]`);
    }
  });
  const st = contiguousStrides(shape);
  const offset = start.reduce((o, s, d) => o + s * st[d], 0);
  return { size, offset, strides: st.map((s, d) => s * step[d]) };
}

/** A strided sub-block: start/size/step per dimension. */
export function slice(x: Tensor, spec: SliceSpec): Tensor {
  const { size, offset, strides } = sliceGeometry(x.shape, spec);
  const y = Tensor.empty(size, x.dtype);
  copyInto(y, x, size, offset, strides, 0, contiguousStrides(size));
  return record(y, 'slice', [x], (g) => [padInto(g, x.shape, spec)]);
}

/** `count` entries from `start` along one dimension. */
export function narrow(x: Tensor, dim: number, start: number, count: number): Tensor {
  const d = normDim(dim, x.rank);
  const s = x.shape.map((_, k) => (k === d ? start : 0));
  const z = x.shape.map((n, k) => (k === d ? count : n));
  return slice(x, { start: s, size: z });
}

/** The adjoint of slice: a zero tensor of `shape` with g written at the slice's positions. */
export function padInto(g: Tensor, shape: readonly number[], spec: SliceSpec): Tensor {
  const { size, offset, strides } = sliceGeometry(shape, spec);
  if (size.some((s, d) => s !== g.shape[d])) throw new Error(`padInto: [${g.shape.join(', ')}] does not fit the slice [${size.join(', ')}]`);
  const y = full(shape, 0, g.dtype);
  copyInto(y, g, size, 0, contiguousStrides(size), offset, strides);
  return record(y, 'padInto', [g], (gy) => [slice(gy, spec)]);
}

export function concat(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new Error('concat of no tensors');
  const d = normDim(dim, xs[0].rank);
  xs.forEach((x) => {
    if (x.rank !== xs[0].rank || x.shape.some((s, k) => k !== d && s !== xs[0].shape[k])) {
      throw new Error(`concat: shapes ${xs.map((t) => `[${t.shape.join(', ')}]`).join(' ')} differ outside dimension ${dim}`);
    }
  });
  const outShape = [...xs[0].shape];
  outShape[d] = xs.reduce((n, x) => n + x.shape[d], 0);
  const y = Tensor.empty(outShape, xs[0].dtype);
  const st = contiguousStrides(outShape);
  let at = 0;
  const starts: number[] = [];
  for (const x of xs) {
    starts.push(at);
    copyInto(y, x, x.shape, 0, contiguousStrides(x.shape), at * st[d], st);
    at += x.shape[d];
  }
  return record(y, 'concat', [...xs], (g) => xs.map((x, i) => (x.requiresGrad ? narrow(g, d, starts[i], x.shape[d]) : null)));
}

export function stack(xs: readonly Tensor[], dim: number): Tensor {
  const d = dim < 0 ? dim + xs[0].rank + 1 : dim;
  return concat(xs.map((x) => unsqueeze(x, d)), d);
}

/** Reverses the order along `dim`. */
export function flip(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.rank);
  const st = contiguousStrides(x.shape);
  const y = Tensor.empty(x.shape, x.dtype);
  const src = st.map((s, k) => (k === d ? -s : s));
  copyInto(y, x, x.shape, (x.shape[d] - 1) * st[d], src, 0, st);
  return record(y, 'flip', [x], (g) => [flip(g, d)]);
}

/** 0, 1, ..., n-1 as f32. */
export function arange(n: number): Tensor {
  return mapElements('arange', 'fi', [], 'f32', 0, 0, [n]);
}

/** One-hot encoding of an int32 (or integral f32) index tensor: shape [...idx.shape, n], f32. */
export function oneHot(index: Tensor, n: number): Tensor {
  return eq(unsqueeze(toF32(index), -1), arange(n));
}
