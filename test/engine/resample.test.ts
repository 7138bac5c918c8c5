import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { grad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { goldenDir } from '../helpers/golden.ts';
import { assertClose, checkOp, numel, randomArray, relError } from '../helpers/reference.ts';

// ---- float64 CPU references, written from torch's definitions (ATen UpSample.h, GridSampler.h) and
// the authors' torch_utils/interpolate.py

type Shape = readonly number[];
interface Tap { index: number; weight: number }

/** torch's bilinear / bicubic taps of every output index along one axis. */
function axisTaps(inSize: number, outSize: number, mode: 'bilinear' | 'bicubic', align: boolean, scale?: number): Tap[][] {
  const ratio = align ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : scale ? 1 / scale : inSize / outSize;
  const clampIndex = (i: number) => Math.min(Math.max(i, 0), inSize - 1);
  return Array.from({ length: outSize }, (_, t) => {
    if (mode === 'bilinear') {
      const src = align ? ratio * t : Math.max(ratio * (t + 0.5) - 0.5, 0);
      const i0 = Math.min(Math.floor(src), inSize - 1);
      const l = src - i0;
      return [{ index: i0, weight: 1 - l }, { index: clampIndex(i0 + 1), weight: l }];
    }
    const src = align ? ratio * t : ratio * (t + 0.5) - 0.5;
    const i0 = Math.floor(src);
    const f = src - i0;
    const a = -0.75;
    // Keys' cubic convolution kernel at distance d
    const k = (d: number) => (d <= 1 ? (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1 : a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a);
    return [1 + f, f, 1 - f, 2 - f].map((d, j) => ({ index: clampIndex(i0 - 1 + j), weight: k(d) }));
  });
}

function separable(x: Float64Array, [n, c, h, w]: Shape, rows: Tap[][], cols: Tap[][]): Float64Array {
  const ho = rows.length;
  const wo = cols.length;
  const out = new Float64Array(n * c * ho * wo);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let acc = 0;
        for (const r of rows[i]) for (const s of cols[j]) acc += r.weight * s.weight * x[(p * h + r.index) * w + s.index];
        out[(p * ho + i) * wo + j] = acc;
      }
    }
  }
  return out;
}

function interpolateRef(x: Float64Array, shape: Shape, size: [number, number], mode: 'bilinear' | 'bicubic', align: boolean, scale?: number): Float64Array {
  return separable(x, shape, axisTaps(shape[2], size[0], mode, align, scale), axisTaps(shape[3], size[1], mode, align, scale));
}

/** The authors' bicubic_downsample: replicate pad, conv2d with the outer product of the 1-D taps. */
function bicubicDownsampleRef(x: Float64Array, [n, c, h, w]: Shape, f: number): Float64Array {
  const keys = (v: number) => {
    const t = Math.abs(v);
    return t <= 1 ? 1.5 * t ** 3 - 2.5 * t ** 2 + 1 : t < 2 ? -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2 : 0;
  };
  const taps = Array.from({ length: 4 * f }, (_, i) => keys((i - 2 * f + 0.5) / f) / f);
  const pad = Math.floor(1.5 * f);
  const ho = Math.floor((h + 2 * pad - 4 * f) / f) + 1;
  const wo = Math.floor((w + 2 * pad - 4 * f) / f) + 1;
  const at = (p: number, i: number, j: number) => x[(p * h + Math.min(Math.max(i - pad, 0), h - 1)) * w + Math.min(Math.max(j - pad, 0), w - 1)];
  const out = new Float64Array(n * c * ho * wo);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let acc = 0;
        for (let a = 0; a < 4 * f; a++) for (let b = 0; b < 4 * f; b++) acc += taps[a] * taps[b] * at(p, i * f + a, j * f + b);
        out[(p * ho + i) * wo + j] = acc;
      }
    }
  }
  return out;
}

/** grid_sample, bilinear, align_corners=False. */
function gridSampleRef(x: Float64Array, [n, c, h, w]: Shape, grid: Float64Array, [, ho, wo]: Shape, padding: 'zeros' | 'reflection'): Float64Array {
  const coordinate = (v: number, size: number) => {
    let p = ((v + 1) * size - 1) / 2;
    if (padding === 'reflection') {
      // reflect_coordinates(p, -1, 2 size - 1), then clip_coordinates(p, size)
      const d = Math.abs(p + 0.5);
      const flips = Math.floor(d / size);
      const extra = d % size;
      p = flips % 2 === 0 ? extra - 0.5 : size - extra - 0.5;
      p = Math.min(size - 1, Math.max(p, 0));
    }
    return p;
  };
  const out = new Float64Array(n * c * ho * wo);
  for (let b = 0; b < n; b++) {
    for (let q = 0; q < ho * wo; q++) {
      const px = coordinate(grid[(b * ho * wo + q) * 2], w);
      const py = coordinate(grid[(b * ho * wo + q) * 2 + 1], h);
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      for (const [dy, wy] of [[0, 1 - (py - y0)], [1, py - y0]]) {
        for (const [dx, wx] of [[0, 1 - (px - x0)], [1, px - x0]]) {
          const cx = x0 + dx;
          const cy = y0 + dy;
          if (cx < 0 || cx >= w || cy < 0 || cy >= h) continue;
          for (let ch = 0; ch < c; ch++) out[(b * c + ch) * ho * wo + q] += wy * wx * x[((b * c + ch) * h + cy) * w + cx];
        }
      }
    }
  }
  return out;
}

function pixelShuffleRef(x: Float64Array, [n, cr, h, w]: Shape, r: number): Float64Array {
  const c = cr / (r * r);
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * r; i++) for (let j = 0; j < w * r; j++) {
    const src = ch * r * r + (i % r) * r + (j % r);
    out[((b * c + ch) * h * r + i) * w * r + j] = x[((b * cr + src) * h + Math.floor(i / r)) * w + Math.floor(j / r)];
  }
  return out;
}

// ---- forward and first-order gradients against float64 on odd sizes

test('interpolate bilinear and bicubic match torch semantics, with gradients', async () => {
  const shape = [1, 2, 5, 7];
  const cases: [string, (x: Tensor) => Tensor, (x: Float64Array) => Float64Array][] = [
    ['bilinear x2', (x) => ops.interpolate(x, { scale: 2 }, 'bilinear'), (x) => interpolateRef(x, shape, [10, 14], 'bilinear', false)],
    ['bilinear to 3x11', (x) => ops.interpolate(x, { size: [3, 11] }, 'bilinear'), (x) => interpolateRef(x, shape, [3, 11], 'bilinear', false)],
    // a scale factor sets the source step 1/scale, not in/out (here 1/1.5 vs 5/7 and 7/10)
    ['bilinear x1.5', (x) => ops.interpolate(x, { scale: 1.5 }, 'bilinear'), (x) => interpolateRef(x, shape, [7, 10], 'bilinear', false, 1.5)],
    ['bilinear align_corners to 9x4', (x) => ops.interpolate(x, { size: [9, 4] }, 'bilinear', true), (x) => interpolateRef(x, shape, [9, 4], 'bilinear', true)],
    ['bicubic x3', (x) => ops.interpolate(x, { scale: 3 }, 'bicubic'), (x) => interpolateRef(x, shape, [15, 21], 'bicubic', false)],
    ['bicubic to 4x9', (x) => ops.interpolate(x, { size: [4, 9] }, 'bicubic'), (x) => interpolateRef(x, shape, [4, 9], 'bicubic', false)],
    ['bicubic align_corners to 8x6', (x) => ops.interpolate(x, { size: [8, 6] }, 'bicubic', true), (x) => interpolateRef(x, shape, [8, 6], 'bicubic', true)],
  ];
  for (const [name, gpu, cpu] of cases) await checkOp({ name, shapes: [shape], gpu: ([x]) => gpu(x), cpu: ([x]) => cpu(x) });
});

test('bicubicDownsample matches the authors\' padded convolution, with gradients', async () => {
  for (const [shape, f] of [[[1, 2, 9, 11], 2], [[2, 1, 13, 10], 3], [[1, 1, 16, 17], 4]] as [number[], number][]) {
    await checkOp({
      name: `bicubicDownsample x${f} [${shape}]`, shapes: [shape],
      gpu: ([x]) => ops.bicubicDownsample(x, f), cpu: ([x]) => bicubicDownsampleRef(x, shape, f),
    });
  }
});

test('pixelShuffle rearranges channel blocks into pixels', async () => {
  const shape = [2, 8, 3, 5];
  await checkOp({ name: 'pixelShuffle', shapes: [shape], gpu: ([x]) => ops.pixelShuffle(x, 2), cpu: ([x]) => pixelShuffleRef(x, shape, 2) });
});

test('gridSample (zeros, reflection) matches torch, with gradients in input and grid', async () => {
  const shape = [2, 3, 5, 7];
  const gridShape = [2, 4, 3, 2];
  // [-1.3, 1.3] reaches past the border; [-3.5, 3.5] reflects several times
  for (const [padding, range] of [['zeros', 1.3], ['reflection', 1.3], ['reflection', 3.5]] as const) {
    await checkOp({
      name: `gridSample ${padding} in +-${range}`, shapes: [shape, gridShape], ranges: [[-1, 1], [-range, range]],
      gpu: ([x, grid]) => ops.gridSample(x, grid, { padding }),
      cpu: ([x, grid]) => gridSampleRef(x, shape, grid, gridShape, padding),
    });
  }
});

// ---- second order

test('the adjoint passes differentiate back into the forward (double backward of linear maps)', async () => {
  // y = A x, L = <w, y>: dL/dx = A^T w, and d<v, A^T w>/dw = A v
  const shape = [1, 2, 5, 6];
  const maps: [string, (x: Tensor) => Tensor, (x: Float64Array) => Float64Array][] = [
    ['bilinear', (x) => ops.interpolate(x, { size: [9, 4] }, 'bilinear'), (x) => interpolateRef(x, shape, [9, 4], 'bilinear', false)],
    ['bicubic', (x) => ops.interpolate(x, { scale: 2 }, 'bicubic'), (x) => interpolateRef(x, shape, [10, 12], 'bicubic', false)],
    ['bicubicDownsample', (x) => ops.bicubicDownsample(x, 2), (x) => bicubicDownsampleRef(x, shape, 2)],
  ];
  for (const [name, gpu, cpu] of maps) {
    await tidyAsync(async () => {
      const x = Tensor.fromData(Float32Array.from(randomArray(numel(shape), 1)), shape);
      x.requiresGrad = true;
      const y = gpu(x);
      const w = Tensor.fromData(Float32Array.from(randomArray(y.size, 2)), y.shape);
      w.requiresGrad = true;
      const v = randomArray(numel(shape), 3);
      const [gx] = grad(y, [x], { gradOutputs: [w], createGraph: true });
      const [gw] = grad(ops.sum(ops.mul(gx, Tensor.fromData(Float32Array.from(v), shape))), [w]);
      assertClose(await gw.data(), cpu(v), 1e-5, `${name} d<v, A^T w>/dw`);
    });
  }
});

test('gridSample second derivatives match finite differences of finite differences', async () => {
  const shape = [1, 2, 4, 5];
  const gridShape = [1, 2, 3, 2];
  const outShape = [1, 2, 2, 3];
  const sizes = [numel(shape), numel(gridShape), numel(outShape)];
  for (const padding of ['zeros', 'reflection'] as const) {
    const [x, g, w] = sizes.map((n, i) => randomArray(n, 10 + i, i === 1 ? -1.2 : -1, i === 1 ? 1.2 : 1));
    const [u, v] = sizes.slice(0, 2).map((n, i) => randomArray(n, 20 + i));
    // s = <u, dL/dx> + <v, dL/dgrid> with L = <w, gridSample(x, grid)>
    const loss = (xs: Float64Array, gs: Float64Array, ws: Float64Array) =>
      gridSampleRef(xs, shape, gs, gridShape, padding).reduce((acc, y, i) => acc + y * ws[i], 0);
    const central = (f: (d: Float64Array[]) => number, inputs: Float64Array[], k: number, i: number, h: number) => {
      const plus = inputs.map((a) => a.slice());
      const minus = inputs.map((a) => a.slice());
      plus[k][i] += h;
      minus[k][i] -= h;
      return (f(plus) - f(minus)) / (2 * h);
    };
    // L is linear in x and piecewise quadratic in the grid, so central differences are exact up to
    // rounding inside a cell
    const s = (ins: Float64Array[]) => {
      const f = (d: Float64Array[]) => loss(d[0], d[1], d[2]);
      let acc = 0;
      for (let i = 0; i < u.length; i++) acc += u[i] * central(f, ins, 0, i, 1e-5);
      for (let i = 0; i < v.length; i++) acc += v[i] * central(f, ins, 1, i, 1e-5);
      return acc;
    };
    const expected = [x, g, w].map((a, k) => Float64Array.from(a, (_, i) => central(s, [x, g, w], k, i, 1e-4)));
    await tidyAsync(async () => {
      const [tx, tg, tw] = [x, g, w].map((a, k) => {
        const t = Tensor.fromData(Float32Array.from(a), [shape, gridShape, outShape][k]);
        t.requiresGrad = true;
        return t;
      });
      const y = ops.gridSample(tx, tg, { padding });
      const [gx, gg] = grad(y, [tx, tg], { gradOutputs: [tw], createGraph: true });
      const sGpu = ops.add(ops.sum(ops.mul(gx, Tensor.fromData(Float32Array.from(u), shape))), ops.sum(ops.mul(gg, Tensor.fromData(Float32Array.from(v), gridShape))));
      const second = grad(sGpu, [tx, tg, tw]);
      for (let k = 0; k < 3; k++) assertClose(await second[k].data(), expected[k], 1e-4, `${padding} d s / d ${['x', 'grid', 'w'][k]}`);
    });
  }
});

// ---- the golden vectors of the authors' torch code

test('every resampling output of the golden ops case is within its tolerance', async () => {
  const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8')).ops.outputs as Record<string, { torch_f32_rel_err: number }>;
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, 'ops.safetensors'))), 'ops.safetensors');
  await tidyAsync(async () => {
    const input = (name: string) => Tensor.fromData(toFloat32(tensors.get(name)!, name), tensors.get(name)!.shape);
    const [x, xBicubic, grid] = ['in/x', 'in/x_bicubic', 'in/grid'].map(input);
    const outputs: Record<string, Tensor> = {
      'out/interpolate_bilinear_x2': ops.interpolate(x, { scale: 2 }, 'bilinear'),
      'out/interpolate_bilinear_x4_align_corners': ops.interpolate(x, { scale: 4 }, 'bilinear', true),
      'out/interpolate_bicubic_x4': ops.interpolate(x, { scale: 4 }, 'bicubic'),
      'out/pixel_shuffle_x2': ops.pixelShuffle(ops.narrow(x, 1, 0, 4), 2),
      'out/bicubic_downsample_x2': ops.bicubicDownsample(x, 2),
      'out/bicubic_downsample_x4': ops.bicubicDownsample(xBicubic, 4),
      'out/grid_sample_zeros': ops.gridSample(x, grid, { padding: 'zeros' }),
      'out/grid_sample_reflection': ops.gridSample(x, grid, { padding: 'reflection' }),
    };
    for (const [name, y] of Object.entries(outputs)) {
      const truth = tensors.get(name)!;
      assert.equal(y.shape, truth.shape, name);
      const allowed = Math.max(100 * manifest[name].torch_f32_rel_err, 1e-4);
      const err = relError(await y.data(), toFloat32(truth, name));
      assert.ok(err <= allowed, `${name}: relative error ${err.toExponential(2)} > ${allowed.toExponential(2)}`);
    }
  });
});

test.run();
