// Reverse-mode autodiff with PyTorch's semantics. Ops record a GradNode on their output when
// gradients are enabled and an input requires them. Gradient rules are written with tensor ops, so
// with createGraph the gradient is itself differentiable (R1 needs the gradient of a gradient).
import { Tensor, type GradNode } from './tensor.ts';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording gradients (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

function withGrad<T>(enabled: boolean, fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** Attaches a gradient rule to `out` if any input needs a gradient. Returns `out`. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { op, inputs, backward };
  }
  return out;
}

/** Tensors reachable from `outputs` through recorded ops, outputs last (reverse topological order
 * is the order to propagate in). */
function topoOrder(outputs: Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = outputs.map((t) => [t, false]);
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const input of t.gradFn?.inputs ?? []) if (input.requiresGrad && !seen.has(input)) stack.push([input, false]);
  }
  return order;
}

export interface GradOptions {
  /** d(loss)/d(output) per output; defaults to ones (outputs must then be scalars). */
  gradOutputs?: (Tensor | null)[];
  /** Record the gradient computation so it can be differentiated again. */
  createGraph?: boolean;
  /** Return zeros for inputs the outputs do not depend on (torch returns None). */
  allowUnused?: boolean;
}

type Accumulate = (a: Tensor, b: Tensor) => Tensor;
type Ones = (like: Tensor) => Tensor;
let accumulate: Accumulate;
let onesLike: Ones;
let zerosLike: Ones;

/** ops.ts installs the ops autograd itself needs (add, ones, zeros), keeping the import graph acyclic. */
export function installAutogradOps(ops: { add: Accumulate; onesLike: Ones; zerosLike: Ones }): void {
  accumulate = ops.add;
  onesLike = ops.onesLike;
  zerosLike = ops.zerosLike;
}

/** Gradients of sum(outputs_i * gradOutputs_i) with respect to `inputs`, like torch.autograd.grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], options: GradOptions = {}): Tensor[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  return withGrad(options.createGraph ?? false, () => {
    const grads = new Map<Tensor, Tensor>();
    const add = (t: Tensor, g: Tensor) => {
      const prev = grads.get(t);
      grads.set(t, prev ? accumulate(prev, g) : g);
    };
    outs.forEach((out, i) => {
      if (!out.requiresGrad) throw new Error(`grad: output ${i} does not require grad (no input of it was requiresGrad)`);
      const g = options.gradOutputs?.[i];
      if (!g && out.size !== 1) throw new Error(`grad: output ${i} has shape [${out.shape.join(', ')}]; pass gradOutputs for non-scalar outputs`);
      add(out, g ?? onesLike(out));
    });
    const wanted = new Set(inputs);
    const order = topoOrder(outs);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g || !t.gradFn) continue;
      const inputGrads = t.gradFn.backward(g);
      t.gradFn.inputs.forEach((input, j) => {
        const gi = inputGrads[j];
        if (gi && input.requiresGrad) add(input, gi);
      });
      if (!wanted.has(t)) grads.delete(t);
    }
    return inputs.map((input, i) => {
      const g = grads.get(input);
      if (g) return g;
      if (!options.allowUnused) throw new Error(`grad: input ${i} [${input.shape.join(', ')}] is not used by the outputs (pass allowUnused)`);
      return zerosLike(input);
    });
  });
}

/** Accumulates d(loss)/d(leaf) into leaf.grad for every requiresGrad leaf, like loss.backward(). */
export function backward(loss: Tensor, gradOutput?: Tensor): void {
  const leaves = topoOrder([loss]).filter((t) => t.requiresGrad && !t.gradFn);
  const grads = grad([loss], leaves, { gradOutputs: gradOutput ? [gradOutput] : undefined });
  leaves.forEach((leaf, i) => {
    const old = leaf.grad;
    leaf.grad = (old ? noGrad(() => accumulate(old, grads[i])) : grads[i]).keep();
    if (old) old.dispose();
  });
}
