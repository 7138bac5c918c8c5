// Tensors: a shape and a dtype over a reference-counted pooled GPU buffer. Data is always dense and
// row-major; reshape is a free view of the same storage, every other layout change is an explicit
// copy kernel. Lifetime is deterministic: tensors die by dispose() or at the end of the tidy()
// scope that created them (scope.ts), never by garbage collection.
import { acquireBuffer, releaseBuffer } from './buffer-pool.ts';
import { readback, upload } from './runtime.ts';
import { registerInScope } from './scope.ts';

export type DType = 'f32' | 'i32';

/** A recorded operation: its differentiable inputs and its gradient rule, written with tensor ops. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Given d(output), returns d(input_i) for each input (null where an input needs none). */
  backward: (gradOutput: Tensor) => (Tensor | null)[];
}

class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  requiresGrad = false;
  gradFn: GradNode | null = null;
  /** Accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** Kept tensors survive the tidy() scope they were made in. */
  kept = false;
  private disposed = false;

  private constructor(readonly shape: readonly number[], readonly dtype: DType, private readonly storage: Storage) {
    registerInScope(this);
  }

  /** A new uninitialised tensor. */
  static empty(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    const bytes = Math.max(4, n * 4);
    const buffer = acquireBuffer(bytes, () => `${dtype} tensor [${shape.join(', ')}]`);
    return new Tensor([...shape], dtype, new Storage(buffer, bytes));
  }

  static fromData(data: ArrayLike<number> | Float32Array | Int32Array, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`tensor data has ${data.length} values, shape [${shape.join(', ')}] needs ${n}`);
    const t = Tensor.empty(shape, dtype);
    const typed = dtype === 'f32'
      ? (data instanceof Float32Array ? data : Float32Array.from(data))
      : (data instanceof Int32Array ? data : Int32Array.from(data));
    if (n > 0) upload(t.buffer, typed);
    return t;
  }

  get size(): number {
    return numel(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get buffer(): GPUBuffer {
    if (this.disposed) throw new Error(`tensor [${this.shape.join(', ')}] was used after dispose (keep() what outlives its tidy scope)`);
    return this.storage.buffer;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** A view with another shape over the same storage. */
  view(shape: readonly number[]): Tensor {
    if (numel(shape) !== this.size) throw new Error(`cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    void this.buffer;
    this.storage.refs++;
    return new Tensor([...shape], this.dtype, this.storage);
  }

  keep(): this {
    this.kept = true;
    return this;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (--this.storage.refs === 0) releaseBuffer(this.storage.buffer);
  }

  async data(): Promise<Float32Array | Int32Array> {
    const bytes = await readback(this.buffer, this.size * 4);
    return this.dtype === 'f32' ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  async toFloat32(): Promise<Float32Array> {
    const d = await this.data();
    return d instanceof Float32Array ? d : Float32Array.from(d);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a single element, tensor has shape [${this.shape.join(', ')}]`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(${this.dtype}[${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
