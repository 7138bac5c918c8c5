// Reading `torch.save(state_dict)` files (the ZIP format of torch >= 1.6): `<archive>/data.pkl`
// is a pickle whose tensors point, through persistent ids, at raw storages `<archive>/data/<key>`.
// Only the globals a state_dict needs are allowed, so a checkpoint cannot run arbitrary code.
import { CheckpointError, dtypeBytes, numel } from './host-tensor.ts';
import type { DType, HostTensor } from './host-tensor.ts';
import { unpickle } from './pickle.ts';
import type { PyCallable } from './pickle.ts';
import { readZip, storedBytes } from './zip.ts';

const storageDTypes: Record<string, DType> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', DoubleStorage: 'F64',
  LongStorage: 'I64', IntStorage: 'I32', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

/** A storage type named by a GLOBAL such as `torch.FloatStorage`. */
interface StorageType { storageDType: DType }
interface Storage { key: string; dtype: DType; bytes: Uint8Array }

/**
 * The tensors of a torch.save'd state_dict by key. A dict nesting dicts of tensors (such as
 * `{'state_dict': ...}`) gives keys joined with '/'; values that are neither are skipped.
 */
export function parseTorchPt(bytes: Uint8Array, fileName: string): Map<string, HostTensor> {
  const fail: (problem: string) => never = (problem) => { throw new CheckpointError(`${fileName}: ${problem}`); };
  if (bytes[0] === 0x80) fail('legacy torch.save format (torch < 1.6) is not supported; re-save it with a newer torch');
  const entries = readZip(bytes, fileName);
  const pickleName = [...entries.keys()].find((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickleName === undefined) {
    fail(`no <archive>/data.pkl in the ZIP archive (it holds ${[...entries.keys()].slice(0, 5).join(', ') || 'nothing'}): not a torch.save checkpoint`);
  }
  const archive = pickleName.slice(0, -'/data.pkl'.length);
  const where = `${fileName}: ${pickleName}`;
  const storages = new Map<string, Storage>();
  const tensors = new WeakSet<HostTensor>();

  const loadStorage = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) fail(`unsupported persistent id ${describe(pid)}`);
    const [, type, key, , count] = pid as [string, StorageType, unknown, unknown, unknown];
    if (typeof type?.storageDType !== 'string' || typeof key !== 'string' || typeof count !== 'number') {
      fail(`malformed storage persistent id ${describe(pid)}`);
    }
    const cached = storages.get(key);
    if (cached) return cached;
    const entry = entries.get(`${archive}/data/${key}`);
    if (entry === undefined) fail(`storage record '${archive}/data/${key}' is missing from the archive`);
    const dtype = type.storageDType;
    const storage = { key, dtype, bytes: storedBytes(entry, fileName) };
    const needed = count * dtypeBytes[dtype];
    if (storage.bytes.byteLength < needed) {
      fail(`storage '${key}' has ${storage.bytes.byteLength} bytes, but ${count} ${dtype} elements need ${needed}`);
    }
    storages.set(storage.key, storage);
    return storage;
  };

  // torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  const rebuildTensor = (storage: unknown, offset: unknown, size: unknown, stride: unknown): HostTensor => {
    const s = storage as Storage;
    if (!(s?.bytes instanceof Uint8Array) || typeof offset !== 'number' || !isIntegers(size) || !isIntegers(stride) || size.length !== stride.length) {
      fail(`_rebuild_tensor_v2 called with unexpected arguments (${describe(size)}, ${describe(stride)})`);
    }
    const tensor = { dtype: s.dtype, shape: [...size], data: gather(s, offset, size, stride, fail) };
    tensors.add(tensor);
    return tensor;
  };

  const allowed: Record<string, unknown> = {
    'collections.OrderedDict': (() => new Map()) satisfies PyCallable,
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its data here.
    'torch._utils._rebuild_parameter': ((data: unknown) => data) satisfies PyCallable,
  };
  const root = unpickle(storedBytes(entries.get(pickleName)!, fileName), {
    findGlobal(module, name) {
      const qualified = `${module}.${name}`;
      if (Object.hasOwn(allowed, qualified)) return allowed[qualified];
      if (module === 'torch' && name.endsWith('Storage')) {
        if (!Object.hasOwn(storageDTypes, name)) fail(`unsupported storage type torch.${name} (supported: ${Object.keys(storageDTypes).join(', ')})`);
        return { storageDType: storageDTypes[name] } satisfies StorageType;
      }
      return fail(`data.pkl refers to ${qualified}, which a state_dict of tensors does not need; refusing to load it (save model.state_dict(), not the model)`);
    },
    persistentLoad: loadStorage,
  }, where);

  const result = new Map<string, HostTensor>();
  const collect = (value: unknown, prefix: string) => {
    if (!(value instanceof Map)) fail(`data.pkl holds ${describe(value)}, not a dict of tensors`);
    for (const [key, item] of value as Map<unknown, unknown>) {
      const path = prefix + String(key);
      if (tensors.has(item as HostTensor)) result.set(path, item as HostTensor);
      else if (item instanceof Map) collect(item, `${path}/`);
    }
  };
  collect(root, '');
  if (result.size === 0) fail('data.pkl holds no tensors');
  return result;
}

/** The tensor's elements in row-major order: a view of the storage when contiguous, else a copy. */
function gather(storage: Storage, offset: number, size: number[], stride: number[], fail: (problem: string) => never): Uint8Array {
  const itemBytes = dtypeBytes[storage.dtype];
  const count = numel(size);
  if (count === 0) return new Uint8Array(0);
  const last = size.reduce((sum, n, axis) => sum + (n - 1) * stride[axis]!, offset);
  const available = storage.bytes.byteLength / itemBytes;
  if (offset < 0 || last >= available) {
    fail(`a tensor of shape [${size}] at offset ${offset} with strides [${stride}] needs storage '${storage.key}' elements up to ${last}, but it holds ${available}`);
  }
  let contiguous = true;
  for (let axis = size.length - 1, expected = 1; axis >= 0; expected *= size[axis]!, axis--) {
    if (size[axis]! > 1 && stride[axis] !== expected) contiguous = false;
  }
  if (contiguous) return storage.bytes.subarray(offset * itemBytes, (offset + count) * itemBytes);
  const out = new Uint8Array(count * itemBytes);
  const index = new Array<number>(size.length).fill(0);
  for (let element = 0, source = offset; element < count; element++) {
    out.set(storage.bytes.subarray(source * itemBytes, (source + 1) * itemBytes), element * itemBytes);
    // Advance the multi-index like an odometer, keeping `source` = offset + sum(index * stride).
    for (let axis = size.length - 1; axis >= 0; axis--) {
      source += stride[axis]!;
      if (++index[axis]! < size[axis]!) break;
      source -= stride[axis]! * size[axis]!;
      index[axis] = 0;
    }
  }
  return out;
}

function isIntegers(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((n) => Number.isSafeInteger(n) && n >= 0);
}

function describe(value: unknown): string {
  if (value instanceof Map) return 'a dict';
  if (Array.isArray(value)) return `(${value.map(describe).join(', ')})`;
  if (typeof value === 'object' && value !== null) return 'an object';
  return JSON.stringify(value) ?? String(value);
}
