// Modules with PyTorch's state_dict naming. A module is a plain class whose fields are its state:
// parameters, buffers, submodules and arrays of either (an array plays torch's ModuleList /
// ParameterList and names its entries "0", "1", ...). A key is the field path,
// `network.3.layer.weight`. Fields are found by walking the object's own fields in the order they
// are declared (a field declared without an initialiser still takes its place at declaration), so
// declaring fields in the order the authors' __init__ assigns them reproduces their key order.
import { Tensor } from '../tensor.ts';
import { assign } from './assign.ts';

const parameterTensors = new WeakSet<Tensor>();
const bufferTensors = new WeakSet<Tensor>();

/** Marks `t` as a trainable parameter: kept (it outlives any tidy scope) and requiring gradients. */
export function parameter(t: Tensor): Tensor {
  t.keep();
  t.requiresGrad = true;
  parameterTensors.add(t);
  return t;
}

/** Marks `t` as persistent non-trainable state (torch's register_buffer): kept, saved in state dicts. */
export function buffer(t: Tensor): Tensor {
  t.keep();
  bufferTensors.add(t);
  return t;
}

/** A checkpoint value: a tensor on the GPU, or host values with their shape. */
export type StateValue = Tensor | { shape: readonly number[]; data: Float32Array };

export interface LoadOptions {
  /** Require the keys to match exactly (default true). Shapes must match either way, as in torch. */
  strict?: boolean;
}

interface Members {
  parameters: [string, Tensor][];
  buffers: [string, Tensor][];
  children: [string, Module | readonly unknown[]][];
}

/** Sorts named values into parameters, buffers and child containers; plain tensors, numbers and
 * other values are not state. */
function classify(entries: [string, unknown][]): Members {
  const m: Members = { parameters: [], buffers: [], children: [] };
  for (const [name, value] of entries) {
    if (value instanceof Tensor) {
      if (parameterTensors.has(value)) m.parameters.push([name, value]);
      else if (bufferTensors.has(value)) m.buffers.push([name, value]);
    } else if (value instanceof Module || Array.isArray(value)) {
      m.children.push([name, value]);
    }
  }
  return m;
}

/** Every state tensor under `node` in torch's state_dict order: a module's own parameters, then its
 * own buffers, then each child's, depth first. */
function* walk(node: Module | readonly unknown[], prefix: string): Generator<{ key: string; tensor: Tensor; isParameter: boolean }> {
  const m = classify(node instanceof Module ? node.stateFields() : node.map((v, i): [string, unknown] => [String(i), v]));
  for (const [name, tensor] of m.parameters) yield { key: prefix + name, tensor, isParameter: true };
  for (const [name, tensor] of m.buffers) yield { key: prefix + name, tensor, isParameter: false };
  for (const [name, child] of m.children) yield* walk(child, `${prefix}${name}.`);
}

const shapeText = (shape: readonly number[]) => `[${shape.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((s, d) => s === b[d]);

export class Module {
  /** The named fields that may hold state, in state_dict order. Containers whose children are not
   * fields (Sequential) override this. */
  stateFields(): [string, unknown][] {
    return Object.entries(this);
  }

  /** Parameters with their keys; a parameter reachable under two names is listed once, under the
   * first (like torch's named_parameters). */
  namedParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const { key, tensor, isParameter } of walk(this, '')) {
      if (isParameter && !seen.has(tensor)) {
        seen.add(tensor);
        out.push([key, tensor]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters and buffers by key, in torch's order. The tensors are the module's own (not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...walk(this, '')].map(({ key, tensor }) => [key, tensor]));
  }

  /** Copies checkpoint values into the module's tensors in place. Every problem is reported at once,
   * by key, before anything is copied. Returns the keys that strict=false let through. */
  loadStateDict(source: Map<string, StateValue>, options: LoadOptions = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !source.has(k));
    const unexpectedKeys = [...source.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    const malformed: string[] = [];
    for (const [key, tensor] of own) {
      const value = source.get(key);
      if (!value) continue;
      if (!sameShape(value.shape, tensor.shape)) {
        mismatches.push(`${key}: checkpoint ${shapeText(value.shape)} vs model ${shapeText(tensor.shape)}`);
      } else if (!(value instanceof Tensor) && value.data.length !== tensor.size) {
        malformed.push(`${key}: ${value.data.length} values for ${shapeText(value.shape)}`);
      }
    }
    const problems: string[] = [];
    if (options.strict ?? true) {
      if (missingKeys.length) problems.push(`missing keys ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) problems.push(`unexpected keys ${unexpectedKeys.join(', ')}`);
    }
    if (mismatches.length) problems.push(`shape mismatch ${mismatches.join(', ')}`);
    if (malformed.length) problems.push(`wrong value count ${malformed.join(', ')}`);
    if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
    for (const [key, tensor] of own) {
      const value = source.get(key);
      if (value) assign(tensor, value instanceof Tensor ? value : value.data);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Sets requiresGrad on every parameter (torch's requires_grad_); returns the module. */
  setRequiresGrad(requiresGrad: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = requiresGrad;
    return this;
  }
}

/** Stops gradients to every parameter of `module`; its parameters still appear in parameters()
 * and the state dict. */
export function freeze<M extends Module>(module: M): M {
  return module.setRequiresGrad(false);
}
