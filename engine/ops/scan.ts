// Ops along one dimension: cumulative sum and product, argsort/sort of short rows, gather and its
// adjoint scatterAdd.
import { argsortKernel, gatherKernel, MAX_SORT_LENGTH, ROW_WG, scanKernel, scatterAddKernel } from '../../kernels/scan.ts';
import { record } from '../autograd.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { div, mul } from './elementwise.ts';

function rows(shape: readonly number[], dim: number) {
  const d = dim < 0 ? dim + shape.length : dim;
  if (d < 0 || d >= shape.length) throw new Error(`dimension ${dim} out of range for rank ${shape.length}`);
  const outer = shape.slice(0, d).reduce((a, b) => a * b, 1);
  const inner = shape.slice(d + 1).reduce((a, b) => a * b, 1);
  return { d, outer, r: shape[d], inner };
}

function runRows(kernel: Parameters<typeof dispatch>[0], buffers: GPUBuffer[], outer: number, r: number, inner: number, k = 0): void {
  if (outer * inner === 0) return;
  dispatch(kernel, buffers, new Uint32Array([outer, r, inner, k]), Math.ceil((outer * inner) / ROW_WG));
}

/** Inclusive cumulative sum along dim (from the end when reverse). */
export function cumsum(x: Tensor, dim: number, reverse = false): Tensor {
  const { d, outer, r, inner } = rows(x.shape, dim);
  const y = Tensor.empty(x.shape);
  runRows(scanKernel('sum', reverse), [x.buffer, y.buffer], outer, r, inner);
  return record(y, 'cumsum', [x], (g) => [cumsum(g, d, !reverse)]);
}

/** Inclusive cumulative product along dim. Its gradient, revcumsum(g*y)/x, assumes no zero
 * inputs (the compositing use has x >= 1e-10), which keeps the rule in differentiable ops. */
export function cumprod(x: Tensor, dim: number): Tensor {
  const { d, outer, r, inner } = rows(x.shape, dim);
  const y = Tensor.empty(x.shape);
  runRows(scanKernel('prod', false), [x.buffer, y.buffer], outer, r, inner);
  return record(y, 'cumprod', [x], (g) => [div(cumsum(mul(g, y), d, true), x)]);
}

/** Indices (int32) that sort each row along dim; rows of at most MAX_SORT_LENGTH. Stable. */
export function argsort(x: Tensor, dim: number, descending = false): Tensor {
  const { outer, r, inner } = rows(x.shape, dim);
  if (r > MAX_SORT_LENGTH) throw new Error(`sort handles rows of at most ${MAX_SORT_LENGTH} along a dimension, got ${r}`);
  const y = Tensor.empty(x.shape, 'i32');
  runRows(argsortKernel(descending), [x.buffer, y.buffer], outer, r, inner);
  return y;
}

/** Sorted values (differentiable, through gather) and their int32 indices. */
export function sort(x: Tensor, dim: number, descending = false): { values: Tensor; indices: Tensor } {
  const indices = argsort(x, dim, descending);
  return { values: gather(x, dim, indices), indices };
}

function checkIndex(x: readonly number[], index: Tensor, d: number, op: string): void {
  if (index.dtype !== 'i32') throw new Error(`${op}: index must be int32`);
  if (index.rank !== x.length || index.shape.some((s, k) => k !== d && s !== x[k])) {
    throw new Error(`${op}: index [${index.shape.join(', ')}] must match [${x.join(', ')}] outside dimension ${d}`);
  }
}

/** torch.gather: out[..., k, ...] = x[..., index[..., k, ...], ...] along dim. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const { d, outer, r, inner } = rows(x.shape, dim);
  checkIndex(x.shape, index, d, 'gather');
  const y = Tensor.empty(index.shape);
  runRows(gatherKernel, [x.buffer, index.buffer, y.buffer], outer, r, inner, index.shape[d]);
  return record(y, 'gather', [x], (g) => [scatterAdd(g, d, index, x.shape[d])]);
}

/** The adjoint of gather: sums g into a zero tensor of length `size` along dim at `index`. */
export function scatterAdd(g: Tensor, dim: number, index: Tensor, size: number): Tensor {
  const shape = g.shape.map((s, k) => (k === (dim < 0 ? dim + g.rank : dim) ? size : s));
  const { d, outer, r, inner } = rows(shape, dim);
  checkIndex(shape, index, d, 'scatterAdd');
  const y = Tensor.empty(shape);
  runRows(scatterAddKernel, [g.buffer, index.buffer, y.buffer], outer, r, inner, index.shape[d]);
  return record(y, 'scatterAdd', [g], (gy) => [gather(gy, d, index)]);
}
