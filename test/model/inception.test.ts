import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../helpers/gpu.ts';
import { Tensor, tidyAsync } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { hashedInceptionState, hashUniform } from '../../model/inception-hash-weights.ts';
import { INCEPTION_FEATURES, InceptionV3, inceptionStateShapes, resizeBilinearTf1, tf1ResizeMatrix } from '../../model/inception.ts';
import { assertClose, numel, randomArray, relError } from '../helpers/reference.ts';
import { goldenDir } from '../helpers/golden.ts';

const evalDir = join(goldenDir, 'eval');
const manifest = JSON.parse(readFileSync(join(evalDir, 'manifest.json'), 'utf8'));

/** torch-fidelity's interpolate_bilinear_2d_like_tensorflow1x ('slow' method) in float64, as it
 * reads: gather the four neighbours, lerp along x, then along y. */
function tf1ResizeCpu(x: Float64Array, shape: number[], ho: number, wo: number): Float64Array {
  const [n, c, h, w] = shape;
  const axis = (inSize: number, outSize: number) => {
    const scale = Math.fround(inSize / outSize);
    return Array.from({ length: outSize }, (_, i) => {
      const src = i * scale;
      const lo = Math.trunc(src);
      return { lo, hi: Math.min(lo + 1, inSize - 1), d: src - lo };
    });
  };
  const ax = axis(w, wo);
  const ay = axis(h, ho);
  const out = new Float64Array(n * c * ho * wo);
  for (let p = 0; p < n * c; p++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    const at = (r: number, q: number) => x[(p * h + r) * w + q];
    const { lo: y0, hi: y1, d: dy } = ay[i];
    const { lo: x0, hi: x1, d: dx } = ax[j];
    const top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * dx;
    const bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * dx;
    out[(p * ho + i) * wo + j] = top + (bottom - top) * dy;
  }
  return out;
}

test('the counter hash matches the README formula on hand-checked values', () => {
  // k = 0, i = 0: h = 0x85EBCA77, then the xor-shift-multiply rounds, computed by hand in BigInt
  const ref = (k: number, i: number) => {
    const m = (a: bigint, b: bigint) => (a * b) & 0xffffffffn;
    let h = (m(BigInt(i), 0x9e3779b1n) + m(BigInt(k + 1), 0x85ebca77n)) & 0xffffffffn;
    h ^= h >> 15n; h = m(h, 0x2c1b3c6dn);
    h ^= h >> 12n; h = m(h, 0x297a2d39n);
    h ^= h >> 15n;
    return Number(h) / 2 ** 32;
  };
  for (const [k, i] of [[0, 0], [0, 1], [5, 123456], [565, 2064383], [17, 4294967295]]) assert.is(hashUniform(k, i), ref(k, i), `k=${k} i=${i}`);
});

test('hashed weights: state_dict order, shapes and checksums of the manifest', () => {
  const config = manifest.inception.config;
  const state = hashedInceptionState();
  assert.equal([...state.keys()], config.state_dict_order);
  assert.equal([...inceptionStateShapes().keys()], config.state_dict_order);
  for (const [key, value] of state) {
    assert.equal([...value.shape], config.shapes[key], key);
    let sum = 0;
    for (let i = 0; i < value.data.length; i++) sum += value.data[i];
    const expected = config.checksums[key];
    assert.ok(Math.abs(sum - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${key}: sum ${sum} vs ${expected}`);
  }
  const first = config.state_dict_order[0];
  assert.equal(Array.from(state.get(first)!.data).slice(0, config.first_values[first].length), config.first_values[first]);
});

test('TF1 resize matrix: rows sum to 1, no half-pixel offset, edge clamped', () => {
  const m = tf1ResizeMatrix(64, 299);
  for (let i = 0; i < 299; i++) {
    let s = 0;
    for (let j = 0; j < 64; j++) s += m[i * 64 + j];
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  // output 0 samples input 0 exactly (torch's align_corners=False would blend with a -0.39 shift)
  assert.is(m[0], 1);
  // the last output, 298 * float32(64/299) = 63.786..., clamps its upper neighbour to pixel 63
  assert.is(m[298 * 64 + 63], 1);
});

test('resizeBilinearTf1 equals the float64 CPU reference on odd shapes (up and down)', async () => {
  for (const [shape, ho, wo] of [[[2, 3, 7, 5], 11, 13], [[1, 2, 17, 23], 6, 9], [[1, 3, 64, 64], 299, 299]] as [number[], number, number][]) {
    const x = Float64Array.from(randomArray(numel(shape), 3), (v) => Math.round((v + 1) * 127.5));
    await tidyAsync(async () => {
      const y = resizeBilinearTf1(Tensor.fromData(Float32Array.from(x), shape), [ho, wo]);
      assert.equal(y.shape, [shape[0], shape[1], ho, wo]);
      assertClose(await y.toFloat32(), tf1ResizeCpu(x, shape, ho, wo), 1e-6, `resize ${shape} -> ${ho}x${wo}`);
    });
  }
});

test('folding BatchNorm and loading check every key and shape', () => {
  const state = hashedInceptionState();
  const missing = new Map(state);
  missing.delete('fc.bias');
  assert.throws(() => InceptionV3.fromStateDict(missing), /missing 'fc.bias'/);
  const extra = new Map(state);
  extra.set('AuxLogits.fc.weight', { shape: [1], data: [0] });
  assert.throws(() => InceptionV3.fromStateDict(extra), /unexpected keys AuxLogits.fc.weight/);
  const wrong = new Map(state);
  wrong.set('fc.weight', { shape: [1008, 2047], data: new Float64Array(1008 * 2047) });
  assert.throws(() => InceptionV3.fromStateDict(wrong), /'fc.weight' has shape \[1008, 2047\], expected \[1008, 2048\]/);
});

test('golden: every feature layer of torch-fidelity InceptionV3 with the hashed weights', async () => {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(evalDir, 'inception.safetensors'))), 'inception.safetensors');
  const net = InceptionV3.fromStateDict(hashedInceptionState());
  try {
    for (const set of ['a', 'b']) {
      const images = tensors.get(`in/images_${set}`)!;
      await tidyAsync(async () => {
        const features = net.forward(Tensor.fromData(toFloat32(images, 'images'), images.shape));
        for (const layer of INCEPTION_FEATURES) {
          const name = `out/features_${set}/${layer}`;
          const truth = toFloat32(tensors.get(name)!, name);
          // the verify tolerance: max(100 x torch's own float32 drift, 1e-4); we see <= 6e-7
          const allowed = Math.max(100 * manifest.inception.outputs[name].torch_f32_rel_err, 1e-4);
          const err = relError(await features[layer].toFloat32(), truth);
          assert.ok(err <= allowed, `${name}: ${err} > ${allowed}`);
        }
      });
    }
  } finally {
    net.dispose();
  }
});

test.run();
