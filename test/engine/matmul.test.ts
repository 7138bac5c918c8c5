import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { fixedSubgroupSize, resolveMatmulKernel, type MatmulKernelChoice } from '../../engine/ops/matmul.ts';
import { assertClose, checkOp, numel, randomArray } from '../helpers/reference.ts';

/** One product: batch sizes of A and B (1 broadcasts), op(A) is m x k, op(B) is k x n. */
interface Case { batchA: number; batchB: number; m: number; n: number; k: number; ta: boolean; tb: boolean }

/** Float64 op(A) op(B) per batch, A stored [batchA, m, k] or [batchA, k, m] when ta (same for B). */
function cpuMatmul(a: ArrayLike<number>, b: ArrayLike<number>, c: Case): Float64Array {
  const batch = Math.max(c.batchA, c.batchB);
  const out = new Float64Array(batch * c.m * c.n);
  for (let z = 0; z < batch; z++) {
    const ao = c.batchA === 1 ? 0 : z * c.m * c.k;
    const bo = c.batchB === 1 ? 0 : z * c.k * c.n;
    for (let i = 0; i < c.m; i++) {
      for (let j = 0; j < c.n; j++) {
        let s = 0;
        for (let q = 0; q < c.k; q++) {
          s += a[ao + (c.ta ? q * c.m + i : i * c.k + q)] * b[bo + (c.tb ? j * c.k + q : q * c.n + j)];
        }
        out[(z * c.m + i) * c.n + j] = s;
      }
    }
  }
  return out;
}

const shapeA = (c: Case) => [c.batchA, ...(c.ta ? [c.k, c.m] : [c.m, c.k])];
const shapeB = (c: Case) => [c.batchB, ...(c.tb ? [c.n, c.k] : [c.k, c.n])];
const transposes: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

// odd sizes take the strided loads and every edge path; multiples of 4 take the vec4 loads along
// k, m or n (65 = a k that is not a multiple of 4 under vec4 loads along m and n)
// ... and products at most 8 wide, which the subgroup kernel computes with narrower tiles
const sizes: [number, number, number][] = [[1, 1, 1], [17, 33, 9], [65, 130, 67], [68, 132, 64], [68, 132, 65], [36, 40, 8], [68, 4, 64], [37, 7, 16], [64, 8, 12]];
const cases: Case[] = [];
for (const [m, n, k] of sizes) for (const [ta, tb] of transposes) cases.push({ batchA: 1, batchB: 1, m, n, k, ta, tb });
for (const [ta, tb] of transposes) {
  cases.push({ batchA: 3, batchB: 1, m: 9, n: 20, k: 12, ta, tb });
  cases.push({ batchA: 1, batchB: 2, m: 40, n: 12, k: 8, ta, tb });
  cases.push({ batchA: 2, batchB: 2, m: 33, n: 35, k: 7, ta, tb });
}
const label = (c: Case) => `[${c.batchA}|${c.batchB}] ${c.m}x${c.n}x${c.k}${c.ta ? ' A^T' : ''}${c.tb ? ' B^T' : ''}`;

const kernels: MatmulKernelChoice[] = ['auto', 'tiled', 'reference'];
// one test body per kernel; the subgroup kernel where the adapter can run it and auto is another
if (fixedSubgroupSize() !== null && resolveMatmulKernel('auto') !== 'subgroup') kernels.push('subgroup');

for (const kernel of kernels) {
  test(`matmul (${kernel === 'auto' ? `auto: ${resolveMatmulKernel('auto')}` : kernel} kernel) matches float64 on odd, aligned, transposed and broadcast shapes`, async () => {
    for (const [i, c] of cases.entries()) {
      await tidyAsync(async () => {
        const a = randomArray(numel(shapeA(c)), 10 + i);
        const b = randomArray(numel(shapeB(c)), 500 + i);
        const y = ops.matmul(Tensor.fromData(Float32Array.from(a), shapeA(c)), Tensor.fromData(Float32Array.from(b), shapeB(c)), { transA: c.ta, transB: c.tb, kernel });
        assert.equal(y.shape, [Math.max(c.batchA, c.batchB), c.m, c.n]);
        assertClose(await y.data(), cpuMatmul(a, b, c), 1e-6, `${kernel} ${label(c)}`);
      });
    }
  });
}

test('the fast kernel agrees with the reference kernel on a large product', async () => {
  await tidyAsync(async () => {
    for (const [ta, tb] of transposes) {
      const c: Case = { batchA: 1, batchB: 1, m: 300, n: 256, k: 256, ta, tb };
      const a = Tensor.fromData(Float32Array.from(randomArray(numel(shapeA(c)), 7)), shapeA(c));
      const b = Tensor.fromData(Float32Array.from(randomArray(numel(shapeB(c)), 8)), shapeB(c));
      const fast = await ops.matmul(a, b, { transA: ta, transB: tb }).data();
      const reference = await ops.matmulReference(a, b, { transA: ta, transB: tb }).data();
      // the kernels sum k in different orders: float32 rounding differences only
      assertClose(fast, reference, 1e-6, `fast vs reference ${label(c)}`);
    }
  });
});

test('the tiled kernel splits a product of few tiles and a long k into slices of k (all transposes), and matches float64', async () => {
  // 40 x 70 outputs (2 tiles) over k = 6144: 12 slices of 512, summed after the product
  for (const [ta, tb] of transposes) {
    const c: Case = { batchA: 1, batchB: 1, m: 40, n: 70, k: 6144, ta, tb };
    await tidyAsync(async () => {
      const a = randomArray(numel(shapeA(c)), 3);
      const b = randomArray(numel(shapeB(c)), 4);
      const y = ops.matmul(Tensor.fromData(Float32Array.from(a), shapeA(c)), Tensor.fromData(Float32Array.from(b), shapeB(c)), { transA: ta, transB: tb, kernel: 'tiled' });
      assert.equal(y.shape, [1, c.m, c.n]);
      assertClose(await y.data(), cpuMatmul(a, b, c), 1e-5, `split ${label(c)}`);
    });
  }
});

test('matmul broadcasts batch dimensions of any rank like torch.matmul', async () => {
  // [2, 1, 5, 7] x [3, 7, 4] -> [2, 3, 5, 4]: A broadcast over the 3, B over the 2
  const sa = [2, 1, 5, 7];
  const sb = [3, 7, 4];
  await checkOp({
    name: 'matmul [2,1,5,7] x [3,7,4]', shapes: [sa, sb],
    gpu: ([a, b]) => ops.matmul(a, b),
    cpu: ([a, b]) => {
      const out = new Float64Array(2 * 3 * 5 * 4);
      for (let x = 0; x < 2; x++) {
        for (let y = 0; y < 3; y++) {
          const c = cpuMatmul(a.subarray(x * 35, (x + 1) * 35), b.subarray(y * 28, (y + 1) * 28), { batchA: 1, batchB: 1, m: 5, n: 4, k: 7, ta: false, tb: false });
          out.set(c, (x * 3 + y) * 20);
        }
      }
      return out;
    },
  });
});

for (const kernel of kernels) {
  test(`matmul gradients (${kernel} kernel) match finite differences, all transposes and broadcasts`, async () => {
    const gradCases: Case[] = [];
    for (const [ta, tb] of transposes) {
      gradCases.push({ batchA: 1, batchB: 1, m: 5, n: 6, k: 7, ta, tb });
      gradCases.push({ batchA: 3, batchB: 1, m: 4, n: 3, k: 8, ta, tb });
      gradCases.push({ batchA: 1, batchB: 2, m: 3, n: 8, k: 4, ta, tb });
    }
    for (const c of gradCases) {
      await checkOp({
        name: `matmul ${label(c)}`, shapes: [shapeA(c), shapeB(c)],
        gpu: ([a, b]) => ops.matmul(a, b, { transA: c.ta, transB: c.tb, kernel }),
        cpu: ([a, b]) => cpuMatmul(a, b, c),
      });
    }
  });
}

test('linear gradients match finite differences (x W^T + b over leading dims)', async () => {
  // x [2, 3, 5], W [4, 5], b [4] -> [2, 3, 4]; dW sums over the 6 rows, db over the rows too
  const c: Case = { batchA: 1, batchB: 1, m: 6, n: 4, k: 5, ta: false, tb: true };
  await checkOp({
    name: 'linear', shapes: [[2, 3, 5], [4, 5], [4]],
    gpu: ([x, w, b]) => ops.linear(x, w, b),
    cpu: ([x, w, b]) => cpuMatmul(x, w, c).map((v, i) => v + b[i % 4]),
  });
  await checkOp({
    name: 'linear without bias, 3 inputs (the first layer)', shapes: [[9, 3], [8, 3]],
    gpu: ([x, w]) => ops.linear(x, w),
    cpu: ([x, w]) => cpuMatmul(x, w, { batchA: 1, batchB: 1, m: 9, n: 8, k: 3, ta: false, tb: true }),
  });
});

test('second order: the gradient of a matmul gradient matches float64', async () => {
  // g(A, B) = d/dA sum((A B)^2) = 2 (A B) B^T, taken by autograd with createGraph; checkOp then
  // differentiates g itself (by autograd) against finite differences of the closed form
  await checkOp({
    name: 'd/dA sum((A B)^2)', shapes: [[3, 4], [4, 5]],
    gpu: ([a, b]) => grad(ops.sum(ops.square(ops.matmul(a, b))), [a], { createGraph: true })[0],
    cpu: ([a, b]) => {
      const y = cpuMatmul(a, b, { batchA: 1, batchB: 1, m: 3, n: 5, k: 4, ta: false, tb: false });
      return cpuMatmul(y.map((v) => 2 * v), b, { batchA: 1, batchB: 1, m: 3, n: 4, k: 5, ta: false, tb: true });
    },
  });
});

test.run();
