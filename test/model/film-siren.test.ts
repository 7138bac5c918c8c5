import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { filmSiren, filmSirenFused } from '../../model/film-siren.ts';
import { fusedLinearForward, linearRelu } from '../../model/fused-linear.ts';
import { engineDevice } from '../../engine/index.ts';
import { assertClose, checkOp, randomArray } from '../helpers/reference.ts';

/** float64 sin(freq (x W^T + b) + phase) over [B, N, in] -> [B, N, out]. */
function cpuFilmSiren(b: number, n: number, inF: number, out: number) {
  return ([x, w, bias, freq, phase]: Float64Array[]) => {
    const y = new Float64Array(b * n * out);
    for (let e = 0; e < b; e++) {
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < out; o++) {
          let h = bias[o];
          for (let k = 0; k < inF; k++) h += x[(e * n + r) * inF + k] * w[o * inF + k];
          y[(e * n + r) * out + o] = Math.sin(freq[e * out + o] * h + phase[e * out + o]);
        }
      }
    }
    return y;
  };
}

// odd sizes: the first layer's 3 inputs and the color layer's hidden + 3 take the scalar path,
// multiples of 4 the vec4 one; rows and outputs that do not fill a 4 x 4 block
for (const [b, n, inF, out] of [[2, 37, 3, 9], [1, 13, 8, 6], [2, 5, 11, 16]]) {
  test(`fused FiLM-SIREN [${b}, ${n}, ${inF}] -> ${out}: forward against float64, gradients against finite differences`, async () => {
    const { forward, grad: gradErr } = await checkOp({
      name: 'filmSirenFused',
      shapes: [[b, n, inF], [out, inF], [out], [b, out], [b, out]],
      // the radiance network's frequencies are 15 * mapping + 30
      ranges: [[-1, 1], [-0.3, 0.3], [-0.3, 0.3], [15, 45], [-1, 1]],
      gpu: ([x, w, bias, freq, phase]) => filmSirenFused(x, w, bias, freq, phase),
      cpu: cpuFilmSiren(b, n, inF, out),
      forwardTol: 2e-6,
      gradTol: 2e-4,
    });
    console.log(`  forward ${forward.toExponential(2)}, gradients ${gradErr.toExponential(2)}`);
  });
}

test('fused and reference FiLM-SIREN agree in value, gradient and gradient of gradient', async () => {
  const [b, n, inF, out] = [2, 19, 12, 10];
  await tidyAsync(async () => {
    const make = (shape: number[], seed: number, lo = -1, hi = 1) => {
      const t = Tensor.fromData(Float32Array.from(randomArray(shape.reduce((p, s) => p * s, 1), seed, lo, hi)), shape);
      t.requiresGrad = true;
      return t;
    };
    const inputs = [make([b, n, inF], 1), make([out, inF], 2, -0.3, 0.3), make([out], 3, -0.3, 0.3), make([b, out], 4, 15, 45), make([b, out], 5)];
    const upstream = Tensor.fromData(Float32Array.from(randomArray(b * n * out, 6)), [b, n, out]);
    const probe = Tensor.fromData(Float32Array.from(randomArray(b * n * inF, 7)), [b, n, inF]);
    const run = async (impl: 'fused' | 'reference') => {
      const y = filmSiren(...(inputs as [Tensor, Tensor, Tensor, Tensor, Tensor]), impl);
      const grads = grad(ops.sum(ops.mul(y, upstream)), inputs, { createGraph: true });
      // R1-style second order: d/dW of <dL/dx, probe>
      const [second] = grad(ops.sum(ops.mul(grads[0], probe)), [inputs[1]]);
      return Promise.all([y, ...grads, second].map((t) => t.toFloat32()));
    };
    const fused = await run('fused');
    const reference = await run('reference');
    const names = ['y', 'dx', 'dW', 'db', 'dfreq', 'dphase', 'd2W'];
    fused.forEach((v, i) => assertClose(v, reference[i], 2e-5, names[i]));
  });
});

/** float64 relu(x W^T + b) over [rows, in] -> [rows, out]. */
function cpuLinearRelu(rows: number, inF: number, out: number) {
  return ([x, w, bias]: Float64Array[]) => {
    const y = new Float64Array(rows * out);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < out; o++) {
        let h = bias[o];
        for (let k = 0; k < inF; k++) h += x[r * inF + k] * w[o * inF + k];
        y[r * out + o] = Math.max(h, 0);
      }
    }
    return y;
  };
}

for (const [rows, inF, out] of [[37, 3, 9], [29, 16, 40]]) {
  test(`fused linear + ReLU [${rows}, ${inF}] -> ${out}: forward against float64, gradients against finite differences`, async () => {
    const { forward, grad: gradErr } = await checkOp({
      name: 'linearRelu',
      shapes: [[1, rows, inF], [out, inF], [out]],
      gpu: ([x, w, bias]) => linearRelu(x, w, bias, 'fused'),
      cpu: cpuLinearRelu(rows, inF, out),
      forwardTol: 1e-6,
      gradTol: 1e-4,
    });
    console.log(`  forward ${forward.toExponential(2)}, gradients ${gradErr.toExponential(2)}`);
  });
}

test('every kernel shape (tiled and block for GPUs, subgroup for CPU adapters) gives the reference values', async () => {
  const lanes = (engineDevice().device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const gpuShapes: ('block' | 'tiled' | 'subgroup')[] = ['block', 'tiled'];
  const shapes = engineDevice().info.isSoftware && lanes?.subgroupMinSize === lanes?.subgroupMaxSize ? [...gpuShapes, 'subgroup' as const] : gpuShapes;
  await tidyAsync(async () => {
    for (const [b, n, inF, out] of [[2, 37, 3, 9], [1, 70, 36, 33], [2, 5, 35, 64], [2, 131, 20, 70], [1, 300, 260, 129]]) {
      const data = (shape: number[], seed: number, lo = -1, hi = 1) =>
        Tensor.fromData(Float32Array.from(randomArray(shape.reduce((p, s) => p * s, 1), seed, lo, hi)), shape);
      const [x, w, bias, freq, phase] = [data([b, n, inF], 1), data([out, inF], 2, -0.3, 0.3), data([out], 3), data([b, out], 4, 15, 45), data([b, out], 5)];
      const film = await filmSiren(x, w, bias, freq, phase, 'reference').toFloat32();
      const relu = await linearRelu(x, w, bias, 'reference').toFloat32();
      for (const shape of shapes) {
        if (shape === 'tiled' && inF % 4) continue;
        // the sine's argument carries the sum's rounding times freq (up to 45): looser for long sums
        assertClose(await fusedLinearForward('film-sine', x, w, bias, [freq, phase], shape).toFloat32(), film, 1e-5 * Math.max(1, inF / 64), `film-sine ${shape} [${b}, ${n}, ${inF}] -> ${out}`);
        assertClose(await fusedLinearForward('relu', x, w, bias, [], shape).toFloat32(), relu, 1e-6, `relu ${shape} [${b}, ${n}, ${inF}] -> ${out}`);
      }
    }
  });
});

test('shape errors name both shapes', () => {
  const x = ops.zeros([1, 4, 3]);
  assert.throws(() => filmSiren(x, ops.zeros([5, 4]), ops.zeros([5]), ops.zeros([1, 5]), ops.zeros([1, 5])), /x \[1, 4, 3\] does not fit weight \[5, 4\]/);
  assert.throws(() => filmSiren(x, ops.zeros([5, 3]), ops.zeros([5]), ops.zeros([2, 5]), ops.zeros([1, 5])), /must be \[1, 5\]/);
  assert.throws(() => linearRelu(x, ops.zeros([5, 4]), ops.zeros([5])), /linearRelu: x \[1, 4, 3\] does not fit weight \[5, 4\]/);
});

test.run();
