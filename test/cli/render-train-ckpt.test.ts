// `gramhd render` on a `gramhd train` checkpoint: the loader takes the configuration from the
// metadata and renders the first EMA's weights (ema/shadow_params.<i> onto the generator's trained
// parameters, the rest from G/). Checked against a generator whose weights are set from G/ and then
// from the EMA's shadows through ExponentialMovingAverage itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, Tensor, tidy } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { Random } from '../../engine/nn/random.ts';
import { ExponentialMovingAverage } from '../../engine/optim/ema.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { parseConfig } from '../../model/config.ts';
import { GramGenerator } from '../../model/gram.ts';
import { loadGenerator } from '../../cli/checkpoint.ts';
import { decodePng, imageToRgb8 } from '../../train/image-io.ts';
import { TorchGenerator } from '../../model/torch-random.ts';
import { readCheckpoint, train } from '../../train/loop.ts';
import { repoRoot } from '../helpers/golden.ts';
import { tinyConfig, writeDiscDataset } from '../train/loop-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-render-train-'));

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Seed 3's front view at truncation 0.7 from `generator`, as `render` draws z and the average. */
async function frontView(generator: GramGenerator): Promise<Uint8Array> {
  const zDim = generator.config.z_dim;
  const g = new TorchGenerator(3);
  const z = g.randn(zDim);
  const avg = g.randn(10000 * zDim);
  tidy(() => noGrad(() => generator.computeTruncationAverage(Tensor.fromData(avg, [10000, zDim]))));
  const image = tidy(() => noGrad(() => generator.forward(Tensor.fromData(z, [1, zDim]), [cameraFromPose(Math.PI / 2, Math.PI / 2)], { truncationPsi: 0.7, lockViewDependence: true }).image));
  const rgb = imageToRgb8(await image.toFloat32(), image.shape, 0, true);
  image.dispose();
  return rgb.data;
}

test('render reads a training checkpoint and renders its first EMA; convert exports that EMA generator', async () => {
  const data = join(root, 'data');
  writeDiscDataset(data, 8, 16);
  const out = join(root, 'run');
  // a large generator learning rate so that the live weights and the EMA render visibly apart
  const config = parseConfig(tinyConfig({ genLr: 2e-2 }));
  await train({ config, dataDir: data, outputDir: out, totalStep: 3, sampleInterval: 100, saveInterval: 100, progress: false, log: () => {} });
  const ckptPath = join(out, '3.safetensors');

  // the loader: the EMA generator, configuration from the metadata
  const loaded = await loadGenerator(ckptPath);
  assert.is(loaded.config.name, 'tiny_gram');
  assert.is(loaded.storedAverage, false);
  loaded.model.dispose();

  const renderDir = join(root, 'render');
  const run = spawnSync(process.execPath, ['bin/gramhd.js', 'render', '--ckpt', ckptPath, '--output_dir', renderDir, '--seeds', '3', '--type', 'multiview1x3', '--batch', '3'],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  assert.is(run.status, 0, run.stderr);
  const grid = decodePng(new Uint8Array(readFileSync(join(renderDir, 'grid_3.png'))));
  assert.equal([grid.width, grid.height], [48, 16]);
  const middle = new Uint8Array(16 * 16 * 3);
  for (let y = 0; y < 16; y++) middle.set(grid.data.subarray((y * 48 + 16) * 3, (y * 48 + 32) * 3), y * 16 * 3);

  const exported = join(root, 'generator.safetensors');
  const conv = spawnSync(process.execPath, ['bin/gramhd.js', 'convert', ckptPath, exported],
    { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  assert.is(conv.status, 0, conv.stderr);
  const exportedFile = parseSafetensors(new Uint8Array(readFileSync(exported)), exported);
  assert.is(parseConfig(exportedFile.metadata.config).name, 'tiny_gram');

  // the reference: G/ weights, then the EMA's shadows copied in by the EMA itself
  const ckpt = await readCheckpoint(ckptPath);
  const strip = (prefix: string) => new Map([...ckpt.tensors].filter(([k]) => k.startsWith(prefix))
    .map(([k, t]) => [k.slice(prefix.length), { shape: t.shape, data: toFloat32(t, k) }] as const));
  const generator = new GramGenerator(ckpt.config, new Random(0));
  try {
    generator.loadStateDict(strip('G/'));
    const live = await frontView(generator);
    const ema = new ExponentialMovingAverage(generator, 0.999);
    const state = new Map<string, Tensor | number>([['num_updates', ckpt.scalars['ema/num_updates']]]);
    for (const [k, v] of strip('ema/')) state.set(k, Tensor.fromData(v.data, v.shape).keep());
    try {
      ema.loadStateDict(state);
      ema.copyTo(generator);
    } finally {
      for (const v of state.values()) if (v instanceof Tensor) v.dispose();
      ema.dispose();
    }
    // the exported file holds exactly the EMA generator's state, under the generator's own keys
    const own = generator.stateDict();
    assert.equal([...exportedFile.tensors.keys()].sort(), [...own.keys()].sort());
    for (const [key, t] of own) assert.equal(toFloat32(exportedFile.tensors.get(key)!, key), await t.toFloat32(), key);
    const averaged = await frontView(generator);
    const d = maxDiff(middle, averaged);
    console.log(`  render train ckpt: |render - EMA| ${d}/255, |live G - EMA| ${maxDiff(live, averaged)}/255`);
    assert.ok(d <= 1, `the rendered front view differs from the EMA generator's by ${d}/255`);
    assert.ok(maxDiff(live, averaged) > 1, 'the live weights render differently from the EMA (else the test shows nothing)');
  } finally {
    generator.dispose();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
