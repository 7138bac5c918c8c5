// Elementwise ops with NumPy broadcasting. Each op's forward is one WGSL expression (one kernel
// generator, kernels/elementwise.ts) and its gradient rule sits beside it, written with ops.
import { elementwiseKernel, elementwiseUniforms, ELEMENTWISE_WG } from '../../kernels/elementwise.ts';
import { record } from '../autograd.ts';
import { dispatch } from '../runtime.ts';
import { Tensor, type DType } from '../tensor.ts';
import { sumTo } from './reduce.ts';

export type Scalar = number;
export type Operand = Tensor | Scalar;

export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let d = 0; d < rank; d++) {
    let size = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + d] ?? 1;
      if (v !== 1) {
        if (size !== 1 && size !== v) throw new Error(`shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not broadcast`);
        size = v;
      }
    }
    out.push(size);
  }
  return out;
}

/** Strides of `shape` read as if broadcast to `target` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const strides = new Array<number>(target.length).fill(0);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const td = target.length - shape.length + d;
    strides[td] = shape[d] === 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

function contiguousStridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; s *= shape[d], d--) st[d] = s;
  return st;
}

/** The fewest dimensions the broadcast really has: size-1 output dimensions dropped, and
 * neighbours merged where every input walks them as one (contiguously, or broadcast over both).
 * A bias add [B, N, C] + [C] becomes [B*N, C]; same-shaped inputs become one plain index. The
 * kernel's cost is an integer division per dimension per element, so this is most of its work. */
export function coalesceBroadcast(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const out = { shape: [] as number[], strides: strides.map(() => [] as number[]) };
  shape.forEach((size, d) => {
    if (size === 1) return;
    const k = out.shape.length - 1;
    if (k >= 0 && strides.every((st, i) => out.strides[i][k] === st[d] * size)) {
      out.shape[k] *= size;
      strides.forEach((st, i) => { out.strides[i][k] = st[d]; });
    } else {
      out.shape.push(size);
      strides.forEach((st, i) => out.strides[i].push(st[d]));
    }
  });
  return out;
}

/** Runs an elementwise expression over broadcast inputs; records nothing. */
export function mapElements(name: string, expr: string, inputs: Tensor[], out: DType = 'f32', p0 = 0, p1 = 0, shape?: readonly number[]): Tensor {
  const outShape = shape ?? broadcastShapes(...inputs.map((t) => t.shape));
  const result = Tensor.empty(outShape, out);
  const n = result.size;
  if (n === 0) return result;
  const { shape: iterShape, strides } = coalesceBroadcast(outShape, inputs.map((t) => broadcastStrides(t.shape, outShape)));
  const dense = contiguousStridesOf(iterShape);
  const contiguous = strides.every((st) => st.every((s, d) => s === dense[d]));
  const kernel = elementwiseKernel({ name, expr, inputs: inputs.map((t) => t.dtype), out, contiguous, rank: iterShape.length });
  const uniforms = new Uint8Array(elementwiseUniforms(n, iterShape, strides, p0, p1));
  dispatch(kernel, [...inputs.map((t) => t.buffer), result.buffer], uniforms, Math.ceil(n / ELEMENTWISE_WG));
  return result;
}

export function full(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  return mapElements('fill', 'p0', [], dtype, value, 0, shape);
}
export const zeros = (shape: readonly number[]) => full(shape, 0);
export const ones = (shape: readonly number[]) => full(shape, 1);
export const zerosLike = (t: Tensor) => full(t.shape, 0);
export const onesLike = (t: Tensor) => full(t.shape, 1);

/** A copy (used where a tensor must not alias its input). */
export function clone(x: Tensor): Tensor {
  return record(mapElements('copy', 'a', [x], x.dtype), 'clone', [x], (g) => [g]);
}

export function toF32(x: Tensor): Tensor {
  return x.dtype === 'f32' ? x : mapElements('copy', 'a', [x], 'f32');
}

// ---- unary ----

function unary(name: string, expr: string, x: Tensor, grad: ((x: Tensor, y: Tensor, g: Tensor) => Tensor) | null, p0 = 0, p1 = 0): Tensor {
  const y = mapElements(name, expr, [x], 'f32', p0, p1);
  return grad ? record(y, name, [x], (g) => [grad(x, y, g)]) : y;
}

export const neg = (x: Tensor): Tensor => unary('neg', '-a', x, (_x, _y, g) => neg(g));
export const exp = (x: Tensor): Tensor => unary('exp', 'exp(a)', x, (_x, y, g) => mul(g, y));
export const log = (x: Tensor): Tensor => unary('log', 'log(a)', x, (x, _y, g) => div(g, x));
export const sin = (x: Tensor): Tensor => unary('sin', 'psin(a)', x, (x, _y, g) => mul(g, cos(x)));
export const cos = (x: Tensor): Tensor => unary('cos', 'pcos(a)', x, (x, _y, g) => neg(mul(g, sin(x))));
export const sqrt = (x: Tensor): Tensor => unary('sqrt', 'sqrt(a)', x, (_x, y, g) => div(mul(g, 0.5), y));
// d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', 'inverseSqrt(a)', x, (_x, y, g) => mul(g, mul(pow(y, 3), -0.5)));
export const square = (x: Tensor): Tensor => unary('square', 'a * a', x, (x, _y, g) => mul(g, mul(x, 2)));
export const abs = (x: Tensor): Tensor => unary('abs', 'abs(a)', x, (x, _y, g) => mul(g, sign(x)));
export const sign = (x: Tensor): Tensor => unary('sign', 'sign(a)', x, null);
// sigmoid(x) = 1/(1+e^-x), written per sign so that exp never overflows; d = y(1-y)
export const sigmoid = (x: Tensor): Tensor =>
  unary('sigmoid', 'select(exp(a) / (1.0 + exp(a)), 1.0 / (1.0 + exp(-a)), a >= 0.0)', x, (_x, y, g) => mul(g, mul(y, rsub(1, y))));
export const relu = (x: Tensor): Tensor => unary('relu', 'max(a, 0.0)', x, (x, _y, g) => mul(g, gt(x, 0)));
/** max(x, 0) + slope * min(x, 0), one kernel; its derivative mask is a constant of x almost
 * everywhere, so the rule stays differentiable in g. */
export function leakyRelu(x: Tensor, slope = 0.2): Tensor {
  return unary('leakyRelu', 'a * select(p0, 1.0, a > 0.0)', x, (x, _y, g) => mul(g, mapElements('leakySlope', 'select(p0, 1.0, a > 0.0)', [x], 'f32', slope)), slope);
}

/** x^p for a constant p (odd integer powers keep the sign of x, as in torch). */
export const pow = (x: Tensor, p: number): Tensor => unary('pow',
  'select(select(pow(abs(a), p0), -pow(abs(a), p0), a < 0.0 && fract(p0 * 0.5) == 0.5), 1.0, p0 == 0.0)',
  x, (x, _y, g) => mul(g, mul(pow(x, p - 1), p)), p);

// ---- binary, with a tensor or a scalar on either side ----

function binary(name: string, expr: string, a: Tensor, b: Tensor, grads: (a: Tensor, b: Tensor, g: Tensor, y: Tensor) => [Tensor | null, Tensor | null]): Tensor {
  const y = mapElements(name, expr, [a, b]);
  return record(y, name, [a, b], (g) => {
    const [ga, gb] = grads(a, b, g, y);
    return [ga && a.requiresGrad ? sumTo(ga, a.shape) : null, gb && b.requiresGrad ? sumTo(gb, b.shape) : null];
  });
}

function withScalar(name: string, expr: string, x: Tensor, s: number, grad: (g: Tensor) => Tensor): Tensor {
  const y = mapElements(name, expr, [x], 'f32', s);
  return record(y, name, [x], (g) => [grad(g)]);
}

export function add(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return add(b, a);
  if (typeof b === 'number') return withScalar('adds', 'a + p0', a, b, (g) => g);
  return binary('add', 'a + b', a, b, (_a, _b, g) => [g, g]);
}

export function sub(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return rsub(a, b as Tensor);
  if (typeof b === 'number') return withScalar('adds', 'a + p0', a, -b, (g) => g);
  return binary('sub', 'a - b', a, b, (_a, _b, g) => [g, neg(g)]);
}

/** s - x */
export function rsub(s: number, x: Tensor): Tensor {
  return withScalar('rsubs', 'p0 - a', x, s, (g) => neg(g));
}

export function mul(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return mul(b, a);
  if (typeof b === 'number') return withScalar('muls', 'a * p0', a, b, (g) => mul(g, b));
  return binary('mul', 'a * b', a, b, (a, b, g) => [mul(g, b), mul(g, a)]);
}

export function div(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return withScalar('rdivs', 'p0 / a', b as Tensor, a, (g) => neg(div(mul(g, a), square(b as Tensor))));
  if (typeof b === 'number') return withScalar('muls', 'a * p0', a, 1 / b, (g) => mul(g, 1 / b));
  // d(a/b)/db = -a/b^2 = -y/b
  return binary('div', 'a / b', a, b, (_a, b, g, y) => [div(g, b), neg(div(mul(g, y), b))]);
}

/** Elementwise maximum; where equal the gradient goes to a (like torch.maximum's subgradient split
 * is not needed by the model). */
export function maximum(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return withScalar('maxs', 'max(a, p0)', a, b, (g) => mul(g, ge(a, b)));
  return binary('maximum', 'max(a, b)', a, b, (a, b, g) => { const m = ge(a, b); return [mul(g, m), mul(g, rsub(1, m))]; });
}

export function minimum(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return withScalar('mins', 'min(a, p0)', a, b, (g) => mul(g, le(a, b)));
  return binary('minimum', 'min(a, b)', a, b, (a, b, g) => { const m = le(a, b); return [mul(g, m), mul(g, rsub(1, m))]; });
}

export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  const y = mapElements('clamp', 'clamp(a, p0, p1)', [x], 'f32', lo, hi);
  return record(y, 'clamp', [x], (g) => [mul(g, mapElements('inrange', 'select(0.0, 1.0, a >= p0 && a <= p1)', [x], 'f32', lo, hi))]);
}

// ---- comparisons: 1.0 where true, 0.0 elsewhere; no gradient ----

function compare(name: string, op: string, a: Tensor, b: Operand): Tensor {
  return typeof b === 'number'
    ? mapElements(`${name}s`, `select(0.0, 1.0, a ${op} p0)`, [a], 'f32', b)
    : mapElements(name, `select(0.0, 1.0, a ${op} b)`, [a, b]);
}
export const gt = (a: Tensor, b: Operand) => compare('gt', '>', a, b);
export const ge = (a: Tensor, b: Operand) => compare('ge', '>=', a, b);
export const lt = (a: Tensor, b: Operand) => compare('lt', '<', a, b);
export const le = (a: Tensor, b: Operand) => compare('le', '<=', a, b);
export const eq = (a: Tensor, b: Operand) => compare('eq', '==', a, b);
export const ne = (a: Tensor, b: Operand) => compare('ne', '!=', a, b);

/** cond ? a : b, with cond a 0/1 (nonzero = true) mask broadcast against a and b. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const ta = typeof a === 'number' ? full([], a) : a;
  const tb = typeof b === 'number' ? full([], b) : b;
  const y = mapElements('where', 'select(c, b, a != 0.0)', [cond, ta, tb]);
  return record(y, 'where', [ta, tb], (g) => [
    ta.requiresGrad ? sumTo(where(cond, g, 0), ta.shape) : null,
    tb.requiresGrad ? sumTo(where(cond, 0, g), tb.shape) : null,
  ]);
}

// ---- compositions ----

/** log(1 + e^x), stable for large |x|: relu(x) + log(1 + e^-|x|). */
export function softplus(x: Tensor): Tensor {
  return add(relu(x), log(add(exp(neg(abs(x))), 1)));
}

export function tanh(x: Tensor): Tensor {
  return sub(mul(sigmoid(mul(x, 2)), 2), 1);
}

export function lerp(a: Tensor, b: Tensor, t: number): Tensor {
  return add(a, mul(sub(b, a), t));
}
