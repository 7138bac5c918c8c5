// Reductions over dimensions: sum, mean, max, min, argmax, norm, and sumTo (the adjoint of
// broadcasting, which every broadcasting op's gradient uses).
import { REDUCE_WG, reduceKernel, type ReduceOp } from '../../kernels/reduce.ts';
import { record } from '../autograd.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { div, eq, mapElements, mul, sqrt, square } from './elementwise.ts';
import { reshape } from './shape.ts';

export function normDims(dims: number | readonly number[] | undefined, rank: number): number[] {
  const list = dims === undefined ? [...Array(rank).keys()] : typeof dims === 'number' ? [dims] : [...dims];
  const norm = list.map((d) => {
    const n = d < 0 ? d + rank : d;
    if (n < 0 || n >= rank) throw new Error(`dimension ${d} out of range for rank ${rank}`);
    return n;
  });
  return [...new Set(norm)].sort((a, b) => a - b);
}

function keptShape(shape: readonly number[], dims: number[]): number[] {
  return shape.map((s, d) => (dims.includes(d) ? 1 : s));
}

/** Reduces over one contiguous block of dims [d0, d1]; returns the keepdim-shaped result. */
function reduceBlock(op: ReduceOp, x: Tensor, d0: number, d1: number): Tensor {
  const shape = x.shape;
  const outer = shape.slice(0, d0).reduce((a, b) => a * b, 1);
  const r = shape.slice(d0, d1 + 1).reduce((a, b) => a * b, 1);
  const inner = shape.slice(d1 + 1).reduce((a, b) => a * b, 1);
  const outShape = shape.map((s, d) => (d >= d0 && d <= d1 ? 1 : s));
  const out = Tensor.empty(outShape, op === 'argmax' ? 'i32' : 'f32');
  if (out.size === 0) return out;
  const perRow = inner === 1 && r >= 512;
  const spans = op === 'argmax' ? 1 : perRow ? rowSpans(outer, r) : reductionSpans(outer * inner, r);
  if (spans > 1) {
    // too few outputs to keep the adapter busy (a bias gradient sums 10^5 rows into 32 outputs; a
    // loss sums a whole tensor into one, which as one workgroup ran at 2.7 GB/s on an H200):
    // partial results over spans of R first, then those reduced
    out.dispose();
    const span = Math.ceil(r / spans);
    const partial = Tensor.empty([outer, Math.ceil(r / span), inner]);
    const partials = partial.size;
    dispatch(reduceKernel(op, perRow), [x.buffer, partial.buffer], new Uint32Array([outer, r, inner, span]), perRow ? partials : Math.ceil(partials / REDUCE_WG));
    const combined = reduceBlock(op, partial, 1, 1);
    partial.dispose();
    const result = combined.view(outShape);
    combined.dispose();
    return result;
  }
  const uniforms = new Uint32Array([outer, r, inner, r]);
  dispatch(reduceKernel(op, perRow), [x.buffer, out.buffer], uniforms, perRow ? outer : Math.ceil((outer * inner) / REDUCE_WG));
  return out;
}

/** How many spans to split each of `rows` long contiguous rows into (one workgroup per span):
 * enough for some 1024 workgroups, each still walking at least 16 elements per invocation. */
function rowSpans(rows: number, r: number): number {
  if (rows >= 1024) return 1;
  return Math.max(1, Math.min(Math.floor(r / (16 * REDUCE_WG)), Math.ceil(1024 / rows)));
}

/** How many spans to split a reduction of r elements into, for `outputs` outputs: enough for
 * some 16k invocations in the first pass, each still walking at least 32 elements. */
function reductionSpans(outputs: number, r: number): number {
  if (outputs >= 4096 || r < 256) return 1;
  return Math.max(1, Math.min(Math.floor(r / 32), Math.ceil(16384 / outputs)));
}

/** Raw reduction over `dims` (keepdim shape), no gradient. */
function reduceRaw(op: ReduceOp, x: Tensor, dims: number[]): Tensor {
  if (x.dtype !== 'f32') throw new Error(`${op} needs an f32 tensor`);
  let cur = x;
  // contiguous runs of dims from the last, each one kernel
  let k = dims.length - 1;
  while (k >= 0) {
    let start = k;
    while (start > 0 && dims[start - 1] === dims[start] - 1) start--;
    const next = reduceBlock(op, cur, dims[start], dims[k]);
    if (cur !== x) cur.dispose();
    cur = next;
    k = start - 1;
  }
  return cur === x ? mapElements('copy', 'a', [x]) : cur;
}

function finish(y: Tensor, x: Tensor, dims: number[], keepdim: boolean): Tensor {
  return keepdim ? y : reshape(y, x.shape.filter((_, d) => !dims.includes(d)));
}

/** Broadcasts x to `shape` as a materialised copy; its gradient sums back. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const y = mapElements('copy', 'a', [x], 'f32', 0, 0, shape);
  return record(y, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const ds = normDims(dims, x.rank);
  if (ds.length === 0) return x;
  const y = reduceRaw('sum', x, ds);
  const keep = record(y, 'sum', [x], (g) => [expand(reshape(g, keptShape(x.shape, ds)), x.shape)]);
  return finish(keep, x, ds, keepdim);
}

export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const ds = normDims(dims, x.rank);
  const count = ds.reduce((n, d) => n * x.shape[d], 1);
  return mul(sum(x, ds, keepdim), 1 / count);
}

function extremum(op: 'max' | 'min', x: Tensor, dims: number | readonly number[] | undefined, keepdim: boolean): Tensor {
  const ds = normDims(dims, x.rank);
  const y = reduceRaw(op, x, ds);
  // like torch.amax: the gradient is shared evenly between tied extremes
  const keep = record(y, op, [x], (g) => {
    const mask = eq(x, y);
    return [mul(div(mask, expand(sumRaw(mask, ds), x.shape)), expand(reshape(g, keptShape(x.shape, ds)), x.shape))];
  });
  return finish(keep, x, ds, keepdim);
}

function sumRaw(x: Tensor, dims: number[]): Tensor {
  return reduceRaw('sum', x, dims);
}

export const max = (x: Tensor, dims?: number | readonly number[], keepdim = false) => extremum('max', x, dims, keepdim);
export const min = (x: Tensor, dims?: number | readonly number[], keepdim = false) => extremum('min', x, dims, keepdim);

/** Index of the first maximum along `dim` (int32), no gradient. */
export function argmax(x: Tensor, dim: number, keepdim = false): Tensor {
  const ds = normDims(dim, x.rank);
  return finish(reduceRaw('argmax', x, ds), x, ds, keepdim);
}

/** Euclidean norm over dims. */
export function norm(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  return sqrt(sum(square(x), dims, keepdim));
}

/** Sums g down to `shape` (the inverse of broadcasting `shape` to g.shape). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((s, d) => s === shape[d])) return g;
  const lead = g.rank - shape.length;
  const dims: number[] = [];
  for (let d = 0; d < g.rank; d++) if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) dims.push(d);
  return reshape(sum(g, dims, true), shape);
}
