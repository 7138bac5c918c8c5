// `gramhd render` end to end on the golden gram_small generator (16x16, random weights written as our
// safetensors with the configuration in its metadata), plus --seeds parsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from '../helpers/gpu.ts';
import { noGrad, Tensor, tidy } from '../../engine/index.ts';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { loadGenerator, resolveConfig } from '../../cli/checkpoint.ts';
import { configMetadata } from '../../cli/commands/convert.ts';
import { configByName } from '../../model/config.ts';
import { parseSeeds } from '../../cli/commands/render.ts';
import { decodePng, imageToRgb8, toByte, type Rgb8 } from '../../train/image-io.ts';
import { TorchGenerator } from '../../model/torch-random.ts';
import { goldenDir, repoRoot, writeGoldenGramSmall } from '../helpers/golden.ts';

void gpu;
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-render-'));
const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const { ckpt, config } = writeGoldenGramSmall(workDir);
const configFile = join(workDir, 'gram_small.json');
writeFileSync(configFile, JSON.stringify(config));
// the same parameters rendered at 8x8 with 12 samples per ray, for the tests of many views
const smallConfig = join(workDir, 'gram_small_8px.json');
writeFileSync(smallConfig, JSON.stringify({ ...config, img_size: 8, renderer: { ...(config.renderer as object), num_samples: 12 } }));

function render(...args: string[]) {
  const run = spawnSync(process.execPath, ['bin/gramhd.js', 'render', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  return run;
}

const png = (path: string) => decodePng(new Uint8Array(readFileSync(path)));

function tile(grid: Rgb8, row: number, col: number, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const start = ((row * size + y) * grid.width + col * size) * 3;
    out.set(grid.data.subarray(start, start + size * 3), y * size * 3);
  }
  return out;
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('parseSeeds: seeds and inclusive ranges, in order', () => {
  assert.equal(parseSeeds('0-3'), [0, 1, 2, 3]);
  assert.equal(parseSeeds('1,5,7-9'), [1, 5, 7, 8, 9]);
  assert.equal(parseSeeds('42'), [42]);
  assert.equal(parseSeeds('3-3'), [3]);
});

test('parseSeeds: bad input is one clear error', () => {
  for (const bad of ['', 'a', '1,,2', '5-2', '-1', '1-2-3', '1.5']) {
    assert.throws(() => parseSeeds(bad), /--seeds: '.*' (is not a seed or a range|is a range that ends before it starts)/, bad);
  }
});

test('convert --config NAME stores the full configuration JSON, which the loader reads back', () => {
  const stored = configMetadata('GRAMHD256_FFHQ');
  assert.ok(stored.startsWith('{') && stored.length < 2000, stored);
  assert.equal(JSON.parse(JSON.stringify(resolveConfig(stored, 'metadata'))), JSON.parse(JSON.stringify(configByName('GRAMHD256_FFHQ'))));
  assert.is(configMetadata('gramhd_small'), 'gramhd_small', 'other values are stored as given');
});

test('8-bit conversion truncates; high-res clipped, low-res wraps like numpy; NaN -> 0', () => {
  assert.is(toByte(1, true), 255);
  assert.is(toByte(0.999, true), 254);
  assert.is(toByte(2, true), 255);
  assert.is(toByte(-2, true), 0);
  assert.is(toByte(Number.NaN, true), 0);
  assert.is(toByte(-1.01, false), 255);
  assert.is(toByte(1.01, false), 0);
  assert.is(toByte(Number.NaN, false), 0);
});

test('multiview1x3: a 1x3 grid (and its depth grid) whose middle tile is the front view', async () => {
  const out = join(workDir, 'mv13');
  const run = render('--ckpt', ckpt, '--output_dir', out, '--seeds', '3', '--type', 'multiview1x3', '--depth', '--batch', '3');
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /images\/s/);
  assert.equal(readdirSync(out).sort(), ['grid_3.png', 'grid_3_depth.png']);
  const grid = png(join(out, 'grid_3.png'));
  assert.equal([grid.width, grid.height], [48, 16]);
  const depth = png(join(out, 'grid_3_depth.png'));
  assert.equal([depth.width, depth.height], [48, 16]);

  // the same front view rendered here: z and the truncation average from seed 3's torch stream
  const { model } = await loadGenerator(ckpt);
  try {
    const g = new TorchGenerator(3);
    const z = g.randn(256);
    const avg = g.randn(10000 * 256);
    tidy(() => noGrad(() => model.computeAverage(Tensor.fromData(avg, [10000, 256]))));
    const image = tidy(() => noGrad(() => model.render(Tensor.fromData(z, [1, 256]), [cameraFromPose(Math.PI / 2, Math.PI / 2)], { truncationPsi: 0.7, lockViewDependence: true }).image));
    const front = imageToRgb8(await image.toFloat32(), image.shape, 0, true);
    image.dispose();
    assert.ok(maxDiff(tile(grid, 0, 1, 16), front.data) <= 1, `middle tile differs from the front render by ${maxDiff(tile(grid, 0, 1, 16), front.data)}/255`);
    assert.ok(maxDiff(tile(grid, 0, 0, 16), front.data) > 0, 'the side views differ from the front');
  } finally {
    model.dispose();
  }
});

test('multiview3x7: a 3x7 grid per seed; its centre tile is the 1x3 grid\'s middle tile', () => {
  const out = join(workDir, 'mv37');
  const row = join(workDir, 'mv13small');
  let run = render('--ckpt', ckpt, '--config', smallConfig, '--output_dir', out, '--seeds', '3', '--type', 'multiview3x7', '--batch', '21');
  assert.is(run.status, 0, run.stderr);
  run = render('--ckpt', ckpt, '--config', smallConfig, '--output_dir', row, '--seeds', '3', '--type', 'multiview1x3', '--batch', '3');
  assert.is(run.status, 0, run.stderr);
  assert.equal(readdirSync(out), ['grid_3.png']);
  const grid = png(join(out, 'grid_3.png'));
  assert.equal([grid.width, grid.height], [7 * 8, 3 * 8]);
  assert.ok(maxDiff(tile(grid, 1, 3, 8), tile(png(join(row, 'grid_3.png')), 0, 1, 8)) <= 1);
});

test('--img_size renders a GRAM checkpoint at another size, as a configuration of that size would', () => {
  const eightPx = join(workDir, 'gram_small_img8.json');
  writeFileSync(eightPx, JSON.stringify({ ...config, img_size: 8 }));
  const resized = join(workDir, 'mv13resized');
  const native = join(workDir, 'mv13native');
  let run = render('--ckpt', ckpt, '--output_dir', resized, '--seeds', '3', '--type', 'multiview1x3', '--img_size', '8');
  assert.is(run.status, 0, run.stderr);
  run = render('--ckpt', ckpt, '--config', eightPx, '--output_dir', native, '--seeds', '3', '--type', 'multiview1x3');
  assert.is(run.status, 0, run.stderr);
  const grid = png(join(resized, 'grid_3.png'));
  assert.equal([grid.width, grid.height], [24, 8]);
  assert.equal(maxDiff(grid.data, png(join(native, 'grid_3.png')).data), 0);
  run = render('--ckpt', ckpt, '--output_dir', resized, '--seeds', '3', '--img_size', '0');
  assert.is.not(run.status, 0);
  assert.match(run.stderr, /--img_size must be a positive integer/);
});

test('rand: <index:05d>.png per seed, several seeds per forward with --batch', () => {
  const out = join(workDir, 'rand');
  const run = render('--ckpt', ckpt, '--config', smallConfig, '--output_dir', out, '--seeds', '7-8,2', '--type', 'rand', '--truncation', '1', '--batch', '3', '--depth');
  assert.is(run.status, 0, run.stderr);
  assert.equal(readdirSync(out).sort(), ['00000.png', '00000_depth.png', '00001.png', '00001_depth.png', '00002.png', '00002_depth.png']);
  const images = ['00000.png', '00001.png', '00002.png'].map((name) => png(join(out, name)));
  for (const image of images) assert.equal([image.width, image.height], [8, 8]);
  assert.ok(maxDiff(images[0].data, images[1].data) > 0, 'different seeds, different images');
});

test('video: an H.264 mp4 of 60 frames at 30 fps', () => {
  const out = join(workDir, 'video');
  const run = render('--ckpt', ckpt, '--config', smallConfig, '--output_dir', out, '--seeds', '0', '--type', 'video', '--batch', '60');
  assert.is(run.status, 0, run.stderr);
  assert.equal(readdirSync(out), ['grid_0.mp4']);
  const probe = spawnSync('ffprobe', ['-v', 'error', '-show_streams', join(out, 'grid_0.mp4')], { encoding: 'utf8' });
  assert.is(probe.status, 0, probe.stderr);
  assert.match(probe.stdout, /codec_name=h264/);
  assert.match(probe.stdout, /nb_frames=60/);
  assert.match(probe.stdout, /r_frame_rate=30\/1/);
  assert.match(probe.stdout, /width=8/);
});

test('the authors\' .pt with --config renders the same grid as our safetensors', () => {
  const out = join(workDir, 'pt');
  const run = render('--ckpt', join(goldenDir, 'gram_small.pt'), '--config', configFile, '--output_dir', out, '--seeds', '3');
  assert.is(run.status, 0, run.stderr);
  assert.equal(readFileSync(join(out, 'grid_3.png')), readFileSync(join(workDir, 'mv13', 'grid_3.png')));
});

test('GRAM-HD: grid_<seed>.png and the unclipped low-res grid_<seed>_lr.png', () => {
  const { note: _hdNote, ...hd } = manifest.gramhd_small.config as Record<string, unknown>;
  // the golden GRAM-HD weights at 8x8 manifolds super-resolved x4 to 32x32, to stay fast
  const hdConfig = join(workDir, 'gramhd_small_8px.json');
  writeFileSync(hdConfig, JSON.stringify({ ...hd, img_size: 32, lr_img_size: 8 }));
  const out = join(workDir, 'hd');
  const run = render('--ckpt', join(goldenDir, 'gramhd_small.pt'), '--config', hdConfig, '--output_dir', out, '--seeds', '1', '--batch', '3');
  assert.is(run.status, 0, run.stderr);
  assert.equal(readdirSync(out).sort(), ['grid_1.png', 'grid_1_lr.png']);
  const grid = png(join(out, 'grid_1.png'));
  const lr = png(join(out, 'grid_1_lr.png'));
  assert.equal([grid.width, grid.height, lr.width, lr.height], [96, 32, 24, 8]);
});

test('stored truncation averages (avg_frequencies, avg_phase_shifts) are used as given', async () => {
  const golden = parseSafetensors(new Uint8Array(readFileSync(join(goldenDir, 'gram_small.safetensors'))), 'gram_small');
  const entries = [...parseSafetensors(new Uint8Array(readFileSync(ckpt)), ckpt).tensors];
  for (const key of ['avg_frequencies', 'avg_phase_shifts']) entries.push([key, golden.tensors.get(`in/${key}`)!]);
  const withAverage = join(workDir, 'with-average.safetensors');
  writeFileSync(withAverage, serializeSafetensors(entries, { config: JSON.stringify(config) }));
  const { model, storedAverage } = await loadGenerator(withAverage);
  try {
    assert.ok(storedAverage);
    const host = (key: string) => new Float32Array(golden.tensors.get(key)!.data.slice().buffer);
    const origin = host('in/camera_origin');
    const pose = host('in/camera_pose');
    const cameras = [0, 1].map((b) => ({ origin: [origin[3 * b], origin[3 * b + 1], origin[3 * b + 2]] as [number, number, number], pitch: pose[2 * b], yaw: pose[2 * b + 1] }));
    const image = tidy(() => noGrad(() => model.render(Tensor.fromData(host('in/z'), [2, 256]), cameras, { truncationPsi: 0.7, lockViewDependence: false }).image));
    const ours = await image.toFloat32();
    image.dispose();
    const truth = host('out/image_truncated_0.7');
    let num = 0;
    let den = 0;
    truth.forEach((t, i) => {
      num += (ours[i] - t) ** 2;
      den += t ** 2;
    });
    assert.ok(Math.sqrt(num / den) < 1e-4, `relative error ${Math.sqrt(num / den)}`);
  } finally {
    model.dispose();
  }
});

test('errors: one line naming the file', async () => {
  const pt = join(goldenDir, 'gram_small.pt');
  const fails = async (promise: Promise<unknown>, pattern: RegExp) => {
    const error = await promise.then(() => null, (e: Error) => e);
    assert.ok(error, `expected ${pattern}`);
    assert.match(error!.message, pattern);
    assert.not.match(error!.message, /\n/);
  };
  await fails(loadGenerator(pt), /gram_small\.pt: a torch checkpoint carries no configuration; name one with --config/);
  await fails(loadGenerator(pt, 'GRAM64_FFHQ'), /gram_small\.pt: does not fit GRAM64_FFHQ: \d+ shape mismatches \(checkpoint vs model\): /);
  await fails(loadGenerator(pt, 'NOPE'), /--config: 'NOPE' is neither a configuration name/);
  const ours = parseSafetensors(new Uint8Array(readFileSync(ckpt)), ckpt);
  const partial = join(workDir, 'partial.safetensors');
  writeFileSync(partial, serializeSafetensors([...[...ours.tensors].slice(1), ['extra.weight', [...ours.tensors][0][1]]], ours.metadata));
  await fails(loadGenerator(partial), /partial\.safetensors: does not fit the GRAM configuration: 1 missing keys: .*; 1 unexpected keys: extra\.weight/);
  const run = render('--ckpt', ckpt, '--seeds', '9-1', '--output_dir', join(workDir, 'e'));
  assert.is(run.status, 1);
  assert.match(run.stderr, /--seeds: '9-1' is a range that ends before it starts/);
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));
test.run();
