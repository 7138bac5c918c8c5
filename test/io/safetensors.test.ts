import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { float16ToNumber, fromFloat32, numberToFloat16, toFloat32 } from '../../engine/io/host-tensor.ts';
import type { HostTensor } from '../../engine/io/host-tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { throwsCheckpointError } from '../helpers/checkpoint-errors.ts';
import { goldenDir } from '../helpers/golden.ts';

const raw = (dtype: HostTensor['dtype'], shape: number[], array: ArrayBufferView): HostTensor =>
  ({ dtype, shape, data: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) });

/** A file with the given header object (serialised as is) and data bytes. */
function fileWith(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.byteLength);
  return bytes;
}

test('float16 bit patterns decode exactly (subnormals, infinities, NaN)', () => {
  const cases: [number, number][] = [
    [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x3bff, 1 - 2 ** -11],
    [0x7bff, 65504], [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
    [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  for (const [bits, value] of cases) assert.is(float16ToNumber(bits), value, bits.toString(16));
  assert.ok(Object.is(float16ToNumber(0x8000), -0));
  assert.ok(Number.isNaN(float16ToNumber(0x7e00)) && Number.isNaN(float16ToNumber(0xfc01)));
  const halves = toFloat32(raw('F16', [4], Uint16Array.of(0x3c00, 0x0001, 0xfc00, 0x7bff)), 'halves');
  assert.equal([...halves], [1, 2 ** -24, -Infinity, 65504]);
});

test('rounding to float16 is to nearest, ties to even', () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [1 + 2 ** -11, 0x3c00] /* tie: stays even */, [1 + 3 * 2 ** -11, 0x3c02] /* tie: up to even */,
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [-1e9, 0xfc00],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000] /* tie to zero */, [1.5 * 2 ** -25, 0x0001], [2 ** -14 - 2 ** -25, 0x0400],
    [0.1, 0x2e66], [-0, 0x8000], [NaN, 0x7e00], [Infinity, 0x7c00],
  ];
  for (const [value, bits] of cases) assert.is(numberToFloat16(value), bits, String(value));
  const f16 = fromFloat32([2], Float32Array.of(1, -2), 'F16');
  assert.equal([...new Uint16Array(f16.data.buffer)], [0x3c00, 0xc000]);
});

test('bfloat16, float64, int64 and int32 convert to float32', () => {
  assert.equal([...toFloat32(raw('BF16', [2], Uint16Array.of(0x3f80, 0xc049)), 'bf16')], [1, -3.140625]);
  assert.equal([...toFloat32(raw('F64', [2], Float64Array.of(0.5, 1 / 3)), 'f64')], [0.5, Math.fround(1 / 3)]);
  assert.equal([...toFloat32(raw('I64', [2], BigInt64Array.of(-5n, 1n << 40n)), 'i64')], [-5, 2 ** 40]);
  assert.equal([...toFloat32(raw('I32', [2], Int32Array.of(-7, 9)), 'i32')], [-7, 9]);
  // Data at an odd byte offset, as a subarray of a file may be.
  const unaligned = new Uint8Array(9);
  unaligned.set(new Uint8Array(Float32Array.of(1.5, -2).buffer), 1);
  assert.equal([...toFloat32({ dtype: 'F32', shape: [2], data: unaligned.subarray(1) }, 'odd')], [1.5, -2]);
  throwsCheckpointError(() => toFloat32(raw('F32', [3], Float32Array.of(1, 2)), 'short'), /^short: /, /8 bytes, expected 12/);
});

test('serialize then parse round-trips tensors, order and metadata', () => {
  const tensors: [string, HostTensor][] = [
    ['b.weight', fromFloat32([2, 3], Float32Array.of(1, 2, 3, 4, 5, 6))],
    ['a.half', raw('F16', [3], Uint16Array.of(0x3c00, 0x0001, 0x7c00))],
    ['steps', raw('I64', [], BigInt64Array.of(123456789n))],
    ['mask', raw('BOOL', [2], Uint8Array.of(1, 0))],
    ['empty', raw('F32', [0, 4], new Float32Array(0))],
    ['pixels', raw('U8', [1], Uint8Array.of(255))],
  ];
  const bytes = serializeSafetensors(tensors, { config: 'gram_small', note: 'x' });
  // The layout, read independently: length, space-padded JSON, data in the given order.
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLength % 8, 0);
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  assert.match(headerText, /^\{.*\} *$/);
  const header = JSON.parse(headerText);
  assert.equal(header.__metadata__, { config: 'gram_small', note: 'x' });
  assert.equal(header['b.weight'], { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  assert.equal(header['a.half'].data_offsets, [24, 30]);
  assert.is(bytes.byteLength, 8 + headerLength + 24 + 6 + 8 + 2 + 0 + 1);

  const parsed = parseSafetensors(bytes, 'round.safetensors');
  assert.equal(parsed.metadata, { config: 'gram_small', note: 'x' });
  assert.equal([...parsed.tensors.keys()], tensors.map(([name]) => name));
  for (const [name, t] of tensors) {
    const back = parsed.tensors.get(name)!;
    assert.is(back.dtype, t.dtype, name);
    assert.equal(back.shape, t.shape, name);
    assert.equal([...back.data], [...t.data], name);
  }
  assert.equal(parseSafetensors(serializeSafetensors(new Map()), 'none').tensors.size, 0);
});

test('the golden files parse, and re-serialising them keeps every tensor', () => {
  const name = 'gram_small.safetensors';
  const golden = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, name))), name);
  assert.ok(golden.tensors.has('param/representation.sample_network.network.0.weight'));
  assert.ok(typeof golden.metadata.config === 'string');
  const again = parseSafetensors(serializeSafetensors(golden.tensors, golden.metadata), 'again');
  assert.equal([...again.tensors.keys()], [...golden.tensors.keys()]);
  for (const [key, t] of golden.tensors) assert.equal(again.tensors.get(key)!.data, t.data, key);
});

test('truncated files are reported with the file name', () => {
  const bytes = serializeSafetensors([['w', fromFloat32([4], Float32Array.of(1, 2, 3, 4))]]);
  const headerEnd = bytes.byteLength - 16;
  throwsCheckpointError(() => parseSafetensors(bytes.subarray(0, 5), 'cut.safetensors'), /^cut\.safetensors: /, /5 bytes/, /8-byte/);
  throwsCheckpointError(() => parseSafetensors(bytes.subarray(0, 20), 'cut.safetensors'), /^cut\.safetensors: /, /header length/, /past the end/);
  throwsCheckpointError(() => parseSafetensors(bytes.subarray(0, headerEnd + 7), 'cut.safetensors'),
    /^cut\.safetensors: /, /tensor 'w'/, /truncated/);
  throwsCheckpointError(() => parseSafetensors(bytes.subarray(0, headerEnd), 'cut.safetensors'), /^cut\.safetensors: /, /truncated/);
});

test('a header length overflow, bad JSON, unknown dtypes and bad offsets are reported', () => {
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
  throwsCheckpointError(() => parseSafetensors(huge, 'huge.st'), /^huge\.st: /, /header length 18446744073709551615/);
  const notJson = fileWith({});
  notJson[9] = 0x7b; // '{{'
  throwsCheckpointError(() => parseSafetensors(notJson, 'json.st'), /^json\.st: /, /not valid UTF-8 JSON/);
  throwsCheckpointError(() => parseSafetensors(fileWith([1, 2]), 'array.st'), /^array\.st: /, /not a JSON object/);
  const data = new Uint8Array(16);
  throwsCheckpointError(() => parseSafetensors(fileWith({ w: { dtype: 'F8', shape: [2], data_offsets: [0, 2] } }, data), 'dtype.st'),
    /^dtype\.st: /, /tensor 'w'/, /unknown dtype "F8"/, /F32/);
  throwsCheckpointError(() => parseSafetensors(fileWith({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), 'size.st'),
    /^size\.st: /, /span 8 bytes/, /needs 12/);
  throwsCheckpointError(() => parseSafetensors(fileWith({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, data), 'order.st'),
    /^order\.st: /, /data_offsets \[8,4\]/);
  throwsCheckpointError(() => parseSafetensors(fileWith({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, data), 'shape.st'),
    /^shape\.st: /, /shape \[-1\]/);
  throwsCheckpointError(() => parseSafetensors(fileWith({
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  }, data), 'overlap.st'), /^overlap\.st: /, /'a'.*'b'.*overlap/);
  throwsCheckpointError(() => parseSafetensors(fileWith({ __metadata__: { n: 1 } }), 'meta.st'), /^meta\.st: /, /__metadata__/);
});

test.run();
