import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../helpers/gpu.ts';
import { grad, nn, noGrad, ops, Tensor, tidyAsync } from '../../engine/index.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { RRDBNet, type RRDBNetConfig } from '../../model/sr/rrdbnet.ts';
import { StyleRRDBNet, withAlphaSigmoid, type StyleRRDBNetConfig } from '../../model/sr/style-rrdbnet.ts';
import { goldenDir } from '../helpers/golden.ts';
import { assertClose, randomArray } from '../helpers/reference.ts';

// ---- the golden gramhd_small case: the authors' SR networks at nf 16, nb 1, gc 8, 16x16 -> 64x64

interface GoldenEntry {
  config: { feature_dim: number; img_size: number; lr_img_size: number; super_resolution: { fg: StyleRRDBNetConfig; bg: RRDBNetConfig } };
  outputs: Record<string, { torch_f32_rel_err: number }>;
}
const golden = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8')).gramhd_small as GoldenEntry;
const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, 'gramhd_small.safetensors'))), 'gramhd_small.safetensors');
const host = (name: string) => {
  const t = tensors.get(name);
  if (!t) throw new Error(`gramhd_small: no tensor ${name}`);
  return { shape: t.shape, data: toFloat32(t, name) };
};
const upload = (name: string) => {
  const { shape, data } = host(name);
  return Tensor.fromData(data, shape);
};
/** The golden parameters under `param/<prefix>.`, keyed as the network's own state dict. */
const paramsUnder = (prefix: string) => new Map([...tensors.keys()]
  .filter((k) => k.startsWith(`param/${prefix}.`))
  .map((k) => [k.slice(`param/${prefix}.`.length), host(k)]));
/** max(100 x torch's float32 drift, 1e-4), as test/golden/README.md asks of forward outputs. */
const tolerance = (output: string) => Math.max(100 * golden.outputs[output].torch_f32_rel_err, 1e-4);

const cfg = golden.config;
const scaleFactor = cfg.img_size / cfg.lr_img_size;
const goldenStyleNet = () => {
  const net = new StyleRRDBNet(4 + cfg.feature_dim, 4, cfg.super_resolution.fg, { scaleFactor });
  net.loadStateDict(paramsUnder('super_resolution'));
  return net;
};
const goldenBgNet = () => {
  const net = new RRDBNet(3, 3, cfg.super_resolution.bg, { scaleFactor });
  net.loadStateDict(paramsUnder('super_resolution_bg'));
  return net;
};

test('state dict keys and shapes are the authors\' for both SR networks', () => {
  const fg = new StyleRRDBNet(4 + cfg.feature_dim, 4, cfg.super_resolution.fg, { scaleFactor });
  const bg = new RRDBNet(3, 3, cfg.super_resolution.bg, { scaleFactor });
  for (const [net, prefix] of [[fg, 'super_resolution'], [bg, 'super_resolution_bg']] as const) {
    const theirs = paramsUnder(prefix);
    const ours = net.stateDict();
    assert.equal([...ours.keys()].sort(), [...theirs.keys()].sort(), prefix);
    for (const [k, t] of ours) assert.equal(t.shape, theirs.get(k)!.shape, k);
  }
  assert.is(fg.styleDim, 64);
});

test('StyleRRDBNet reproduces sr_out from lr_features and z (z[b] styles manifolds 7b..7b+6)', async () => {
  const net = goldenStyleNet();
  const truth = host('out/sr_out').data;
  await tidyAsync(async () => {
    const x = upload('out/lr_features');
    const z = upload('in/z');
    const out = noGrad(() => net.forward(x, z));
    assert.equal(out.shape, [14, 4, 64, 64]);
    const err = assertClose(await out.data(), truth, tolerance('out/sr_out'), 'sr_out');
    // the same through three chunks (5 + 5 + 4 images, which splits element 0's manifolds)
    net.maxChunk = 5;
    const chunked = noGrad(() => net.forward(x, z));
    const chunkErr = assertClose(await chunked.data(), truth, tolerance('out/sr_out'), 'sr_out chunked');
    console.log(`  sr_out rel err ${err.toExponential(2)} (chunked ${chunkErr.toExponential(2)}), allowed ${tolerance('out/sr_out').toExponential(2)}`);
  });
});

test('RRDBNet reproduces sr_bg_out (bilinear upsampling, bicubic global residual)', async () => {
  const net = goldenBgNet();
  await tidyAsync(async () => {
    const out = noGrad(() => net.forward(upload('out/sr_bg_in')));
    assert.equal(out.shape, [2, 3, 64, 64]);
    const err = assertClose(await out.data(), host('out/sr_bg_out').data, tolerance('out/sr_bg_out'), 'sr_bg_out');
    console.log(`  sr_bg_out rel err ${err.toExponential(2)}, allowed ${tolerance('out/sr_bg_out').toExponential(2)}`);
  });
});

test('truncation lerps towards avgStyle; computeAvgStyle is the mean style, whatever the chunking', async () => {
  const net = goldenStyleNet();
  await tidyAsync(async () => {
    const z = upload('in/z');
    net.setAvgStyle(upload('in/avg_style'));
    const style = await net.style(z).toFloat32();
    const truncated = await net.style(z, 0.7).toFloat32();
    const avg = host('in/avg_style').data;
    // lerp(avg, style, 0.7) = avg + 0.7 (style - avg)
    const expected = truncated.map((_, i) => avg[i % 64] + 0.7 * (style[i] - avg[i % 64]));
    assertClose(truncated, expected, 1e-6, 'truncated style');

    const latents = Tensor.fromData(Float32Array.from(randomArray(37 * 256, 7)), [37, 256]);
    const meanStyle = await ops.mean(net.style(latents), 0).toFloat32();
    const inOne = await net.computeAvgStyle(latents, { chunk: 100 }).toFloat32();
    const inChunks = await net.computeAvgStyle(latents, { chunk: 10 }).toFloat32();
    assertClose(inOne, meanStyle, 1e-5, 'avg style vs mean style');
    assertClose(inChunks, inOne, 1e-6, 'avg style in chunks of 10');
    // random latents: a [1, 64] centre that truncation accepts
    assert.equal(net.computeAvgStyle(50, { rng: new nn.Random(3), chunk: 16 }).shape, [1, 64]);
    assert.equal(net.style(z, 0.5).shape, [2, 64]);
  });
  net.setAvgStyle(null);
  assert.throws(() => net.style(ops.zeros([1, 256]), 0.5), /avgStyle/);
});

test('withAlphaSigmoid leaves rgb and squashes channel 3', async () => {
  await tidyAsync(async () => {
    const raw = Tensor.fromData(Float32Array.from(randomArray(2 * 4 * 3 * 3, 5, -3, 3)), [2, 4, 3, 3]);
    const r = await raw.toFloat32();
    const expected = r.map((v, i) => (Math.floor(i / 9) % 4 === 3 ? 1 / (1 + Math.exp(-v)) : v));
    assertClose(await withAlphaSigmoid(raw).toFloat32(), expected, 1e-6, 'alpha sigmoid');
  });
});

// ---- gradients reach every parameter (tiny networks)

async function checkEveryGradient(net: nn.Module, output: Tensor, what: string): Promise<void> {
  const named = net.namedParameters();
  const weights = Tensor.fromData(Float32Array.from(randomArray(output.size, 11)), output.shape);
  const grads = grad(ops.sum(ops.mul(output, weights)), named.map(([, p]) => p));
  for (let i = 0; i < named.length; i++) {
    const g = await grads[i].toFloat32();
    const finite = g.every(Number.isFinite);
    const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    assert.ok(finite && norm > 0, `${what}: gradient of ${named[i][0]} is ${finite ? 'zero' : 'not finite'}`);
  }
}

test('gradients flow to every StyleRRDBNet parameter, mapping network included', async () => {
  const net = new StyleRRDBNet(6, 4, { w_dim: 8, nf: 4, nb: 1, gc: 2, up_channels: [4, 3], to_rgb_ks: 1 }, { rng: new nn.Random(1) });
  await tidyAsync(async () => {
    const x = Tensor.fromData(Float32Array.from(randomArray(4 * 6 * 3 * 3, 2)), [4, 6, 3, 3]);
    const z = Tensor.fromData(Float32Array.from(randomArray(2 * 8, 3)), [2, 8]);
    net.maxChunk = 3; // the gradient also crosses the chunk boundary
    const out = net.forward(x, z);
    assert.equal(out.shape, [4, 4, 12, 12]);
    await checkEveryGradient(net, out, 'StyleRRDBNet');
  });
});

test('gradients flow to every RRDBNet parameter (global residual; conv_last starts at zero)', async () => {
  const net = new RRDBNet(3, 3, { nf: 4, nb: 1, gc: 2, up_channels: [4, 2], use_pixel_shuffle: false, global_residual: true }, { rng: new nn.Random(2) });
  assert.ok((await net.conv_last.weight.toFloat32()).every((v) => v === 0), 'conv_last weight zero-initialised');
  assert.ok((await net.conv_last.bias!.toFloat32()).every((v) => v === 0), 'conv_last bias zero-initialised');
  await tidyAsync(async () => {
    const x = Tensor.fromData(Float32Array.from(randomArray(2 * 3 * 3 * 3, 4)), [2, 3, 3, 3]);
    // at zero conv_last only conv_last gets a gradient; move it off zero to reach the rest
    nn.uniform_(net.conv_last.weight, -0.5, 0.5, new nn.Random(9));
    const out = net.forward(x);
    assert.equal(out.shape, [2, 3, 12, 12]);
    await checkEveryGradient(net, out, 'RRDBNet');
  });
});

test.run();
