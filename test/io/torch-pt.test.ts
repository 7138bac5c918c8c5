import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { parseTorchPt } from '../../engine/io/torch-pt.ts';
import { throwsCheckpointError } from '../helpers/checkpoint-errors.ts';
import { goldenDir } from '../helpers/golden.ts';
import { dict, global, int, orderedDict, pickle, program, reduce, str, tensor, tuple } from '../helpers/pickle-writer.ts';
import { writeZip } from '../helpers/zip-writer.ts';
import type { ZipMember } from '../helpers/zip-writer.ts';

const read = (name: string) => new Uint8Array(readFileSync(join(goldenDir, name)));

const bytesOf = (array: Float32Array | Uint16Array | BigInt64Array) => new Uint8Array(array.buffer);

/** A torch.save-style archive `ckpt/` with data.pkl and the given storages. */
function checkpoint(pickleProgram: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: ZipMember[] = []) {
  return writeZip([
    { name: 'ckpt/data.pkl', data: pickleProgram },
    ...Object.entries(storages).map(([key, data]) => ({ name: `ckpt/data/${key}`, data })),
    { name: 'ckpt/version', data: new TextEncoder().encode('3\n') },
    ...extra,
  ]);
}

for (const model of ['gram_small', 'gramhd_small']) {
  test(`${model}.pt equals the param/* tensors of ${model}.safetensors bit for bit`, () => {
    const tensors = parseTorchPt(read(`${model}.pt`), `${model}.pt`);
    const truth = parseSafetensors(read(`${model}.safetensors`), `${model}.safetensors`).tensors;
    const truthKeys = [...truth.keys()].filter((key) => key.startsWith('param/')).map((key) => key.slice(6));
    assert.equal([...tensors.keys()].sort(), truthKeys.sort());
    for (const [key, t] of tensors) {
      const expected = truth.get(`param/${key}`)!;
      assert.is(t.dtype, 'F32', key);
      assert.equal(t.shape, expected.shape, key);
      assert.equal(new Uint32Array(toFloat32(t, key).buffer), new Uint32Array(toFloat32(expected, key).buffer), key);
    }
  });
}

test('strided, offset, half, int64 tensors and parameters are rebuilt row-major', () => {
  const floats = Float32Array.of(0, 1, 2, 3, 4, 5);
  const halves = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001); // 1, -2, 65504, 2^-24
  const longs = BigInt64Array.of(7n, -3n, 1n << 40n);
  const long1Offset = pickle('\x8a\x01\x01'); // LONG1 holding the integer 1
  const bytes = checkpoint(program(orderedDict(
    // size (3, 2), stride (1, 3): the transpose of the 2x3 matrix [[0, 1, 2], [3, 4, 5]].
    ['transposed', tensor('FloatStorage', '0', 6, int(0), [3, 2], [1, 3])],
    ['row', tensor('FloatStorage', '0', 6, int(3), [3], [1])],
    ['half', tensor('HalfStorage', '1', 4, long1Offset, [3], [1])],
    ['steps', tensor('LongStorage', '2', 3, int(0), [3], [1])],
    ['scalar', tensor('FloatStorage', '0', 6, int(5), [], [])],
    ['param', reduce(global('torch._utils', '_rebuild_parameter'),
      tuple(tensor('FloatStorage', '0', 6, int(0), [2, 3], [3, 1]), '\x88', orderedDict()))],
  )), { 0: bytesOf(floats), 1: bytesOf(halves), 2: bytesOf(longs) });
  const tensors = parseTorchPt(bytes, 'crafted.pt');
  assert.equal([...tensors.keys()], ['transposed', 'row', 'half', 'steps', 'scalar', 'param']);
  const values = (key: string) => [...toFloat32(tensors.get(key)!, key)];
  assert.equal(tensors.get('transposed')!.shape, [3, 2]);
  assert.equal(values('transposed'), [0, 3, 1, 4, 2, 5]);
  assert.equal(values('row'), [3, 4, 5]);
  assert.is(tensors.get('half')!.dtype, 'F16');
  assert.equal(values('half'), [-2, 65504, 2 ** -24]);
  assert.is(tensors.get('steps')!.dtype, 'I64');
  assert.equal(values('steps'), [7, -3, 2 ** 40]);
  assert.equal(tensors.get('scalar')!.shape, []);
  assert.equal(values('scalar'), [5]);
  assert.equal(values('param'), [0, 1, 2, 3, 4, 5]);
});

test('a dict nesting state_dicts gives keys joined with "/"; other values are skipped', () => {
  const floats = Float32Array.of(1, 2);
  const bytes = checkpoint(program(dict(
    ['state_dict', orderedDict(['layer.weight', tensor('FloatStorage', '0', 2, int(0), [2], [1])])],
    ['ema', dict(['layer.weight', tensor('FloatStorage', '0', 2, int(1), [1], [1])])],
    ['epoch', int(12)],
  )), { 0: bytesOf(floats) });
  const tensors = parseTorchPt(bytes, 'nested.pt');
  assert.equal([...tensors.keys()], ['state_dict/layer.weight', 'ema/layer.weight']);
  assert.equal([...toFloat32(tensors.get('ema/layer.weight')!, 'ema')], [2]);
});

test('a GLOBAL outside the state_dict whitelist is refused by name', () => {
  const evil = program(reduce(global('builtins', 'eval'), tuple(str('1 + 1'))));
  throwsCheckpointError(() => parseTorchPt(checkpoint(evil), 'evil.pt'), /^evil\.pt: /, /builtins\.eval/);
  const model = program(reduce(global('models.gram', 'Generator'), ')'));
  throwsCheckpointError(() => parseTorchPt(checkpoint(model), 'model.pt'), /^model\.pt: /, /models\.gram\.Generator/);
  const complex = program(orderedDict(['w', tensor('ComplexFloatStorage', '0', 1, int(0), [1], [1])]));
  throwsCheckpointError(() => parseTorchPt(checkpoint(complex, { 0: new Uint8Array(8) }), 'complex.pt'),
    /^complex\.pt: /, /torch\.ComplexFloatStorage/);
});

test('truncated archives, a missing data.pkl and missing or short storages are reported', () => {
  const golden = read('gram_small.pt');
  throwsCheckpointError(() => parseTorchPt(golden.subarray(0, golden.byteLength >> 1), 'half.pt'), /^half\.pt: /, /truncated/);
  throwsCheckpointError(() => parseTorchPt(golden.subarray(0, golden.byteLength - 30), 'cut.pt'), /^cut\.pt: /, /truncated/);
  throwsCheckpointError(() => parseTorchPt(new Uint8Array(0), 'empty.pt'), /^empty\.pt: /, /truncated|not a ZIP/);
  const noPickle = writeZip([{ name: 'ckpt/data/0', data: new Uint8Array(4) }, { name: 'ckpt/version', data: new Uint8Array(2) }]);
  throwsCheckpointError(() => parseTorchPt(noPickle, 'nopkl.pt'), /^nopkl\.pt: /, /data\.pkl/);

  const oneTensor = program(orderedDict(['w', tensor('FloatStorage', '0', 3, int(0), [3], [1])]));
  throwsCheckpointError(() => parseTorchPt(checkpoint(oneTensor), 'nostorage.pt'), /^nostorage\.pt: /, /ckpt\/data\/0/, /missing/);
  throwsCheckpointError(() => parseTorchPt(checkpoint(oneTensor, { 0: new Uint8Array(8) }), 'short.pt'),
    /^short\.pt: /, /storage '0' has 8 bytes/);
  const pastEnd = program(orderedDict(['w', tensor('FloatStorage', '0', 2, int(1), [2], [1])]));
  throwsCheckpointError(() => parseTorchPt(checkpoint(pastEnd, { 0: new Uint8Array(8) }), 'offset.pt'),
    /^offset\.pt: /, /storage '0'/);
  throwsCheckpointError(() => parseTorchPt(checkpoint(program(orderedDict(['w', int(1)]))), 'notensors.pt'),
    /^notensors\.pt: /, /no tensors/);
  throwsCheckpointError(() => parseTorchPt(checkpoint(pickle('\x80\x02}(')), 'shortpkl.pt'),
    /^shortpkl\.pt: ckpt\/data\.pkl: /, /ends early/);
});

test('compressed entries and the legacy format are refused clearly', () => {
  const oneTensor = program(orderedDict(['w', tensor('FloatStorage', '0', 1, int(0), [1], [1])]));
  const deflated = writeZip([{ name: 'ckpt/data.pkl', data: oneTensor, method: 8 }]);
  throwsCheckpointError(() => parseTorchPt(deflated, 'zipped.pt'), /^zipped\.pt: /, /DEFLATE/, /ckpt\/data\.pkl/);
  throwsCheckpointError(() => parseTorchPt(oneTensor, 'legacy.pt'), /^legacy\.pt: /, /legacy/);
});

test.run();
