import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import type { Pads, PadMode } from '../../engine/ops/pad.ts';
import { goldenDir } from '../helpers/golden.ts';
import { assertClose, checkOp, numel, randomArray } from '../helpers/reference.ts';

// ---- float64 CPU references ----

/** Source index of padded position p along a dimension of `size` (-1: zero), as torch pads. */
function sourceIndex(p: number, size: number, mode: PadMode): number {
  if (mode === 'zeros') return p >= 0 && p < size ? p : -1;
  if (mode === 'replicate') return Math.min(size - 1, Math.max(0, p));
  const s = Math.abs(p);
  return s >= size ? 2 * (size - 1) - s : s;
}

/** Visits (source index, padded index) of every padded element that reads a source element. */
function eachPadRead(shape: number[], pads: Pads, mode: PadMode, visit: (src: number, dst: number) => void): void {
  const [h, w] = shape.slice(-2);
  const [hp, wp] = [h + pads[0] + pads[1], w + pads[2] + pads[3]];
  const planes = numel(shape) / (h * w);
  for (let k = 0; k < planes; k++) for (let i = 0; i < hp; i++) for (let j = 0; j < wp; j++) {
    const si = sourceIndex(i - pads[0], h, mode);
    const sj = sourceIndex(j - pads[2], w, mode);
    if (si >= 0 && sj >= 0) visit((k * h + si) * w + sj, (k * hp + i) * wp + j);
  }
}

const paddedShape = (shape: number[], pads: Pads) => [...shape.slice(0, -2), shape.at(-2)! + pads[0] + pads[1], shape.at(-1)! + pads[2] + pads[3]];

function padCpu(x: Float64Array, shape: number[], pads: Pads, mode: PadMode): Float64Array {
  const out = new Float64Array(numel(paddedShape(shape, pads)));
  eachPadRead(shape, pads, mode, (s, d) => (out[d] = x[s]));
  return out;
}

function padAdjointCpu(g: Float64Array, shape: number[], pads: Pads, mode: PadMode): Float64Array {
  const out = new Float64Array(numel(shape));
  eachPadRead(shape, pads, mode, (s, d) => (out[s] += g[d]));
  return out;
}

function avgPoolCpu(x: Float64Array, shape: number[], [kh, kw]: number[], [sh, sw]: number[]): Float64Array {
  const [h, w] = shape.slice(-2);
  const [ho, wo] = [Math.floor((h - kh) / sh) + 1, Math.floor((w - kw) / sw) + 1];
  const planes = numel(shape) / (h * w);
  const out = new Float64Array(planes * ho * wo);
  for (let k = 0; k < planes; k++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    let s = 0;
    for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) s += x[(k * h + i * sh + a) * w + j * sw + b];
    out[(k * ho + i) * wo + j] = s / (kh * kw);
  }
  return out;
}

// ---- pad ----

const padCases: [PadMode, number[], Pads][] = [
  ['zeros', [2, 3, 4, 5], [1, 2, 0, 3]],
  ['replicate', [2, 3, 4, 5], [2, 1, 3, 0]],
  ['replicate', [3, 1, 1], [2, 2, 1, 3]],
  ['reflect', [2, 3, 4, 5], [3, 1, 2, 4]],
  ['reflect', [1, 2, 2, 3], [1, 1, 2, 2]],
];

for (const [mode, shape, pads] of padCases) {
  test(`pad ${mode} [${pads}] of [${shape}] and its adjoint: forward and gradients match float64`, async () => {
    await checkOp({ name: `pad ${mode}`, shapes: [shape], gpu: ([x]) => ops.pad(x, pads, mode), cpu: ([x]) => padCpu(x, shape, pads, mode) });
    await checkOp({
      name: `pad ${mode} adjoint`, shapes: [paddedShape(shape, pads)],
      gpu: ([g]) => ops.padAdjoint(g, shape, pads, mode), cpu: ([g]) => padAdjointCpu(g, shape, pads, mode),
    });
  });
}

test('pad: gradient of the gradient (replicate) matches float64', async () => {
  const shape = [2, 3, 4];
  const pads: Pads = [2, 1, 1, 2];
  const x = randomArray(numel(shape), 5);
  const r = randomArray(numel(paddedShape(shape, pads)), 6);
  // L(x) = |d sum(pad(x)^2 * r) / dx|^2 = |adjoint(2 pad(x) r)|^2, quadratic in x
  const loss = (v: Float64Array) => {
    const p = padCpu(v, shape, pads, 'replicate');
    return padAdjointCpu(p.map((e, i) => 2 * e * r[i]), shape, pads, 'replicate').reduce((s, e) => s + e * e, 0);
  };
  const h = 1e-6;
  const expected = x.map((_, i) => {
    const [plus, minus] = [x.slice(), x.slice()];
    plus[i] += h;
    minus[i] -= h;
    return (loss(plus) - loss(minus)) / (2 * h);
  });
  await tidyAsync(async () => {
    const xt = Tensor.fromData(Float32Array.from(x), shape);
    xt.requiresGrad = true;
    const y = ops.mul(ops.square(ops.pad(xt, pads, 'replicate')), Tensor.fromData(Float32Array.from(r), paddedShape(shape, pads)));
    const [gx] = grad(ops.sum(y), [xt], { createGraph: true });
    const [ggx] = grad(ops.sum(ops.square(gx)), [xt]);
    assertClose(await ggx.data(), expected, 1e-4, 'd/dx');
  });
});

// ---- average pooling ----

const poolCases: [number[], number[], number[]][] = [
  [[2, 3, 9, 11], [2, 2], [2, 2]],
  [[1, 2, 7, 8], [3, 3], [2, 2]],
  [[2, 5, 6], [2, 3], [1, 2]],
];

for (const [shape, kernel, stride] of poolCases) {
  test(`avgPool2d kernel [${kernel}] stride [${stride}] of [${shape}] and its adjoint: forward and gradients match float64`, async () => {
    const k = [kernel[0], kernel[1]] as const;
    const s = [stride[0], stride[1]] as const;
    const outShape = [...shape.slice(0, -2), Math.floor((shape.at(-2)! - k[0]) / s[0]) + 1, Math.floor((shape.at(-1)! - k[1]) / s[1]) + 1];
    await checkOp({ name: 'avgPool2d', shapes: [shape], gpu: ([x]) => ops.avgPool2d(x, k, s), cpu: ([x]) => avgPoolCpu(x, shape, kernel, stride) });
    // the adjoint's reference, straight from its definition: entry i is <g, pool(e_i)>
    await checkOp({
      name: 'avgPool2dAdjoint', shapes: [outShape],
      gpu: ([g]) => ops.avgPool2dAdjoint(g, shape, k, s),
      cpu: ([g]) => {
        const out = new Float64Array(numel(shape));
        const basis = new Float64Array(numel(shape));
        for (let i = 0; i < out.length; i++) {
          basis[i] = 1;
          out[i] = avgPoolCpu(basis, shape, kernel, stride).reduce((acc, v, j) => acc + v * g[j], 0);
          basis[i] = 0;
        }
        return out;
      },
    });
  });
}

test('avgPool2d(2) matches torch on the golden input (9 x 11: the odd row and column are dropped)', async () => {
  const bytes = readFileSync(join(goldenDir, 'ops.safetensors'));
  const { tensors } = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'ops.safetensors');
  const x = tensors.get('in/x')!;
  const expected = tensors.get('out/avg_pool2d_2')!;
  await tidyAsync(async () => {
    const y = ops.avgPool2d(Tensor.fromData(toFloat32(x, 'in/x'), x.shape), 2);
    assert.equal(y.shape, expected.shape);
    // torch's own float32 drift on this case is 5e-8 (manifest.json); the bound is 100x that
    assertClose(await y.data(), toFloat32(expected, 'out/avg_pool2d_2'), 5e-6, 'avg_pool2d_2');
  });
});

test('pad and avgPool2d reject bad arguments with clear errors', async () => {
  await tidyAsync(async () => {
    const x = Tensor.empty([1, 2, 3, 4]);
    const throwsMatching = (f: () => unknown, pattern: RegExp) => assert.throws(f, (e: Error) => pattern.test(e.message), String(pattern));
    throwsMatching(() => ops.pad(x, [3, 0, 0, 0], 'reflect'), /reflect pads \[3, 0, 0, 0\] must be smaller than the padded dimensions 3 x 4/);
    throwsMatching(() => ops.pad(x, [1, -1, 0, 0]), /four non-negative integers/);
    throwsMatching(() => ops.pad(Tensor.empty([5]), [1, 1, 1, 1]), /rank >= 2/);
    throwsMatching(() => ops.padAdjoint(x, [1, 2, 2, 3], [1, 0, 0, 0], 'zeros'), /gradient \[1, 2, 3, 4\] is not the padded shape \[1, 2, 3, 3\]/);
    throwsMatching(() => ops.avgPool2d(x, 4), /kernel 4 x 4 is larger than the 3 x 4 input/);
    throwsMatching(() => ops.avgPool2d(x, 2, 0), /positive integers/);
  });
});

test.run();
