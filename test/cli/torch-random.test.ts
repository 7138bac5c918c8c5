// model/torch-random.ts against PyTorch itself: the reference values in torch-random.reference.json
// were written by torch 1.13.1 (Debian's python3-torch, CPU generator, x86-64 with AVX2) with
// torch.manual_seed(seed) then torch.randn / torch.rand. torch's AVX2 Box-Muller uses its own
// float log/sincos, so values may differ in the last bit or two; the stream position never may.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { TorchGenerator } from '../../model/torch-random.ts';

const reference = JSON.parse(readFileSync(new URL('./torch-random.reference.json', import.meta.url), 'utf8')) as {
  randn_1x256: Record<string, number[]>;
  randn_20_seed7: number[];
  randn_3_seed0: number[];
  rand_3_seed0: number[];
  inference_stream: { seed: number; avg_z_sum: number; avg_z_last: number[]; yaw_normal: number; pitch_normal: number }[];
};

function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string) {
  assert.is(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    assert.ok(error <= tolerance * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

test('mt19937: the 10000th output for the default seed 5489 is 4123659995 (C++ standard, [rand.predef])', () => {
  const g = new TorchGenerator(5489);
  let value = 0;
  for (let i = 0; i < 10000; i++) value = g.random();
  assert.is(value, 4123659995);
});

test('torch.rand(3) after manual_seed(0): 24-bit float uniforms, bit-exact', () => {
  const g = new TorchGenerator(0);
  assert.equal([0, 1, 2].map(() => g.uniformFloat()), reference.rand_3_seed0);
});

test('torch.randn(3) after manual_seed(0): the scalar double Box-Muller path', () => {
  assertClose(new TorchGenerator(0).randn(3), reference.randn_3_seed0, 1e-7, 'randn(3)');
});

test('torch.randn(1, 256) for seeds 0, 1, 42, 12345: the blocks-of-16 path', () => {
  for (const [seed, values] of Object.entries(reference.randn_1x256)) {
    assertClose(new TorchGenerator(Number(seed)).randn(256), values, 1e-6, `seed ${seed}`);
  }
});

test('torch.randn(20): the last 16 values are redrawn when the size is not a multiple of 16', () => {
  assertClose(new TorchGenerator(7).randn(20), reference.randn_20_seed7, 1e-6, 'randn(20)');
});

test('the inference stream: z, the 10000 x 256 truncation latents, then the rand pose normals', () => {
  for (const expected of reference.inference_stream) {
    const g = new TorchGenerator(expected.seed);
    g.randn(256);
    const big = g.randn(10000 * 256);
    let sum = 0;
    for (const v of big) sum += v;
    assert.ok(Math.abs(sum - expected.avg_z_sum) < 1e-2, `sum ${sum} vs ${expected.avg_z_sum}`);
    assertClose(big.subarray(big.length - 4), expected.avg_z_last, 1e-6, 'last latents');
    assertClose([g.normalDouble(), g.normalDouble()], [expected.yaw_normal, expected.pitch_normal], 1e-7, 'pose normals');
  }
});

test('skipRandn advances the stream exactly like randn', () => {
  for (const n of [3, 16, 20, 256]) {
    const a = new TorchGenerator(9);
    const b = new TorchGenerator(9);
    a.randn(n);
    b.skipRandn(n);
    assert.equal([...a.randn(32)], [...b.randn(32)], `n = ${n}`);
  }
});

test.run();
