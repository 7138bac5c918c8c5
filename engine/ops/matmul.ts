// Matrix products: matmul with broadcasting over batch dims (numpy/torch semantics, with the
// batch of one operand broadcast by stride 0), and linear = x W^T + b as in torch.nn.Linear.
import { matmulGroups, matmulKernel } from '../../kernels/matmul.ts';
import { record } from '../autograd.ts';
import { dispatch } from '../runtime.ts';
import { Tensor } from '../tensor.ts';
import { add, broadcastShapes } from './elementwise.ts';
import { expand, sumTo } from './reduce.ts';
import { reshape } from './shape.ts';

/** op(A) op(B) for A, B of shape [batch, rows, cols] (batch 1 broadcasts), op = transpose when t. */
function mm(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor {
  const [ba, ra, ca] = a.shape;
  const [bb, rb, cb] = b.shape;
  const m = ta ? ca : ra;
  const k = ta ? ra : ca;
  const kb = tb ? cb : rb;
  const n = tb ? rb : cb;
  if (k !== kb) throw new Error(`matmul: inner sizes differ (${k} vs ${kb}) for [${a.shape.join(', ')}] x [${b.shape.join(', ')}]`);
  if (ba !== bb && ba !== 1 && bb !== 1) throw new Error(`matmul: batch sizes ${ba} and ${bb} do not broadcast`);
  const batch = Math.max(ba, bb);
  const c = Tensor.empty([batch, m, n]);
  if (c.size > 0) {
    const uniforms = new Uint32Array([
      m, n, k, batch, ba === 1 ? 0 : ra * ca, bb === 1 ? 0 : rb * cb,
      ta ? 1 : ca, ta ? ca : 1, tb ? 1 : cb, tb ? cb : 1, 0, 0,
    ]);
    dispatch(matmulKernel, [a.buffer, b.buffer, c.buffer], uniforms, matmulGroups(m, n, batch));
  }
  return record(c, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(ta ? mm(b, g, tb, true) : mm(g, b, false, !tb), a.shape) : null,
    b.requiresGrad ? sumTo(tb ? mm(g, a, true, ta) : mm(a, g, !ta, false), b.shape) : null,
  ]);
}

/** a @ b with torch.matmul's shape rules for rank >= 2 operands (1-D operands are not needed). */
export function matmul(a: Tensor, b: Tensor, options: { transA?: boolean; transB?: boolean } = {}): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error('matmul needs operands of rank >= 2');
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const flat = (t: Tensor) => {
    const tb = t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const mat = t.shape.slice(-2);
    if (tb === batch || tb === 1) return reshape(t, [tb, mat[0], mat[1]]);
    return reshape(expand(t, [...batchShape, mat[0], mat[1]]), [batch, mat[0], mat[1]]);
  };
  const c = mm(flat(a), flat(b), options.transA ?? false, options.transB ?? false);
  return reshape(c, [...batchShape, c.shape[1], c.shape[2]]);
}

/** x [..., in] -> [..., out] with weight [out, in] and optional bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = x.shape[x.rank - 1];
  if (weight.shape[1] !== inF) throw new Error(`linear: input has ${inF} features, weight [${weight.shape.join(', ')}] expects ${weight.shape[1]}`);
  const rows = reshape(x, [1, x.size / inF, inF]);
  const y = mm(rows, reshape(weight, [1, weight.shape[0], inF]), false, true);
  const out = reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
  return bias ? add(out, bias) : out;
}
