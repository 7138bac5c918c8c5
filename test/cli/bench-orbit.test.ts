// `gramhd bench orbit` on the golden gramhd_small configuration (16x16 manifolds, x2 to 32x32 with
// --img_size): the bake, views from it and the full forward, the views equal to the forward, and
// the table; GRAM configurations are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenDir, repoRoot } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));
const { note: _note, ...hdConfig } = manifest.gramhd_small.config as Record<string, unknown>;
const bench = (...args: string[]) => spawnSync(process.execPath, ['bin/gramhd.js', 'bench', 'orbit', ...args],
  { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, timeout: 240_000 });

test('bench orbit --json: bake, views, full forward, equivalence, texture bytes', () => {
  const run = bench('--config', JSON.stringify(hdConfig), '--img_size', '32', '--views', '3', '--stages', '--json');
  assert.is(run.status, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal([r.imgSize, r.lrImgSize], [32, 16]);
  assert.ok(r.bake.totalMs > 0 && r.full.totalMs > 0 && r.bake.peakInUseBytes > 0);
  assert.equal(r.bake.stages.map((s: { stage: string }) => s.stage), ['mapping', 'gridding + feature radiance', 'SR (StyleRRDBNet)', 'SR background (RRDBNet)']);
  assert.equal(r.viewStages.stages.map((s: { stage: string }) => s.stage), ['sample network + intersection', 'high-res sampling + compositing']);
  assert.is(r.view.ms.length, 3);
  assert.ok(r.view.medianMs > 0 && r.viewLowRes.medianMs > 0);
  // 7 textures of 4 channels and the background's 3, 32^2 float32 each; the codes are the rest
  assert.is(r.textureBytes.float32, (7 * 4 + 3) * 32 * 32 * 4);
  assert.ok(r.bakeHeldBytes >= r.textureBytes.float32 && r.bakeHeldBytes < r.textureBytes.float32 + 64 * 1024);
  for (const err of Object.values(r.equivalence) as number[]) assert.ok(err <= 1e-6, `view vs forward: ${err}`);
  assert.ok(r.f16.relErr > 0 && r.f16.relErr < 2e-3);
  assert.ok(r.video.speedup > 0);
});

test('bench orbit table; a GRAM configuration is refused', () => {
  const run = bench('--config', JSON.stringify(hdConfig), '--img_size', '32', '--views', '2');
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stdout, /^bake \(once per latent\)\s+\d+\.\d+ s/m);
  assert.match(run.stdout, /^video \(60 frames\): 60 full forwards/m);
  const gram = bench('--config', 'GRAM64_FFHQ');
  assert.is.not(gram.status, 0);
  assert.match(gram.stderr, /not a GRAM-HD configuration/);
});

test.run();
