// Deterministic tensor lifetime, like tfjs' tidy(): every tensor made inside a scope is disposed
// when the scope ends, except what the scope returns and what was keep()-ed. Tensors made outside
// any scope live until dispose().
import type { Tensor } from './tensor.ts';

const scopes: Tensor[][] = [];

export function registerInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.push(t);
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value == null || depth > 4) return;
  if (typeof value === 'object' && 'gradFn' in (value as object) && 'shape' in (value as object)) {
    out.add(value as Tensor);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as object)) collect(v, out, depth + 1);
  }
}

function endScope(result: unknown): void {
  const made = scopes.pop()!;
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of made) {
    if (t.kept) continue;
    if (survivors.has(t)) parent?.push(t);
    else t.dispose();
  }
}

/** Runs fn; disposes every tensor it made except the returned ones (arrays, Maps and plain objects
 * of tensors count) and kept ones. Returned tensors move to the enclosing scope. */
export function tidy<T>(fn: () => T): T {
  scopes.push([]);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(undefined);
    throw e;
  }
  if (result instanceof Promise) throw new Error('tidy() takes a synchronous function; await outside it');
  endScope(result);
  return result;
}

/** The async form: fn may await (e.g. read back a loss) between GPU calls. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push([]);
  const depth = scopes.length;
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    while (scopes.length > depth) endScope(undefined);
    endScope(undefined);
    throw e;
  }
  while (scopes.length > depth) endScope(undefined);
  endScope(result);
  return result;
}
