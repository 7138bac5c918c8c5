// Hand-assembled pickle programs (protocol 2 opcodes, as torch.save writes them) for crafting
// test checkpoints; each function returns the bytes of one expression that leaves one value.
import { concat } from './zip-writer.ts';

type Piece = Uint8Array | string;

/** Opcode characters are written as bytes 0-255 (so '\x80' is the byte 0x80). */
export function pickle(...pieces: Piece[]): Uint8Array {
  return concat(pieces.map((piece) =>
    typeof piece === 'string' ? Uint8Array.from(piece, (char) => char.charCodeAt(0)) : piece));
}

export const program = (value: Piece) => pickle('\x80\x02', value, '.');
export const global = (module: string, name: string) => pickle(`c${module}\n${name}\n`);
export const int = (n: number) => {
  const bytes = new Uint8Array(5);
  bytes[0] = 0x4a; // BININT
  new DataView(bytes.buffer).setInt32(1, n, true);
  return bytes;
};
export const str = (text: string) => {
  const utf8 = new TextEncoder().encode(text);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, utf8.byteLength, true);
  return pickle('X', length, utf8);
};
export const tuple = (...items: Piece[]) => pickle('(', ...items, 't');
export const reduce = (callable: Piece, args: Piece) => pickle(callable, args, 'R');
export const orderedDict = (...entries: [string, Piece][]) =>
  pickle(reduce(global('collections', 'OrderedDict'), ')'), '(', ...entries.flatMap(([key, value]) => [str(key), value]), 'u');
export const dict = (...entries: [string, Piece][]) =>
  pickle('}(', ...entries.flatMap(([key, value]) => [str(key), value]), 'u');

/** _rebuild_tensor_v2 of a storage `data/<key>` of torch.<storageType> holding `count` elements. */
export function tensor(storageType: string, key: string, count: number, offset: Piece, size: number[], stride: number[]) {
  const storage = pickle(tuple(str('storage'), global('torch', storageType), str(key), str('cpu'), int(count)), 'Q');
  const args = tuple(storage, offset, tuple(...size.map(int)), tuple(...stride.map(int)), '\x89', orderedDict());
  return reduce(global('torch._utils', '_rebuild_tensor_v2'), args);
}
