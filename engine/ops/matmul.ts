// Matrix products: matmul with broadcasting over batch dims (numpy/torch semantics, with the
// batch of one operand broadcast by stride 0), and linear = x W^T + b as in torch.nn.Linear.
// Three kernels compute the product: the reference (simple, the tests' yardstick), the tiled one
// (shared memory, for GPUs) and the subgroup one (for CPU adapters, where it is 3-4x faster than
// the others); 'auto' picks by adapter.
import { matmulReferenceGroups, matmulReferenceKernel, matmulUniforms, type MatmulParams } from '../../kernels/matmul.ts';
import { subgroupMatmulColumns, subgroupMatmulGroups, subgroupMatmulKernel, subgroupOperandLoads } from '../../kernels/matmul-subgroup.ts';
import { tiledMatmulGroups, tiledMatmulKernel } from '../../kernels/matmul-tiled.ts';
import { noGrad, record } from '../autograd.ts';
import { engineDevice } from '../device.ts';
import { dispatch, type Kernel } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { add, broadcastShapes } from './elementwise.ts';
import { expand, sum, sumTo } from './reduce.ts';
import { reshape } from './shape.ts';

/** Which kernel computes a product: 'auto' (the fastest this adapter runs) or a named one. */
export type MatmulKernelChoice = 'auto' | 'reference' | 'tiled' | 'subgroup';

/** The subgroup size every compute pipeline runs with, or null where the adapter has no subgroups
 * or lets the size vary (the subgroup kernel's workgroup is exactly one subgroup). */
export function fixedSubgroupSize(): number | null {
  const { device, info } = engineDevice();
  if (!info.features.has('subgroups')) return null;
  const { subgroupMinSize: min, subgroupMaxSize: max } = device.adapterInfo ?? {};
  return min !== undefined && min === max && [4, 8, 16, 32].includes(min) ? min : null;
}

/** The kernel a choice stands for on this adapter; 'auto' takes the subgroup kernel on CPU adapters
 * that can run it (its 128 accumulators per invocation suit CPU lanes, not GPU registers). */
export function resolveMatmulKernel(choice: MatmulKernelChoice): Exclude<MatmulKernelChoice, 'auto'> {
  if (choice === 'subgroup' && fixedSubgroupSize() === null) throw new Error('matmul: the subgroup kernel needs an adapter with a fixed subgroup size');
  if (choice !== 'auto') return choice;
  return engineDevice().info.isSoftware && fixedSubgroupSize() !== null ? 'subgroup' : 'tiled';
}

function chooseKernel(choice: MatmulKernelChoice, p: MatmulParams, ta: boolean, tb: boolean): { kernel: Kernel; groups: [number, number, number] } {
  switch (resolveMatmulKernel(choice)) {
    case 'reference':
      return { kernel: matmulReferenceKernel, groups: matmulReferenceGroups(p.m, p.n, p.batch) };
    case 'tiled':
      return { kernel: tiledMatmulKernel(ta, tb), groups: tiledMatmulGroups(p.m, p.n, p.batch) };
    case 'subgroup': {
      const subgroupSize = fixedSubgroupSize()!;
      const spec = { subgroupSize, ...subgroupOperandLoads(p), columns: subgroupMatmulColumns(subgroupSize, p.n) };
      return { kernel: subgroupMatmulKernel(spec), groups: subgroupMatmulGroups(spec, p.m, p.n, p.batch) };
    }
  }
}

function launchProduct(choice: MatmulKernelChoice, p: MatmulParams, ta: boolean, tb: boolean, buffers: GPUBuffer[]): void {
  const { kernel, groups } = chooseKernel(choice, p, ta, tb);
  const limit = engineDevice().info.limits.maxComputeWorkgroupsPerDimension;
  if (groups.some((g) => g > limit)) throw new Error(`matmul: [${p.batch}, ${p.m}, ${p.n}] needs ${groups.join(' x ')} workgroups, over this adapter's ${limit} per dimension; split the product`);
  dispatch(kernel, buffers, matmulUniforms(p), groups);
}

/** Into how many slices of k the tiled kernel splits a product of few output tiles and a long k
 * (a linear layer's weight gradient: 256 x 256 outputs summed over 98,304 rays), so that enough
 * workgroups run: at least ~256 tiles in all and 512 of k per slice, the count a divisor of k. On an
 * H100 such a product ran on 16 of the 132 SMs, 4.5 ms each, 198 ms of a GRAMHD256_FFHQ training step. */
function kSlices(p: MatmulParams): number {
  const tiles = tiledMatmulGroups(p.m, p.n, p.batch).reduce((x, y) => x * y, 1);
  if (p.batch !== 1 || tiles >= 64 || p.k < 2048) return 1;
  let slices = Math.min(Math.ceil(256 / tiles), Math.floor(p.k / 512));
  while (slices > 1 && p.k % slices !== 0) slices--;
  return slices;
}

/** op(A) op(B) for A, B of shape [batch, rows, cols] (batch 1 broadcasts), op = transpose when t. */
function mm(a: Tensor, b: Tensor, ta: boolean, tb: boolean, choice: MatmulKernelChoice): Tensor {
  const [ba, ra, ca] = a.shape;
  const [bb, rb, cb] = b.shape;
  const m = ta ? ca : ra;
  const k = ta ? ra : ca;
  const kb = tb ? cb : rb;
  const n = tb ? rb : cb;
  if (k !== kb) throw new Error(`matmul: inner sizes differ (${k} vs ${kb}) for [${a.shape.join(', ')}] x [${b.shape.join(', ')}]`);
  if (ba !== bb && ba !== 1 && bb !== 1) throw new Error(`matmul: batch sizes ${ba} and ${bb} do not broadcast`);
  const batch = Math.max(ba, bb);
  let c = Tensor.empty([batch, m, n]);
  if (c.size > 0) {
    const p: MatmulParams = {
      m, n, k, batch, aBatch: ba === 1 ? 0 : ra * ca, bBatch: bb === 1 ? 0 : rb * cb,
      am: ta ? 1 : ca, ak: ta ? ca : 1, bk: tb ? 1 : cb, bn: tb ? cb : 1,
    };
    const slices = resolveMatmulKernel(choice) === 'tiled' ? kSlices(p) : 1;
    if (slices > 1) {
      // the slices of k are the batch of one product, [slices, m, n], then summed
      const kSlice = k / slices;
      const partial = Tensor.empty([slices, m, n]);
      launchProduct(choice, {
        ...p, k: kSlice, batch: slices, aBatch: kSlice * (ta ? ca : 1), bBatch: kSlice * (tb ? 1 : cb),
      }, ta, tb, [a.buffer, b.buffer, partial.buffer]);
      const total = noGrad(() => sum(partial, 0));
      partial.dispose();
      c.dispose();
      c = total.view([1, m, n]);
      total.dispose();
    } else {
      launchProduct(choice, p, ta, tb, [a.buffer, b.buffer, c.buffer]);
    }
  }
  return record(c, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(ta ? mm(b, g, tb, true, choice) : mm(g, b, false, !tb, choice), a.shape) : null,
    b.requiresGrad ? sumTo(tb ? mm(g, a, true, ta, choice) : mm(a, g, !ta, false, choice), b.shape) : null,
  ]);
}

/** a @ b with torch.matmul's shape rules for rank >= 2 operands (1-D operands are not needed). */
export function matmul(a: Tensor, b: Tensor, options: { transA?: boolean; transB?: boolean; kernel?: MatmulKernelChoice } = {}): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error('matmul needs operands of rank >= 2');
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const flat = (t: Tensor) => {
    const tb = t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const mat = t.shape.slice(-2);
    if (tb === batch || tb === 1) return reshape(t, [tb, mat[0], mat[1]]);
    return reshape(expand(t, [...batchShape, mat[0], mat[1]]), [batch, mat[0], mat[1]]);
  };
  const c = mm(flat(a), flat(b), options.transA ?? false, options.transB ?? false, options.kernel ?? 'auto');
  return reshape(c, [...batchShape, c.shape[1], c.shape[2]]);
}

/** x [..., in] -> [..., out] with weight [out, in] and optional bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = x.shape[x.rank - 1];
  if (weight.shape[1] !== inF) throw new Error(`linear: input has ${inF} features, weight [${weight.shape.join(', ')}] expects ${weight.shape[1]}`);
  const rows = reshape(x, [1, x.size / inF, inF]);
  const y = mm(rows, reshape(weight, [1, weight.shape[0], inF]), false, true, 'auto');
  const out = reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
  return bias ? add(out, bias) : out;
}

/** matmul computed by the reference kernel (tests and benchmarks hold the fast kernels to it). */
export function matmulReference(a: Tensor, b: Tensor, options: { transA?: boolean; transB?: boolean } = {}): Tensor {
  return matmul(a, b, { ...options, kernel: 'reference' });
}
