// The reconstruction warm start (train/reconstruction-process.ts): its code gradient against central
// finite differences of a float64 MSE, rows outside the batch left alone, the depth term against
// float64 on the foreground, a fit that really fits on the tiny disc dataset, and its checkpoint
// resuming as a GAN run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, Tensor, tidyAsync } from '../../engine/index.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { parseConfig } from '../../model/config.ts';
import { buildModels, readCheckpoint, train } from '../../train/loop.ts';
import { ReconstructionProcess } from '../../train/reconstruction-process.ts';
import { tinyConfig, writeDiscDataset } from './loop-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'gramhd-recon-'));
const data = join(root, 'data');
writeDiscDataset(data, 16, 16);
const quiet = () => {};
type Row = Record<string, number>;
const readLog = (dir: string): Row[] => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('code gradient = central differences of the float64 MSE; codes outside the batch stay put', async () => {
  const config = parseConfig(tinyConfig());
  const { generator, discriminator } = buildModels(config, 3);
  const n = 6;
  const process = new ReconstructionProcess(generator, discriminator, config.training!, { datasetSize: n, lr: 1e-3, codeLr: 1e-2 });
  try {
    const zDim = config.z_dim;
    const size = config.img_size;
    const b = 2;
    const indices = Int32Array.from([4, 1]);
    const poses = Float32Array.from([1.5, 1.6, 1.65, 1.45]);
    const target = Float32Array.from({ length: b * 3 * size * size }, (_, k) => Math.sin(k * 0.37) * 0.8);
    const before = await process.codes.toFloat32();
    // the float64 MSE of a generator's render at the given codes (no autograd involved)
    const cameras = [0, 1].map((k) => cameraFromPose(poses[2 * k], poses[2 * k + 1]));
    const mseOf = (g: typeof generator, codes: Float32Array) => tidyAsync(async () => {
      const z = Tensor.fromData(Float32Array.from({ length: b * zDim }, (_, k) => codes[indices[Math.floor(k / zDim)] * zDim + (k % zDim)]), [b, zDim]);
      const image = await noGrad(() => g.forward(z, cameras).image).toFloat32();
      let s = 0;
      for (let k = 0; k < image.length; k++) s += (image[k] - target[k]) ** 2;
      return s / image.length;
    });
    const mse0 = await mseOf(generator, before);
    const images = Tensor.fromData(target, [b, 3, size, size]).keep();
    const log = await process.reconstructionStep(images, poses, indices);
    images.dispose();
    assert.ok(Math.abs(log.Total - mse0) < 1e-5 * mse0 && log.RGB === log.Total, `logged MSE ${log.Total} vs float64 ${mse0}`);
    const grad = await process.codes.grad!.toFloat32();
    // rows outside the batch: no gradient, and a first Adam step (zero moments) leaves them exactly as they were
    const after = await process.codes.toFloat32();
    for (const row of [0, 2, 3, 5]) {
      for (let c = 0; c < zDim; c++) {
        assert.is(grad[row * zDim + c], 0);
        assert.is(after[row * zDim + c], before[row * zDim + c]);
      }
    }
    for (const row of indices) assert.ok(after.subarray(row * zDim, (row + 1) * zDim).some((v, c) => v !== before[row * zDim + c]), `code ${row} moved`);
    // the three largest gradient entries of each batch row against central differences; the step
    // changed the generator, so the differences are taken on a twin of the same seed that never stepped
    const twin = buildModels(config, 3);
    try {
      const mseTwin = (codes: Float32Array) => mseOf(twin.generator, codes);
      assert.ok(Math.abs(await mseTwin(before) - mse0) < 1e-7, 'the twin renders as the original did');
      const eps = 2e-3;
      for (const row of indices) {
        const order = Array.from({ length: zDim }, (_, c) => c).sort((p, q) => Math.abs(grad[row * zDim + q]) - Math.abs(grad[row * zDim + p]));
        for (const c of order.slice(0, 3)) {
          const plus = Float32Array.from(before);
          const minus = Float32Array.from(before);
          plus[row * zDim + c] += eps;
          minus[row * zDim + c] -= eps;
          const fd = (await mseTwin(plus) - await mseTwin(minus)) / (2 * eps);
          const g = grad[row * zDim + c];
          assert.ok(Math.abs(fd - g) <= 0.05 * Math.abs(g) + 1e-6, `code ${row}[${c}]: gradient ${g} vs central difference ${fd}`);
        }
      }
    } finally {
      twin.generator.dispose();
      for (const t of twin.discriminator.stateDict().values()) t.dispose();
    }
  } finally {
    process.dispose();
    generator.dispose();
    for (const t of discriminator.stateDict().values()) t.dispose();
  }
});

test('depth term: the rendered depth against ground truth on foreground pixels only, weighted into Total', async () => {
  const config = parseConfig(tinyConfig());
  const { generator, discriminator } = buildModels(config, 5);
  const process = new ReconstructionProcess(generator, discriminator, config.training!, { datasetSize: 3, lr: 1e-3, codeLr: 1e-2, depthLambda: 2 });
  try {
    const zDim = config.z_dim;
    const size = config.img_size;
    const indices = Int32Array.from([2]);
    const poses = Float32Array.from([1.55, 1.62]);
    const target = Float32Array.from({ length: 3 * size * size }, (_, k) => Math.cos(k * 0.21) * 0.5);
    // a disc of foreground at depth 0.95, background 0 elsewhere
    const depths = Float32Array.from({ length: size * size }, (_, p) => ((p % size) - 8) ** 2 + (Math.floor(p / size) - 8) ** 2 < 25 ? 0.95 : 0);
    const codes = await process.codes.toFloat32();
    const rendered = await tidyAsync(async () => {
      const z = Tensor.fromData(codes.subarray(2 * zDim, 3 * zDim), [1, zDim]);
      const out = noGrad(() => generator.forward(z, [cameraFromPose(poses[0], poses[1])]));
      return { image: await out.image.toFloat32(), depth: await out.depth.toFloat32() };
    });
    let rgb = 0;
    for (let k = 0; k < target.length; k++) rgb += (rendered.image[k] - target[k]) ** 2;
    rgb /= target.length;
    let depth = 0;
    let count = 0;
    depths.forEach((d, p) => {
      if (d > 0) {
        depth += (rendered.depth[p] - d) ** 2;
        count++;
      }
    });
    depth /= count;
    const images = Tensor.fromData(target, [1, 3, size, size]).keep();
    const log = await process.reconstructionStep(images, poses, indices, depths);
    images.dispose();
    assert.ok(Math.abs(log.RGB - rgb) < 1e-5 * rgb, `RGB ${log.RGB} vs ${rgb}`);
    assert.ok(Math.abs(log.Depth - depth) < 1e-5 * depth, `Depth ${log.Depth} vs ${depth}`);
    assert.ok(Math.abs(log.Total - (rgb + 2 * depth)) < 1e-5 * log.Total, `Total ${log.Total}`);
    // a weight without depths is an error, not a silent colour-only step
    const again = Tensor.fromData(target, [1, 3, size, size]).keep();
    try {
      await process.reconstructionStep(again, poses, indices).then(() => assert.unreachable('no depths'), (e: Error) => assert.match(e.message, /depth values/));
    } finally {
      again.dispose();
    }
  } finally {
    process.dispose();
    generator.dispose();
    for (const t of discriminator.stateDict().values()) t.dispose();
  }
});

test('reconstruction fits the disc dataset, saves its codes, and resumes as a GAN run', async () => {
  const out = join(root, 'run');
  const config = parseConfig(tinyConfig());
  const steps = 80;
  await train({
    config, dataDir: data, outputDir: out, totalStep: steps, sampleInterval: steps, saveInterval: steps, averageCount: 200,
    progress: false, log: quiet, objective: 'reconstruction', reconstruction: { lr: 1e-3, codeLr: 3e-2 },
  });
  const rows = readLog(out);
  assert.equal(rows.map((r) => r.step), Array.from({ length: steps }, (_, i) => i + 1));
  for (const r of rows) {
    assert.ok(Number.isFinite(r.R_Total) && !('D_Total' in r), `step ${r.step}: only the reconstruction term`);
    assert.ok(Math.abs(r.PSNR - 10 * Math.log10(4 / r.R_RGB)) < 1e-9 && r.R_RGB === r.R_Total);
  }
  // the images are dark (-0.84) with a bright disc: the fit must at least halve the first window's MSE
  const first = rows.slice(0, 10).reduce((s, r) => s + r.R_Total, 0) / 10;
  const last = rows.slice(-10).reduce((s, r) => s + r.R_Total, 0) / 10;
  console.log(`  reconstruction: MSE ${first.toFixed(4)} (steps 1-10) -> ${last.toFixed(4)} (steps ${steps - 9}-${steps})`);
  assert.ok(last < 0.5 * first, `MSE fell from ${first} to ${last}`);
  const ckpt = await readCheckpoint(join(out, `${steps}.safetensors`));
  assert.equal(ckpt.tensors.get('codes/latent')!.shape, [16, config.z_dim]);
  assert.ok([...ckpt.tensors.keys()].some((k) => k.startsWith('optC/')));
  assert.is(ckpt.objective, 'reconstruction');
  assert.is(ckpt.scalars['optG/param_groups.0.betas.0'], 0.9);
  // resumed, it stays a reconstruction run; a learning rate given then replaces the stored one
  await train({ dataDir: data, outputDir: out, loadDir: out, totalStep: steps + 1, sampleInterval: 1000, saveInterval: 1000, progress: false, log: quiet, reconstruction: { lr: 5e-4 } });
  const again = await readCheckpoint(join(out, `${steps + 1}.safetensors`));
  assert.is(again.objective, 'reconstruction');
  assert.is(again.scalars['optG/param_groups.0.lr'], 5e-4);
  assert.is(again.scalars['optC/param_groups.0.lr'], 3e-2);
  // the same checkpoint goes on adversarially, its generator optimiser afresh at the GAN's settings
  const messages: string[] = [];
  await train({ dataDir: data, outputDir: out, loadDir: out, objective: 'gan', totalStep: steps + 3, sampleInterval: 1000, saveInterval: 1000, progress: false, log: (m) => messages.push(m) });
  assert.ok(messages.some((m) => m.includes('starts afresh for gan')), messages.join('\n'));
  const gan = await readCheckpoint(join(out, `${steps + 3}.safetensors`));
  assert.is(gan.objective, 'gan');
  assert.is(gan.scalars['optG/param_groups.0.lr'], config.training!.gen_lr);
  assert.is(gan.scalars['optG/param_groups.0.betas.0'], config.training!.betas[0]);
  const resumed = readLog(out).slice(steps + 1);
  assert.equal(resumed.map((r) => r.step), [steps + 2, steps + 3]);
  for (const r of resumed) assert.ok(Number.isFinite(r.D_Total) && Number.isFinite(r.G_Total), `step ${r.step}: GAN terms`);
  const svg = readFileSync(join(out, 'losses.svg'), 'utf8');
  assert.ok(svg.includes('Reconstruction losses') && svg.includes('R_Total'));
});

test.run();
