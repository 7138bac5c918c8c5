import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { grad, noGrad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import type { Conv2dOptions, ConvKernelChoice } from '../../engine/ops/conv.ts';
import { assertClose, checkOp, numel, randomArray } from '../helpers/reference.ts';

// ---- float64 CPU convolution: forward, and its two adjoints written as scatters (the kernels gather) ----

interface Geo {
  n: number; c: number; h: number; w: number; o: number; kh: number; kw: number;
  sh: number; sw: number; ph: number; pw: number; groups: number; perSample: boolean;
}

function geo(xShape: number[], wShape: number[], opts: Conv2dOptions = {}): Geo {
  const perSample = wShape.length === 5;
  const [o, , kh, kw] = wShape.slice(perSample ? 1 : 0);
  const pair = (v: number | readonly [number, number] | undefined, d: number) => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
  const [sh, sw] = pair(opts.stride, 1);
  const [ph, pw] = pair(opts.padding, 0);
  const [n, c, h, w] = xShape;
  return { n, c, h, w, o, kh, kw, sh, sw, ph, pw, groups: opts.groups ?? 1, perSample };
}

const outHW = (g: Geo) => [Math.floor((g.h + 2 * g.ph - g.kh) / g.sh) + 1, Math.floor((g.w + 2 * g.pw - g.kw) / g.sw) + 1];
const weightSize = (g: Geo) => (g.perSample ? g.n : 1) * g.o * (g.c / g.groups) * g.kh * g.kw;

/** Visits every (input element, weight element, output element) product of the convolution. */
function eachTerm(g: Geo, visit: (xi: number, wi: number, yi: number) => void): void {
  const [ho, wo] = outHW(g);
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  for (let n = 0; n < g.n; n++) for (let o = 0; o < g.o; o++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    const yi = ((n * g.o + o) * ho + i) * wo + j;
    const group = Math.floor(o / og);
    for (let cl = 0; cl < cg; cl++) for (let a = 0; a < g.kh; a++) for (let b = 0; b < g.kw; b++) {
      const ih = i * g.sh - g.ph + a;
      const iw = j * g.sw - g.pw + b;
      if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
      const xi = ((n * g.c + group * cg + cl) * g.h + ih) * g.w + iw;
      const wi = ((((g.perSample ? n * g.o : 0) + o) * cg + cl) * g.kh + a) * g.kw + b;
      visit(xi, wi, yi);
    }
  }
}

function convCpu(x: Float64Array, w: Float64Array, g: Geo): Float64Array {
  const [ho, wo] = outHW(g);
  const y = new Float64Array(g.n * g.o * ho * wo);
  eachTerm(g, (xi, wi, yi) => (y[yi] += x[xi] * w[wi]));
  return y;
}

function convInputGradCpu(gy: Float64Array, w: Float64Array, g: Geo): Float64Array {
  const gx = new Float64Array(g.n * g.c * g.h * g.w);
  eachTerm(g, (xi, wi, yi) => (gx[xi] += gy[yi] * w[wi]));
  return gx;
}

function convWeightGradCpu(x: Float64Array, gy: Float64Array, g: Geo): Float64Array {
  const gw = new Float64Array(weightSize(g));
  eachTerm(g, (xi, wi, yi) => (gw[wi] += x[xi] * gy[yi]));
  return gw;
}

function addBiasCpu(y: Float64Array, bias: Float64Array, o: number, plane: number): Float64Array {
  return y.map((v, i) => v + bias[Math.floor(i / plane) % o]);
}

/** Replicate padding of [.., H, W] by p on every side. */
function replicatePadCpu(x: Float64Array, shape: number[], p: number): Float64Array {
  const [h, w] = shape.slice(-2);
  const planes = numel(shape) / (h * w);
  const [hp, wp] = [h + 2 * p, w + 2 * p];
  const out = new Float64Array(planes * hp * wp);
  const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  for (let k = 0; k < planes; k++) for (let i = 0; i < hp; i++) for (let j = 0; j < wp; j++) {
    out[(k * hp + i) * wp + j] = x[(k * h + clamp(i - p, h)) * w + clamp(j - p, w)];
  }
  return out;
}

// every test of the kernels runs once per kernel family this adapter has (with 'columns' the 3 x 3
// stride-1 convolutions run on the column kernels, the rest on the plain ones)
const kernelChoices: ConvKernelChoice[] = ops.fixedSubgroupSize() === null ? ['plain', 'columns'] : ['plain', 'subgroup', 'columns'];

// ---- first order: forward and every input's gradient against float64 finite differences ----

interface Case { name: string; x: number[]; w: number[]; bias?: boolean; opts?: Conv2dOptions }
const cases: Case[] = [
  { name: '3x3 pad 1 with bias', x: [2, 3, 5, 6], w: [4, 3, 3, 3], bias: true, opts: { padding: 1 } },
  // 9 out-channels and 11 columns: partial register blocks in both directions
  { name: 'partial blocks', x: [1, 5, 6, 11], w: [9, 5, 3, 3], opts: { padding: 1 } },
  { name: '4x4 stride 2 odd sizes', x: [2, 3, 7, 9], w: [5, 3, 4, 4], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'stride [2, 3] pad [0, 2] kernel 3x2', x: [1, 2, 8, 7], w: [3, 2, 3, 2], opts: { stride: [2, 3], padding: [0, 2] } },
  { name: 'groups 2', x: [2, 4, 5, 5], w: [6, 2, 3, 3], bias: true, opts: { padding: 1, groups: 2 } },
  { name: 'padding 2, no padding', x: [1, 3, 5, 5], w: [2, 3, 3, 3], opts: { padding: 2 } },
  { name: 'padding 0, 1x1', x: [2, 5, 3, 4], w: [6, 5, 1, 1], bias: true },
  { name: '2x2 kernel on a 2x2 map', x: [2, 6, 2, 2], w: [3, 6, 2, 2] },
  { name: 'per-sample weights', x: [2, 3, 5, 5], w: [2, 4, 3, 3, 3], bias: true, opts: { padding: 1 } },
  { name: 'per-sample stride 2 groups 2', x: [2, 4, 7, 6], w: [2, 4, 2, 3, 3], opts: { stride: 2, padding: 1, groups: 2 } },
  // at least 3 x the subgroup size of out-channels per group: the subgroup kernel's whole-3x3 variant
  // (blocks of 4 out-channels per lane, padded when the count is not a multiple; 13 columns: a
  // partial block of 8)
  { name: '3x3 stride 1, 36 out-channels', x: [1, 2, 4, 13], w: [36, 2, 3, 3], bias: true, opts: { padding: 1 } },
  { name: '3x3 stride 1, 26 out-channels per group, groups 2', x: [1, 4, 3, 7], w: [52, 2, 3, 3], opts: { padding: 1, groups: 2 } },
  { name: '3x3 stride 1 per sample, 26 out-channels, no padding', x: [2, 1, 4, 10], w: [2, 26, 1, 3, 3], bias: true },
  // at least 3 x the subgroup size of in-channels per group: the input gradient runs as the forward
  // of the swapped, reversed kernel (padded by 2 - p)
  { name: '3x3 stride 1, 24 in-channels per group, groups 2, no padding', x: [1, 48, 3, 5], w: [4, 24, 3, 3], opts: { groups: 2 } },
  { name: '3x3 stride 1 per sample, 25 in-channels, padding 2', x: [2, 25, 3, 4], w: [2, 3, 25, 3, 3], opts: { padding: 2 } },
];

for (const kernel of kernelChoices) for (const k of cases) {
  test(`conv2d [${kernel}] ${k.name}: forward and gradients match float64`, async () => {
    const g = geo(k.x, k.w, k.opts);
    const [ho, wo] = outHW(g);
    await checkOp({
      name: k.name,
      shapes: k.bias ? [k.x, k.w, [g.o]] : [k.x, k.w],
      gpu: ([x, w, b]) => ops.conv2d(x, w, b, { ...k.opts, kernel }),
      cpu: ([x, w, b]) => (b ? addBiasCpu(convCpu(x, w, g), b, g.o, ho * wo) : convCpu(x, w, g)),
    });
  });
}

// ---- the epilogue: in the kernel's store without gradients, as separate ops with them ----

for (const kernel of kernelChoices) test(`conv2d [${kernel}] epilogue leakyRelu(conv + b) * scale + residual: fused forward and composite gradients match float64`, async () => {
  for (const k of [
    { name: 'small', x: [2, 3, 5, 6], w: [4, 3, 3, 3] },
    { name: '36 out-channels (whole-3x3 kernel)', x: [1, 2, 4, 13], w: [36, 2, 3, 3] },
  ]) {
    const g = geo(k.x, k.w, { padding: 1 });
    const [ho, wo] = outHW(g);
    const yShape = [g.n, g.o, ho, wo];
    const cpu = ([x, w, b, r]: Float64Array[]) => addBiasCpu(convCpu(x, w, g), b, g.o, ho * wo).map((v, i) => (v > 0 ? v : 0.3 * v) * 0.2 + r[i]);
    const gpu = ([x, w, b, r]: Tensor[]) => ops.conv2d(x, w, b, { padding: 1, kernel, epilogue: { negativeSlope: 0.3, scale: 0.2, residual: r } });
    const shapes = [k.x, k.w, [g.o], yShape];
    const xs = shapes.map((s, i) => randomArray(numel(s), 7 + i));
    await tidyAsync(async () => {
      const fused = noGrad(() => gpu(xs.map((x, i) => Tensor.fromData(Float32Array.from(x), shapes[i]))));
      assertClose(await fused.data(), cpu(xs), 1e-5, `${k.name} fused forward`);
    });
    await checkOp({ name: `${k.name} composite`, shapes, gpu, cpu });
  }
});

/** torch's pixel_shuffle of y [n, c r^2, h, w] -> [n, c, h r, w r], in float64. */
function pixelShuffleCpu(y: Float64Array, [n, cr, h, w]: number[], r: number): Float64Array {
  const c = cr / (r * r);
  const out = new Float64Array(y.length);
  for (let b = 0; b < n; b++) for (let oc = 0; oc < cr; oc++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    const ch = Math.floor(oc / (r * r));
    const dy = Math.floor((oc % (r * r)) / r);
    const dx = oc % r;
    out[((b * c + ch) * h * r + i * r + dy) * w * r + j * r + dx] = y[((b * cr + oc) * h + i) * w + j];
  }
  return out;
}

for (const kernel of kernelChoices) test(`conv2d [${kernel}] epilogue with a pixel shuffle: fused forward and composite gradients match float64`, async () => {
  for (const k of [
    // 8 out-channels: 2 shuffled channels at 2x; 36 (whole-3x3 on subgroup adapters): 4 at 3x; 13 columns: partial blocks
    { name: 'r 2, residual', x: [2, 3, 5, 6], w: [8, 3, 3, 3], r: 2, residual: true },
    { name: 'r 3, 36 out-channels', x: [1, 2, 4, 13], w: [36, 2, 3, 3], r: 3, residual: false },
  ]) {
    const g = geo(k.x, k.w, { padding: 1 });
    const [ho, wo] = outHW(g);
    const yShape = [g.n, g.o / (k.r * k.r), ho * k.r, wo * k.r];
    const cpu = ([x, w, b, res]: Float64Array[]) => {
      const y = pixelShuffleCpu(addBiasCpu(convCpu(x, w, g), b, g.o, ho * wo).map((v) => (v > 0 ? v : 0.2 * v) * 0.5), [g.n, g.o, ho, wo], k.r);
      return res ? y.map((v, i) => v + res[i]) : y;
    };
    const gpu = ([x, w, b, res]: Tensor[]) => ops.conv2d(x, w, b, { padding: 1, kernel, epilogue: { negativeSlope: 0.2, scale: 0.5, pixelShuffle: k.r, residual: res } });
    const shapes = [k.x, k.w, [g.o], ...(k.residual ? [yShape] : [])];
    const xs = shapes.map((s, i) => randomArray(numel(s), 17 + i));
    await tidyAsync(async () => {
      const fused = noGrad(() => gpu(xs.map((x, i) => Tensor.fromData(Float32Array.from(x), shapes[i]))));
      assert.equal(fused.shape, yShape);
      assertClose(await fused.data(), cpu(xs), 1e-5, `${k.name} fused forward`);
    });
    await checkOp({ name: `${k.name} composite`, shapes, gpu, cpu });
  }
});

for (const kernel of kernelChoices) test(`conv2d [${kernel}] replicate padding 1 and 2: forward and gradients match float64`, async () => {
  for (const p of [1, 2]) {
    const xs = [2, 3, 4, 5];
    const padded = [2, 3, 4 + 2 * p, 5 + 2 * p];
    const g = geo(padded, [4, 3, 3, 3]);
    await checkOp({
      name: `replicate ${p}`, shapes: [xs, [4, 3, 3, 3], [4]],
      gpu: ([x, w, b]) => ops.conv2d(x, w, b, { padding: p, paddingMode: 'replicate', kernel }),
      cpu: ([x, w, b]) => addBiasCpu(convCpu(replicatePadCpu(x, xs, p), w, g), b, 4, numel(outHW(g))),
    });
  }
});

for (const kernel of kernelChoices) test(`[${kernel}] the transposed (input-gradient) and weight-gradient ops match float64, with their gradients`, async () => {
  const opts: Conv2dOptions = { stride: 2, padding: 1, groups: 2, kernel };
  for (const wShape of [[4, 2, 3, 3], [2, 4, 2, 3, 3]]) {
    const xShape = [2, 4, 7, 6];
    const g = geo(xShape, wShape, opts);
    const yShape = [2, 4, ...outHW(g)];
    await checkOp({
      name: `transpose ${wShape.length}-d weight`, shapes: [yShape, wShape],
      gpu: ([gy, w]) => ops.conv2dTransposeInput(gy, w, xShape, opts),
      cpu: ([gy, w]) => convInputGradCpu(gy, w, g),
    });
    await checkOp({
      name: `weight grad ${wShape.length}-d weight`, shapes: [xShape, yShape],
      gpu: ([x, gy]) => ops.conv2dWeightGrad(x, gy, wShape, opts),
      cpu: ([x, gy]) => convWeightGradCpu(x, gy, g),
    });
  }
});

// ---- second order ----

/** Central differences of a scalar float64 function in every coordinate of one argument. */
function finiteDifferences(f: (v: Float64Array) => number, v: Float64Array, h = 1e-6): Float64Array {
  return v.map((_, i) => {
    const plus = v.slice();
    const minus = v.slice();
    plus[i] += h;
    minus[i] -= h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

const sumSquares = (v: Float64Array) => v.reduce((s, e) => s + e * e, 0);

for (const kernel of kernelChoices) test(`[${kernel}] second order: d/dw and d/dx of |d sum(softplus(conv(x, w) + b) * r) / dx|^2 match float64`, async () => {
  const variants: Case[] = [
    { name: 'shared, stride 1 pad 1', x: [2, 3, 5, 6], w: [4, 3, 3, 3], opts: { padding: 1, kernel } },
    { name: 'shared, 4x4 stride 2 groups 2', x: [2, 4, 7, 6], w: [6, 2, 4, 4], opts: { stride: 2, padding: 1, groups: 2, kernel } },
    { name: 'per sample', x: [2, 3, 5, 5], w: [2, 4, 3, 3, 3], opts: { padding: 1, kernel } },
  ];
  for (const k of variants) {
    const g = geo(k.x, k.w, k.opts);
    const [ho, wo] = outHW(g);
    const yShape = [g.n, g.o, ho, wo];
    const x = randomArray(numel(k.x), 11);
    const w = randomArray(numel(k.w), 12);
    const b = randomArray(g.o, 13);
    const r = randomArray(numel(yShape), 14);
    // L(x, w, b) = |T(sigmoid(F(x, w) + b) * r, w)|^2, the R1 pattern with a nonlinearity between
    const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => {
      const y = addBiasCpu(convCpu(xv, wv, g), bv, g.o, ho * wo);
      const s = y.map((v, i) => r[i] / (1 + Math.exp(-v)));
      return sumSquares(convInputGradCpu(s, wv, g));
    };
    const expected = [
      finiteDifferences((v) => loss(v, w, b), x),
      finiteDifferences((v) => loss(x, v, b), w),
      finiteDifferences((v) => loss(x, w, v), b),
    ];
    await tidyAsync(async () => {
      const inputs = [Tensor.fromData(Float32Array.from(x), k.x), Tensor.fromData(Float32Array.from(w), k.w), Tensor.fromData(Float32Array.from(b), [g.o])];
      inputs.forEach((t) => (t.requiresGrad = true));
      const [xt, wt, bt] = inputs;
      const y = ops.softplus(ops.conv2d(xt, wt, bt, k.opts));
      const [gx] = grad(y, [xt], { gradOutputs: [Tensor.fromData(Float32Array.from(r), yShape)], createGraph: true });
      const grads = grad(ops.sum(ops.square(gx)), inputs);
      for (let i = 0; i < 3; i++) assertClose(await grads[i].data(), expected[i], 2e-4, `${k.name} d/d${['x', 'w', 'b'][i]}`);
    });
  }
});

for (const kernel of kernelChoices) test(`[${kernel}] second order: d/dx of |d sum(conv(x, w) * r) / dw|^2 matches float64`, async () => {
  for (const wShape of [[4, 3, 3, 3], [2, 4, 3, 3, 3]]) {
    const opts: Conv2dOptions = { stride: 2, padding: 1, kernel };
    const xShape = [2, 3, 6, 5];
    const g = geo(xShape, wShape, opts);
    const yShape = [2, 4, ...outHW(g)];
    const x = randomArray(numel(xShape), 21);
    const w = randomArray(numel(wShape), 22);
    const r = randomArray(numel(yShape), 23);
    // the weight gradient G(x, r) does not depend on w; its square's gradient in x is 2 T(r, G)
    const expected = finiteDifferences((v) => sumSquares(convWeightGradCpu(v, r, g)), x);
    await tidyAsync(async () => {
      const xt = Tensor.fromData(Float32Array.from(x), xShape);
      const wt = Tensor.fromData(Float32Array.from(w), wShape);
      xt.requiresGrad = true;
      wt.requiresGrad = true;
      const y = ops.conv2d(xt, wt, null, opts);
      const [gw] = grad(y, [wt], { gradOutputs: [Tensor.fromData(Float32Array.from(r), yShape)], createGraph: true });
      const [gx] = grad(ops.sum(ops.square(gw)), [xt]);
      assertClose(await gx.data(), expected, 2e-4, `${wShape.length}-d weight d/dx`);
    });
  }
});

// ---- the kernels against the composed reference path (pad + strided slices + matmul) ----

for (const kernel of kernelChoices) test(`[${kernel}] conv2d kernels equal the im2col composition, to second order, at sizes beyond the CPU checks`, async () => {
  // 40 and 24 channels: several full blocks plus a partial one in both kernel families
  const variants: Case[] = [
    { name: 'shared 3x3', x: [2, 24, 12, 13], w: [40, 24, 3, 3], opts: { padding: 1, kernel } },
    { name: 'replicate 4x4 stride 2 groups 4', x: [2, 16, 13, 10], w: [12, 4, 4, 4], opts: { stride: 2, padding: 1, paddingMode: 'replicate', groups: 4, kernel } },
    { name: 'per sample', x: [3, 8, 9, 9], w: [3, 10, 8, 3, 3], opts: { padding: 1, kernel } },
  ];
  for (const k of variants) {
    await tidyAsync(async () => {
      const x = Tensor.fromData(Float32Array.from(randomArray(numel(k.x), 31)), k.x);
      const w = Tensor.fromData(Float32Array.from(randomArray(numel(k.w), 32)), k.w);
      x.requiresGrad = true;
      w.requiresGrad = true;
      const run = (conv: typeof ops.conv2d) => {
        const y = conv(x, w, null, k.opts);
        const [gx] = grad(ops.sum(ops.square(ops.softplus(y))), [x], { createGraph: true });
        const [ggx, ggw] = grad(ops.sum(ops.square(gx)), [x, w]);
        return [y, gx, ggx, ggw];
      };
      const fast = run(ops.conv2d);
      const ref = run(ops.conv2dReference);
      for (let i = 0; i < fast.length; i++) {
        assertClose(await fast[i].data(), await ref[i].data(), 1e-5, `${k.name} ${['y', 'dx', 'd2/dx', 'd2/dw'][i]}`);
      }
    });
  }
});

// ---- modulated convolution ----

function modulatedCpu(x: Float64Array, w: Float64Array, style: Float64Array, bias: Float64Array | null, xShape: number[], wShape: number[], demodulate: boolean, padding: number): Float64Array {
  const [n] = xShape;
  const [o, c, kh, kw] = wShape;
  const per = new Float64Array(n * o * c * kh * kw);
  for (let s = 0; s < n; s++) for (let oc = 0; oc < o; oc++) {
    const block = c * kh * kw;
    let norm = 0;
    for (let e = 0; e < block; e++) {
      const v = w[oc * block + e] * style[s * c + Math.floor(e / (kh * kw))];
      per[(s * o + oc) * block + e] = v;
      norm += v * v;
    }
    if (demodulate) for (let e = 0; e < block; e++) per[(s * o + oc) * block + e] /= Math.sqrt(norm + 1e-8);
  }
  const g = geo(xShape, [n, ...wShape], { padding });
  const y = convCpu(x, per, g);
  return bias ? addBiasCpu(y, bias, o, numel(outHW(g))) : y;
}

test('modulatedConv2d: forward and gradients in x, weight, style and bias match float64', async () => {
  const xShape = [2, 3, 5, 4];
  for (const [wShape, padding, demodulate] of [[[4, 3, 3, 3], 1, true], [[4, 3, 3, 3], 1, false], [[5, 3, 1, 1], 0, true]] as const) {
    await checkOp({
      name: `modulated ${wShape.join('x')} demodulate ${demodulate}`,
      shapes: [xShape, wShape, [2, 3], [wShape[0]]],
      // styles away from zero, like the mapping network's
      ranges: [[-1, 1], [-1, 1], [0.5, 1.5], [-1, 1]],
      gpu: ([x, w, s, b]) => ops.modulatedConv2d(x, w, s, { padding, demodulate, bias: b }),
      cpu: ([x, w, s, b]) => modulatedCpu(x, w, s, b, xShape, [...wShape], demodulate, padding),
    });
  }
});

// ---- bad input ----

test('mismatched shapes and options give clear errors', async () => {
  await tidyAsync(async () => {
    const x = Tensor.empty([2, 4, 5, 5]);
    const throwsMatching = (f: () => unknown, pattern: RegExp) => assert.throws(f, (e: Error) => pattern.test(e.message), String(pattern));
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 5, 3, 3])), /weight \[3, 5, 3, 3\] takes 5 input channels.*has 4/);
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 2, 3, 3]), null, { groups: 2 }), /groups 2 must divide both the 4 input and the 3 output/);
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 4, 3, 3]), Tensor.empty([4])), /bias must be \[3\]/);
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 3, 4, 3, 3])), /per-sample weight \[3, 3, 4, 3, 3\] is for 3 samples/);
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 4, 7, 7])), /kernel 7 x 7 does not fit the 5 x 5 input/);
    throwsMatching(() => ops.conv2d(Tensor.empty([4, 5, 5]), Tensor.empty([3, 4, 3, 3])), /input must be \[N, C, H, W\]/);
    throwsMatching(() => ops.conv2d(x, Tensor.empty([3, 4, 3, 3]), null, { stride: 0 }), /stride/);
    throwsMatching(() => ops.modulatedConv2d(x, Tensor.empty([3, 4, 3, 3]), Tensor.empty([2, 3])), /style must be \[2, 4\]/);
    throwsMatching(() => ops.conv2dTransposeInput(Tensor.empty([2, 3, 4, 4]), Tensor.empty([3, 4, 3, 3]), [2, 4, 5, 5]), /output gradient \[2, 3, 4, 4\] is not .* \[2, 3, 3, 3\]/);
  });
});

test.run();
