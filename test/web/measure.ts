// Web measurements (not a test; run by hand: npx tsx test/web/measure.ts [--shot /tmp/web-shot.png]):
// the bundle's size (raw and gzip, per file and what the demo loads before its first frame), and
// in headless Chromium (WebGPU on SwiftShader) the time to the first low-res and final frame of the
// golden GRAM-HD generator and of every checkpoint in ckpts/, cold (a fresh page: pipelines compile)
// and warm (the next seed, progressive and not), then a screenshot of the demo page (the frame shown
// through an <img>, since a headless WebGPU canvas cannot be screenshot).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { buildWeb, repoRoot, serveWeb } from '../../web/serve.ts';
import { goldenCheckpoint } from './golden-checkpoint.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--enable-features=Vulkan', '--use-angle=vulkan', '--disable-background-networking', '--no-first-run'];
const at = process.argv.indexOf('--shot');
const shotPath = at >= 0 ? process.argv[at + 1] : '/tmp/web-shot.png';

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** The files an entry loads before it runs: itself and its static imports, transitively. */
function staticClosure(dir: string, file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const code = readFileSync(join(dir, file), 'utf8');
  for (const m of code.matchAll(/(?:from|import)\s*"\.\/([\w.-]+\.js)"/g)) staticClosure(dir, m[1], seen);
  return seen;
}

async function bundleSizes(): Promise<void> {
  const { outdir } = await buildWeb();
  const files = readdirSync(outdir).filter((f) => f.endsWith('.js')).sort();
  const size = (f: string) => {
    const bytes = readFileSync(join(outdir, f));
    return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  };
  console.log('bundle (web/dist, minified ES modules):');
  for (const f of files) {
    const s = size(f);
    console.log(`  ${f.padEnd(22)} ${String(s.raw).padStart(8)} B (${kib(s.raw)}), gzip ${String(s.gzip).padStart(7)} B (${kib(s.gzip)})`);
  }
  for (const entry of ['demo.js', 'gramhd.js']) {
    const closure = [...staticClosure(outdir, entry)];
    const raw = closure.reduce((n, f) => n + size(f).raw, 0);
    const gz = closure.reduce((n, f) => n + size(f).gzip, 0);
    console.log(`  ${entry} loads ${closure.length} files before running: ${raw} B (${kib(raw)}), gzip ${gz} B (${kib(gz)}); mp4-muxer's chunk only on the first MP4 export`);
  }
}

type Log = { stage: string; seed: number; ms: number }[];

async function waitFinal(page: Page, count: number): Promise<Log> {
  await page.waitForFunction((n) => document.body.dataset.status === 'error'
    || (window.__gramhdFrameLog ?? []).filter((f) => f.stage === 'final').length >= n, count, { timeout: 600_000 });
  const status = await page.evaluate(() => ({ s: document.body.dataset.status, m: document.getElementById('message')!.textContent }));
  if (status.s === 'error') throw new Error(status.m ?? 'error');
  return page.evaluate(() => window.__gramhdFrameLog!);
}

async function measure(browser: Browser, url: string, name: string, shot: boolean): Promise<void> {
  const page = await browser.newPage({ viewport: { width: 720, height: 560 } });
  try {
    await page.goto(`${url}&seed=0&yaw=0.2&pitch=0&truncation=0.7&frames=4`);
    let log = await waitFinal(page, 1);
    const started = await page.evaluate(() => window.__gramhdStartedMs!);
    const info = await page.evaluate(() => {
      const v = document.querySelector('gramhd-viewer') as unknown as { loadedModel: { config: { img_size: number; lr_img_size?: number } } };
      return v.loadedModel.config;
    });
    const lr = log.find((f) => f.stage === 'low-res');
    const hd = log.find((f) => f.stage === 'final')!;
    const fromNav = (ms: number) => (ms + started).toFixed(0);
    console.log(`${name} (${info.lr_img_size ? `low-res ${info.lr_img_size}, ` : ''}final ${info.img_size}x${info.img_size}):`);
    console.log(`  cold (fresh page, pipelines compile): ${lr ? `low-res frame ${fromNav(lr.ms)} ms, ` : ''}final frame ${fromNav(hd.ms)} ms after navigation (script started at ${started.toFixed(0)} ms)`);
    // warm: the next seed, progressive, then with progressive="false"
    for (const progressive of [true, false]) {
      await page.evaluate((p) => document.getElementById('viewer')!.setAttribute('progressive', String(p)), progressive);
      const n = log.length;
      const finals = log.filter((f) => f.stage === 'final').length;
      const clicked = await page.evaluate(() => { document.getElementById('seed-next')!.click(); return performance.now() - window.__gramhdStartedMs!; });
      log = await waitFinal(page, finals + 1);
      const fresh = log.slice(n);
      const l = fresh.find((f) => f.stage === 'low-res');
      const f = fresh.find((x) => x.stage === 'final')!;
      console.log(`  warm, seed ${f.seed}${progressive ? '' : ', progressive="false"'}: ${l ? `low-res frame ${(l.ms - clicked).toFixed(0)} ms, ` : ''}final frame ${(f.ms - clicked).toFixed(0)} ms after the click`);
    }
    if (shot) {
      await page.waitForFunction(() => document.body.dataset.status === 'done' && !document.getElementById('viewer')!.hasAttribute('data-busy'));
      await page.evaluate(() => window.__gramhdTest!.showShot());
      await page.screenshot({ path: shotPath });
      console.log(`  screenshot of the demo page: ${shotPath}`);
    }
  } finally {
    await page.close();
  }
}

await bundleSizes();
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-measure-'));
goldenCheckpoint('gramhd_small', workDir);
const shipped = readdirSync(join(repoRoot, 'ckpts')).filter((f) => f.endsWith('.safetensors'));
const server = await serveWeb({ mounts: { '/web/': join(repoRoot, 'web'), '/ckpt/': workDir, '/ckpts/': join(repoRoot, 'ckpts') } });
const { chromium } = await import('playwright-core');
const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
try {
  const probe = await browser.newPage();
  await probe.goto(`${server.url}/web/index.html`); // a secure context (navigator.gpu)
  const adapter = await probe.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? [a.info.vendor, a.info.architecture, a.info.device, a.info.description].filter(Boolean).join(' ') : 'none';
  });
  await probe.close();
  console.log(`Chromium ${browser.version()}, WebGPU adapter: ${adapter}`);
  await measure(browser, `${server.url}/web/index.html?ckpt=/ckpt/gramhd_small.safetensors`, 'golden gramhd_small', true);
  if (shipped.length === 0) console.log('ckpts/: no shipped checkpoint to measure');
  for (const f of shipped) await measure(browser, `${server.url}/web/index.html?ckpt=/ckpts/${f}`, `ckpts/${basename(f)}`, false);
} finally {
  await browser.close();
  await server.close();
  rmSync(workDir, { recursive: true, force: true });
}
