// A small pickle virtual machine: the opcodes of protocols 2 to 4 that torch.save emits for
// state_dicts. Python values become JS values (str: string, int: number, float: number,
// bool: boolean, None: null, tuple and list: array, dict: Map); anything a GLOBAL names is
// whatever the caller's `findGlobal` returns, so the caller decides which classes may be built.
import { CheckpointError } from './host-tensor.ts';

/** What the caller supplies to give GLOBALs and persistent ids their meaning. */
export interface PickleHooks {
  /** The value of `module.name`; throws for anything it does not allow. */
  findGlobal(module: string, name: string): unknown;
  /** The object a persistent id (BINPERSID) stands for. */
  persistentLoad(pid: unknown): unknown;
}

/** A Python callable as REDUCE and NEWOBJ call it. */
export type PyCallable = (...args: unknown[]) => unknown;

const MARK = Symbol('mark');

/** Runs the pickle program in `bytes` and returns the value STOP leaves; `where` prefixes errors. */
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, where: string): unknown {
  const fail: (problem: string) => never = (problem) => { throw new CheckpointError(`${where}: ${problem}`); };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let position = 0;

  const take = (length: number): number => {
    if (position + length > bytes.byteLength) fail(`pickle ends early at byte ${bytes.byteLength}`);
    const at = position;
    position += length;
    return at;
  };
  const pop = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail(`pickle stack underflow at byte ${position}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`pickle stack underflow at byte ${position}`);
    return stack[stack.length - 1];
  };
  const popToMark = (): unknown[] => {
    const mark = stack.lastIndexOf(MARK);
    if (mark < 0) fail(`pickle MARK missing at byte ${position}`);
    return stack.splice(mark).slice(1);
  };
  const string = (length: number) => text.decode(bytes.subarray(take(length), position));
  const line = (): string => {
    const newline = bytes.indexOf(0x0a, position);
    if (newline < 0) fail(`pickle ends early at byte ${bytes.byteLength}`);
    return string(newline - position + 1).slice(0, -1);
  };
  const call = (callable: unknown, args: unknown): unknown => {
    if (typeof callable !== 'function' || !Array.isArray(args)) fail(`cannot call a non-callable at byte ${position}`);
    return (callable as PyCallable)(...(args as unknown[]));
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) fail(`SETITEM on a non-dict at byte ${position}`);
    for (let i = 0; i + 1 < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target)) fail(`APPEND on a non-list at byte ${position}`);
    (target as unknown[]).push(...items);
  };

  for (;;) {
    const opcode = bytes[take(1)]!;
    switch (opcode) {
      case 0x80: take(1); break; // PROTO
      case 0x95: take(8); break; // FRAME: a length hint only
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popToMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(view.getUint8(take(1))); break; // BININT1
      case 0x4d: stack.push(view.getUint16(take(2), true)); break; // BININT2
      case 0x4a: stack.push(view.getInt32(take(4), true)); break; // BININT
      case 0x8a: stack.push(long(bytes.subarray(take(view.getUint8(take(1))), position), where)); break; // LONG1
      case 0x47: stack.push(view.getFloat64(take(8), false)); break; // BINFLOAT (big-endian)
      case 0x8c: stack.push(string(view.getUint8(take(1)))); break; // SHORT_BINUNICODE
      case 0x58: stack.push(string(view.getUint32(take(4), true))); break; // BINUNICODE
      case 0x8d: stack.push(string(Number(view.getBigUint64(take(8), true)))); break; // BINUNICODE8
      case 0x55: stack.push(string(view.getUint8(take(1)))); break; // SHORT_BINSTRING
      case 0x54: stack.push(string(view.getInt32(take(4), true))); break; // BINSTRING
      case 0x43: { const n = view.getUint8(take(1)); stack.push(bytes.slice(take(n), position)); break; } // SHORT_BINBYTES
      case 0x42: { const n = view.getUint32(take(4), true); stack.push(bytes.slice(take(n), position)); break; } // BINBYTES
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popToMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popToMark()); break; // LIST
      case 0x64: { const map = new Map(); setItems(map, popToMark()); stack.push(map); break; } // DICT
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popToMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popToMark(); append(top(), items); break; } // APPENDS
      case 0x71: memo.set(view.getUint8(take(1)), top()); break; // BINPUT
      case 0x72: memo.set(view.getUint32(take(4), true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(recall(memo, view.getUint8(take(1)), fail)); break; // BINGET
      case 0x6a: stack.push(recall(memo, view.getUint32(take(4), true), fail)); break; // LONG_BINGET
      case 0x63: { const module = line(); stack.push(hooks.findGlobal(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); // STACK_GLOBAL
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL needs two strings at byte ${position}`);
        stack.push(hooks.findGlobal(module as string, name as string)); break; }
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ: cls.__new__(cls, *args)
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x62: { // BUILD
        pop(); // The state of a dict subclass is its instance __dict__ (OrderedDict's _metadata), not items.
        if (!(top() instanceof Map)) fail(`BUILD (__setstate__) on a non-dict object at byte ${position}`);
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${opcode.toString(16).padStart(2, '0')} at byte ${position - 1}`);
    }
  }
}

function recall(memo: Map<number, unknown>, index: number, fail: (problem: string) => never): unknown {
  if (!memo.has(index)) fail(`pickle memo ${index} is read before it is written`);
  return memo.get(index);
}

/** LONG1: a little-endian two's-complement integer, which must fit a float64 exactly. */
function long(digits: Uint8Array, where: string): number {
  let value = 0n;
  for (let i = digits.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(digits[i]!);
  if (digits.length > 0 && digits[digits.length - 1]! & 0x80) value -= 1n << BigInt(8 * digits.length);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CheckpointError(`${where}: pickle integer ${value} is too large`);
  }
  return Number(value);
}
