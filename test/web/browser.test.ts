// The web demo end to end in headless Chromium (WebGPU on SwiftShader), against renders done here in
// Node (Dawn on lavapipe) of the same checkpoint, seed, pose and truncation, within 2/255 on 99% of
// the channels. GRAM-HD (the golden gramhd_small, 16x16 super-resolved to 64x64): the low-res frame
// comes first and matches the Node low-res image, then the final frame (the seed's bake and a view
// of it) matches the Node image; a drag orbits the view with frames rendered from the bake, each
// faster than the bake (both times printed), and the final frame at the new pose matches the Node
// render (the full forward) at that pose; the stats overlay (?stats=1) shows the times; the
// PNG export decodes to the canvas's pixels; the turntable MP4 export is an H.264 MP4 (or, where the
// browser has no H.264 encoder, the page says so); the seed control renders the next seed, and a
// device lost during that render comes back with Retry; a drag re-renders another view from the new
// device's bake. GRAM
// (gram_small, 16x16): the frame matches. Failures: a missing and a truncated checkpoint, a browser
// without WebGPU and one without an adapter end in status "error" with the message on the page.
// Skipped when /usr/bin/chromium is missing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import type { Page } from 'playwright-core';
import { gpu } from '../helpers/gpu.ts';
import { noGrad, Tensor, tidy } from '../../engine/index.ts';
import { cameraFromPose } from '../../model/camera.ts';
import { loadGenerator } from '../../cli/checkpoint.ts';
import { imageToRgb8, type Rgb8 } from '../../train/image-io.ts';
import { TorchGenerator } from '../../model/torch-random.ts';
import { goldenCheckpoint } from './golden-checkpoint.ts';
import { buildWeb, serveWeb } from '../../web/serve.ts';

void gpu;
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--enable-unsafe-webgpu', '--no-sandbox', '--enable-features=Vulkan', '--use-angle=vulkan',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
];
const SEED = 5;
const YAW = 0.3;
const PITCH = -0.1;
const PSI = 0.7;

/** The Node renders (8-bit RGB as the CLI writes them, low-res clipped like the display) per seed. */
async function nodeRenders(ckpt: string, seeds: number[], pose = { yaw: YAW, pitch: PITCH }): Promise<Map<number, { image: Rgb8; lr: Rgb8 | null }>> {
  const { model, storedAverage } = await loadGenerator(ckpt);
  const out = new Map<number, { image: Rgb8; lr: Rgb8 | null }>();
  try {
    assert.ok(storedAverage);
    for (const seed of seeds) {
      const z = new TorchGenerator(seed).randn(256);
      const { image, lrImage } = tidy(() => noGrad(() => {
        const r = model.render(Tensor.fromData(z, [1, 256]), [cameraFromPose(Math.PI / 2 + pose.pitch, Math.PI / 2 + pose.yaw)], { truncationPsi: PSI, lockViewDependence: true });
        return { image: r.image, lrImage: r.lrImage ?? null };
      }));
      out.set(seed, {
        image: imageToRgb8(await image.toFloat32(), image.shape, 0, true),
        lr: lrImage ? imageToRgb8(await lrImage.toFloat32(), lrImage.shape, 0, true) : null,
      });
      image.dispose();
      lrImage?.dispose();
    }
  } finally {
    model.dispose();
  }
  return out;
}

/** Compares browser RGBA (width x width) with Node RGB, which may be smaller (nearest upscaling). */
function assertMatches(rgba: number[] | Uint8Array, expected: Rgb8, width: number, what: string): void {
  assert.is(rgba.length, width * width * 4, `${what}: ${rgba.length} bytes for ${width}x${width}`);
  let bad = 0;
  let worst = 0;
  for (let y = 0; y < width; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const q = Math.floor((y * expected.height) / width) * expected.width + Math.floor((x * expected.width) / width);
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(rgba[p * 4 + c] - expected.data[q * 3 + c]);
        worst = Math.max(worst, d);
        if (d > 2) bad++;
      }
      assert.is(rgba[p * 4 + 3], 255);
    }
  }
  console.log(`  ${what}: browser vs Node max |diff| ${worst}/255, ${bad} of ${width * width * 3} channels beyond 2/255`);
  assert.ok(bad <= 0.01 * width * width * 3, `${what}: ${bad} channels differ by more than 2/255 (max ${worst})`);
  assert.ok(new Set(expected.data).size > 4, `${what}: the image is not flat`);
}

type Status = { status?: string; message: string };
const statusOf = (page: Page): Promise<Status> =>
  page.evaluate(() => ({ status: document.body.dataset.status, message: document.getElementById('message')?.textContent ?? '' }));

/** Waits for body[data-status] to be "done" (asserts it) or "error". */
async function waitDone(page: Page, logs: string[], what: string): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.status === 'done' || document.body.dataset.status === 'error', null, { timeout: 180_000 })
    .catch((e) => { throw new Error(`${what}: ${(e as Error).message}\n${logs.join('\n')}`); });
  const s = await statusOf(page);
  assert.is(s.status, 'done', `${what}: ${s.message}\n${logs.join('\n')}`);
}

const lastFrame = (page: Page) => page.evaluate(() => Array.from(window.__gramhdLastFrame ?? []));
const frameLog = (page: Page) => page.evaluate(() => window.__gramhdFrameLog!);
const poseOf = (page: Page) => page.evaluate(() => (document.querySelector('gramhd-viewer') as unknown as { pose: { yaw: number; pitch: number } }).pose);

/** Drags across the canvas in `steps` moves of (dx, dy) pixels, each waiting for the frame it asks
 * for; resolves once the viewer is idle with the final frame of the pose the drag ended at. */
async function dragCanvas(page: Page, steps: number, dx: number, dy: number): Promise<void> {
  const box = (await page.locator('#view').boundingBox())!;
  const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
  const idleAfter = (n: number) => page.waitForFunction((count) => window.__gramhdFrameLog!.length > count && document.body.dataset.status === 'done'
    && !document.querySelector('gramhd-viewer')!.hasAttribute('data-busy'), n, { timeout: 180_000 });
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) {
    const n = (await frameLog(page)).length;
    await page.mouse.move(x + i * dx, y + i * dy);
    await idleAfter(n);
  }
  const n = (await frameLog(page)).length;
  await page.mouse.up();
  await idleAfter(n);
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

if (!existsSync(CHROMIUM)) {
  console.log(`  web demo test skipped: ${CHROMIUM} is missing (install Debian's chromium to run it)`);
  test.skip(`web demo in Chromium (skipped: ${CHROMIUM} is missing)`, () => {});
} else {
  test('web demo: GRAM-HD progressive frames, exports, device loss, seed control and drag; GRAM; error pages', async () => {
    const { chromium } = await import('playwright-core');
    const workDir = mkdtempSync(join(tmpdir(), 'gramhd-web-'));
    const hdCkpt = goldenCheckpoint('gramhd_small', workDir);
    const gramCkpt = goldenCheckpoint('gram_small', workDir);
    const bytes = readFileSync(hdCkpt);
    writeFileSync(join(workDir, 'truncated.safetensors'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const hd = await nodeRenders(hdCkpt, [SEED]);
    const gram = await nodeRenders(gramCkpt, [SEED]);

    const built = await buildWeb();
    console.log(`  bundle: ${Object.entries(built.bytes).map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KiB`).join(', ')}`);
    const server = await serveWeb({ mounts: { '/web/': join(process.cwd(), 'web'), '/ckpt/': workDir } });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    const logs: string[] = [];
    const open = async (query: string, init?: () => void): Promise<Page> => {
      const page = await browser.newPage();
      page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      await page.addInitScript(() => { window.__gramhdCapture = true; });
      if (init) await page.addInitScript(init);
      await page.goto(`${server.url}/web/index.html?${query}`);
      return page;
    };
    try {
      // --- GRAM-HD: the low-res frame, then the final one
      const page = await open(`ckpt=/ckpt/gramhd_small.safetensors&seed=${SEED}&yaw=${YAW}&pitch=${PITCH}&truncation=${PSI}&frames=2&stats=1`);
      await waitDone(page, logs, 'GRAM-HD first frame');
      const first = await page.evaluate(() => ({
        final: Array.from(window.__gramhdLastFrame ?? []), lowRes: Array.from(window.__gramhdLowResFrame ?? []),
        info: window.__gramhdLastFrameInfo!, log: window.__gramhdFrameLog!, lrMs: window.__gramhdFirstLowResMs!, hdMs: window.__gramhdFirstFrameMs!,
        stage: document.body.dataset.stage,
      }));
      console.log(`  GRAM-HD: low-res frame ${first.lrMs.toFixed(0)} ms, final ${first.hdMs.toFixed(0)} ms after the page script started; ${first.info.format}`);
      assert.equal(first.log.map((f) => f.stage), ['low-res', 'final']);
      assert.is(first.stage, 'final');
      assert.equal([first.info.width, first.info.height, first.info.imageWidth], [64, 64, 64]);
      assertMatches(first.lowRes, hd.get(SEED)!.lr!, 64, 'GRAM-HD low-res frame');
      assertMatches(first.final, hd.get(SEED)!.image, 64, 'GRAM-HD final frame');
      const bakeFrame = first.log[1];
      assert.ok(bakeFrame.baked && bakeFrame.bakeMs !== null && bakeFrame.viewMs !== null, 'the first final frame baked the seed');

      // orbit by dragging: every frame renders from the bake (final frames, no new bake), faster than
      // the bake; the final frame at the new pose is the full forward's at that pose
      const logged = first.log.length;
      await dragCanvas(page, 6, 8, 2);
      const orbit = (await frameLog(page)).slice(logged);
      assert.ok(orbit.length >= 2, `${orbit.length} frames while orbiting`);
      assert.ok(orbit.every((f) => f.stage === 'final' && !f.baked && f.bakeMs === bakeFrame.bakeMs), `frames from the bake: ${JSON.stringify(orbit)}`);
      const orbitMs = orbit.map((f) => f.frameMs);
      console.log(`  GRAM-HD orbit on SwiftShader: bake ${bakeFrame.bakeMs!.toFixed(0)} ms (first final frame ${bakeFrame.frameMs.toFixed(0)} ms, `
        + `its view ${bakeFrame.viewMs!.toFixed(0)} ms); ${orbit.length} frames from the bake: median ${median(orbitMs).toFixed(0)} ms, `
        + `max ${Math.max(...orbitMs).toFixed(0)} ms (views ${orbit.map((f) => f.viewMs!.toFixed(0)).join(', ')} ms)`);
      assert.ok(median(orbitMs) < bakeFrame.bakeMs!, `frames from the bake (median ${median(orbitMs)} ms) are not faster than the bake (${bakeFrame.bakeMs} ms)`);
      const orbitPose = await poseOf(page);
      assert.ok(Math.abs(orbitPose.yaw - YAW) > 0.05, `yaw ${orbitPose.yaw} did not move from ${YAW}`);
      // (the next seed is rendered at this pose too, after Retry below)
      const orbited = await nodeRenders(hdCkpt, [SEED, SEED + 1], orbitPose);
      const orbitFrame = await lastFrame(page);
      assertMatches(orbitFrame, orbited.get(SEED)!.image, 64, `GRAM-HD final frame after orbiting to yaw ${orbitPose.yaw.toFixed(3)}, pitch ${orbitPose.pitch.toFixed(3)}`);
      const stats = await page.evaluate(() => ({
        overlay: document.querySelector('gramhd-viewer .gramhd-stats')?.textContent ?? null, body: { ...document.body.dataset },
      }));
      console.log(`  stats overlay: ${JSON.stringify(stats.overlay)}; body data: bake ${stats.body.bakeMs} ms, view ${stats.body.viewMs} ms`);
      assert.match(stats.overlay ?? '', /frame [\d.]+ ms[^]*view [\d.]+ ms, bake [\d.]+ ms/);
      assert.is(Number(stats.body.bakeMs), Number(bakeFrame.bakeMs!.toFixed(1)));
      assert.is(Number(stats.body.viewMs), Number(orbit[orbit.length - 1].viewMs!.toFixed(1)));

      // PNG export: the frame on the canvas
      const pngDownload = page.waitForEvent('download', { timeout: 60_000 });
      await page.click('#export-png');
      const png = PNG.sync.read(readFileSync((await (await pngDownload).path())!));
      assert.equal([png.width, png.height], [64, 64]);
      assert.equal(Array.from(png.data), orbitFrame, 'the exported PNG is the frame on the canvas');

      // MP4 export (2 frames): an H.264 MP4, or the page says why not
      const mp4Support = await page.evaluate(async () => {
        if (typeof VideoEncoder === 'undefined') return false;
        return (await VideoEncoder.isConfigSupported({ codec: 'avc1.42001f', width: 64, height: 64 })).supported === true;
      });
      if (mp4Support) {
        const mp4Download = page.waitForEvent('download', { timeout: 120_000 });
        await page.click('#export-mp4');
        const mp4 = readFileSync((await (await mp4Download).path())!);
        console.log(`  MP4 export: ${mp4.length} bytes; ${await page.textContent('#export-status')}`);
        assert.ok(mp4.length > 100);
        assert.is(mp4.subarray(4, 8).toString('latin1'), 'ftyp');
        assert.ok(mp4.includes(Buffer.from('avc1')) && mp4.includes(Buffer.from('avcC')), 'an avc1 track');
        if (existsSync('/usr/bin/ffprobe')) {
          const mp4Path = join(workDir, 'turntable.mp4');
          writeFileSync(mp4Path, mp4);
          const probe = spawnSync('/usr/bin/ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
            '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', mp4Path], { encoding: 'utf8' });
          const stream = JSON.parse(probe.stdout).streams[0];
          assert.equal([stream.codec_name, stream.width, stream.height, Number(stream.nb_read_frames)], ['h264', 64, 64, 2], probe.stderr);
        }
      } else {
        console.log('  MP4 export: this Chromium has no H.264 encoder (checking the message only)');
      }
      // the path of a browser without H.264: a clear message, the page still working
      await page.evaluate(() => { VideoEncoder.isConfigSupported = async () => ({ supported: false }); });
      await page.click('#export-mp4');
      await page.waitForFunction(() => document.getElementById('export-status')!.classList.contains('error'), null, { timeout: 30_000 });
      assert.match((await page.textContent('#export-status'))!, /MP4 export is not available: this browser cannot encode H\.264/);
      assert.is((await statusOf(page)).status, 'done');

      // the seed control renders the next seed; the device is lost as its low-res frame arrives: the
      // message and Retry, which makes a new device and renders that seed's final frame
      await page.evaluate(() => document.getElementById('viewer')!.addEventListener('frame', (e) => {
        if ((e as CustomEvent<{ stage: string }>).detail.stage === 'low-res') window.__gramhdTest!.loseDevice();
      }, { once: true }));
      await page.click('#seed-next');
      await page.waitForFunction(() => document.body.dataset.status === 'error', null, { timeout: 180_000 });
      const lost = await statusOf(page);
      assert.match(lost.message, /GPU device was lost.*Retry/);
      assert.ok(await page.isVisible('#retry'));
      await page.click('#retry');
      await waitDone(page, logs, 'after Retry');
      assert.equal(await page.evaluate(() => [window.__gramhdLastFrameInfo!.seed, window.__gramhdLastFrameInfo!.stage]), [SEED + 1, 'final']);
      assert.is(await page.getAttribute('#viewer', 'seed'), String(SEED + 1));
      assert.is(await page.inputValue('#seed'), String(SEED + 1));
      assertMatches(await lastFrame(page), orbited.get(SEED + 1)!.image, 64, `seed ${SEED + 1} after Retry`);

      // drag across the canvas (on the new device): final frames from the seed's bake, a new view
      const before = await lastFrame(page);
      const frames = (await frameLog(page)).length;
      await dragCanvas(page, 2, 30, 5);
      const afterDrag = await page.evaluate(() => ({ log: window.__gramhdFrameLog!, stage: window.__gramhdLastFrameInfo!.stage }));
      assert.is(afterDrag.stage, 'final');
      assert.ok(afterDrag.log.slice(frames).every((f) => f.stage === 'final' && !f.baked), 'frames from the bake while dragging');
      const after = await lastFrame(page);
      assert.ok(after.some((v, i) => v !== before[i]), 'the view did not change after the drag');
      const pose = await poseOf(page);
      assert.ok(Math.abs(pose.yaw - orbitPose.yaw) > 0.05, `yaw ${pose.yaw} did not move from ${orbitPose.yaw}`);
      console.log(`  after drag: yaw ${pose.yaw.toFixed(3)}, pitch ${pose.pitch.toFixed(3)}, ${afterDrag.log.length - frames} frames`);
      await page.close();

      // --- GRAM: one frame, no low-res stage
      const gramPage = await open(`ckpt=/ckpt/gram_small.safetensors&seed=${SEED}&yaw=${YAW}&pitch=${PITCH}&truncation=${PSI}`);
      await waitDone(gramPage, logs, 'GRAM frame');
      assert.equal(await gramPage.evaluate(() => window.__gramhdFrameLog!.map((f) => f.stage)), ['final']);
      assertMatches(await lastFrame(gramPage), gram.get(SEED)!.image, 16, 'GRAM frame');
      await gramPage.close();

      // --- failures end in status "error" with the message on the page
      const failed = async (query: string, init?: () => void): Promise<Status> => {
        const p = await open(query, init);
        await p.waitForFunction(() => document.body.dataset.status !== 'loading', null, { timeout: 60_000 });
        const s = await statusOf(p);
        await p.close();
        return s;
      };
      const missing = await failed('ckpt=/ckpt/missing.safetensors');
      assert.is(missing.status, 'error');
      assert.match(missing.message, /missing\.safetensors: HTTP 404/);
      const truncated = await failed('ckpt=/ckpt/truncated.safetensors');
      assert.is(truncated.status, 'error');
      assert.match(truncated.message, /^Error: truncated\.safetensors: /);
      console.log(`  truncated checkpoint: ${truncated.message}`);
      const noGpu = await failed('ckpt=/ckpt/gram_small.safetensors', () => Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true }));
      assert.is(noGpu.status, 'error');
      assert.match(noGpu.message, /does not support WebGPU/);
      const noAdapter = await failed('ckpt=/ckpt/gram_small.safetensors', () => { navigator.gpu.requestAdapter = async () => null; });
      assert.is(noAdapter.status, 'error');
      assert.match(noAdapter.message, /has WebGPU but offers no GPU adapter/);
    } finally {
      await browser.close();
      await server.close();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
}

test.run();
