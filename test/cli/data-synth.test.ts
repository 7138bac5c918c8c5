// `gramhd data synth` end to end (8 heads at 32x32 into a temp folder) and the head renderer itself:
// files and .npy contents, determinism, framing, the camera (a yaw change mirrors the silhouette) and
// the ground-truth depth.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from '../helpers/gpu.ts';
import { repoRoot } from '../helpers/golden.ts';
import { decodePng } from '../../train/image-io.ts';
import { AFHQ_PITCH_OFFSET, synthName } from '../../cli/commands/data.ts';
import { MAX_PITCH_OFFSET, MAX_YAW_OFFSET, renderHeads, synthSample, type SynthSample } from '../../model/synth/heads.ts';
import { encodeNpy } from '../../train/npy.ts';
import { parseNpy } from '../../train/pose-files.ts';

void gpu;
const workDir = mkdtempSync(join(tmpdir(), 'gramhd-synth-'));
const SIZE = 32;
const COUNT = 8;
const SEED = 3;

function synth(out: string, seed: number) {
  const run = spawnSync(process.execPath, ['bin/gramhd.js', 'data', 'synth', '--out', out, '--count', String(COUNT), '--size', String(SIZE), '--seed', String(seed), '--depth', '--batch', '5'], {
    cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  assert.is(run.status, 0, run.stderr);
  return run;
}

const first = join(workDir, 'a');
const firstRun = synth(first, SEED);
const names = Array.from({ length: COUNT }, (_, i) => synthName(i, COUNT));

/** Foreground mask from a depth map (0 = background). */
const mask = (depth: ArrayLike<number>) => Array.from(depth, (d) => (d > 0 ? 1 : 0));

/** The centroid (column, row) and count of the set pixels of a mask. */
function centroid(m: number[], size: number): { x: number; y: number; n: number } {
  let x = 0;
  let y = 0;
  let n = 0;
  m.forEach((v, p) => {
    if (!v) return;
    x += p % size;
    y += Math.floor(p / size);
    n++;
  });
  return { x: x / n, y: y / n, n };
}

test('data synth writes NNNNN.png, poses/NNNNN_pose.npy and depth/NNNNN.npy with a progress line', () => {
  assert.equal(readdirSync(first).filter((f) => f.endsWith('.png')).sort(), names.map((n) => `${n}.png`));
  assert.equal(readdirSync(join(first, 'poses')).sort(), names.map((n) => `${n}_pose.npy`));
  assert.equal(readdirSync(join(first, 'depth')).sort(), names.map((n) => `${n}.npy`));
  assert.match(firstRun.stderr, /8\/8 images/);
  for (const name of names) {
    const image = decodePng(new Uint8Array(readFileSync(join(first, `${name}.png`))));
    assert.is(image.width, SIZE);
    assert.is(image.height, SIZE);
    const depth = parseNpy(new Uint8Array(readFileSync(join(first, 'depth', `${name}.npy`))));
    assert.equal(depth.shape, [SIZE, SIZE]);
  }
});

test('pose files hold (pitch - 0.14, yaw) of the seeded draw, so the AFHQ loader gets the pose back', () => {
  for (let i = 0; i < COUNT; i++) {
    const pose = parseNpy(new Uint8Array(readFileSync(join(first, 'poses', `${names[i]}_pose.npy`))));
    assert.equal(pose.shape, [2]);
    const { pitch, yaw } = synthSample(SEED, i);
    assert.is(pose.data[0], pitch - AFHQ_PITCH_OFFSET);
    assert.is(pose.data[1], yaw);
    assert.ok(Math.abs(pitch - Math.PI / 2) <= MAX_PITCH_OFFSET && Math.abs(yaw - Math.PI / 2) <= MAX_YAW_OFFSET);
  }
  // the draws are spread like the FFHQ gaussian, not all frontal
  const yaws = Array.from({ length: 64 }, (_, i) => synthSample(SEED, i).yaw);
  const mean = yaws.reduce((a, b) => a + b, 0) / yaws.length;
  const std = Math.sqrt(yaws.reduce((a, b) => a + (b - mean) ** 2, 0) / yaws.length);
  assert.ok(Math.abs(mean - Math.PI / 2) < 0.12 && std > 0.2 && std < 0.4, `yaw mean ${mean}, std ${std}`);
});

test('encodeNpy writes NumPy 1.0 headers padded to 64 bytes that parse back', () => {
  const bytes = encodeNpy(new Float32Array([1.5, -2, 3, 4, 5, 6]), [2, 3]);
  assert.is((10 + new DataView(bytes.buffer).getUint16(8, true)) % 64, 0);
  const back = parseNpy(bytes);
  assert.equal(back.shape, [2, 3]);
  assert.equal([...back.data], [1.5, -2, 3, 4, 5, 6]);
});

test('the same seed gives identical files, another seed different images', async () => {
  const second = join(workDir, 'b');
  synth(second, SEED);
  for (const rel of [...names.map((n) => `${n}.png`), ...names.map((n) => `poses/${n}_pose.npy`), ...names.map((n) => `depth/${n}.npy`)]) {
    assert.ok(readFileSync(join(first, rel)).equals(readFileSync(join(second, rel))), `${rel} differs between two runs with one seed`);
  }
  // image i does not depend on the batch size (the CLI ran batches of 5)
  const { images } = await renderHeads([synthSample(SEED, 6)], SIZE);
  assert.equal([...images[0]], [...decodePng(new Uint8Array(readFileSync(join(first, `${names[6]}.png`)))).data]);
  const other = await renderHeads([synthSample(SEED + 1, 0)], SIZE);
  assert.not.equal([...other.images[0]], [...images[0]]);
  assert.not.equal(synthSample(SEED + 1, 0).yaw, synthSample(SEED, 0).yaw);
});

test('heads are centred: foreground (depth > 0 and colour unlike the background) around the image centre', () => {
  for (let i = 0; i < COUNT; i++) {
    const { head } = synthSample(SEED, i);
    const image = decodePng(new Uint8Array(readFileSync(join(first, `${names[i]}.png`))));
    const depth = parseNpy(new Uint8Array(readFileSync(join(first, 'depth', `${names[i]}.npy`)))).data;
    // the background colour of each row: sqrt(lerp(top^2, bottom^2, v)), v = (1 - y) / 2, y in linspace(1, -1)
    const differs = Array.from({ length: SIZE * SIZE }, (_, p) => {
      const v = Math.floor(p / SIZE) / (SIZE - 1);
      return [0, 1, 2].some((c) => {
        const bg = Math.sqrt(head.backgroundTop[c] ** 2 * (1 - v) + head.backgroundBottom[c] ** 2 * v) * 255;
        return Math.abs(image.data[p * 3 + c] - bg) > 8;
      }) ? 1 : 0;
    });
    const byDepth = mask(depth);
    for (const m of [byDepth, differs]) {
      const c = centroid(m, SIZE);
      // analytic: the head is symmetric about the image's vertical axis up to the yaw (|yaw| <= 0.9
      // moves the hair behind it sideways); the neck and shoulders pull the centroid below the centre
      assert.ok(Math.abs(c.x - (SIZE - 1) / 2) < SIZE * 0.15, `image ${i}: centroid column ${c.x}`);
      assert.ok(c.y > SIZE * 0.35 && c.y < SIZE * 0.7, `image ${i}: centroid row ${c.y}`);
      assert.ok(c.n > SIZE * SIZE * 0.3 && c.n < SIZE * SIZE * 0.85, `image ${i}: ${c.n} foreground pixels`);
    }
    // colour foreground and depth foreground agree on most pixels
    const agree = byDepth.filter((v, p) => v === differs[p]).length;
    assert.ok(agree > SIZE * SIZE * 0.9, `image ${i}: masks agree on ${agree} pixels`);
    // the top corners are background
    for (const p of [0, SIZE - 1]) assert.is(depth[p], 0);
  }
});

test('a yaw change moves the silhouette: yaw pi/2 +- 0.3 mirror each other left to right', async () => {
  const base = synthSample(SEED, 2);
  const at = (yaw: number): SynthSample => ({ ...base, pitch: Math.PI / 2, yaw });
  const { depths } = await renderHeads([at(Math.PI / 2 + 0.3), at(Math.PI / 2 - 0.3)], SIZE, { depth: true });
  const [right, left] = depths!;
  let moved = 0;
  let mirrored = 0;
  for (let row = 0; row < SIZE; row++) {
    for (let col = 0; col < SIZE; col++) {
      const a = right[row * SIZE + col] > 0;
      if (a !== left[row * SIZE + col] > 0) moved++;
      if (a !== left[row * SIZE + SIZE - 1 - col] > 0) mirrored++;
    }
  }
  // the head is mirror-symmetric in x and the two cameras are mirror images across x = 0
  assert.ok(moved > 20, `only ${moved} silhouette pixels changed`);
  assert.ok(mirrored <= 4, `${mirrored} pixels break the mirror symmetry`);
  // the camera at yaw pi/2 + 0.3 sits at -x; world +x (where the face turns) shows on the image's right
  const near = (d: Float32Array) => {
    const fg = [...d].filter((v) => v > 0).sort((a, b) => a - b);
    const cut = fg[Math.floor(fg.length * 0.1)];
    return centroid(Array.from(d, (v) => (v > 0 && v <= cut ? 1 : 0)), SIZE).x;
  };
  assert.ok(near(right) > (SIZE - 1) / 2 && near(left) < (SIZE - 1) / 2, `nearest points at columns ${near(right)}, ${near(left)}`);
});

test('ground-truth depth: distance along the ray, ~radius - head front at the centre', async () => {
  const frontal = { ...synthSample(SEED, 0), pitch: Math.PI / 2, yaw: Math.PI / 2 };
  const { depths } = await renderHeads([frontal], SIZE, { depth: true, supersample: 1 });
  const d = depths![0];
  const c = SIZE / 2;
  const centre = (d[(c - 1) * SIZE + c - 1] + d[(c - 1) * SIZE + c] + d[c * SIZE + c - 1] + d[c * SIZE + c]) / 4;
  // the face's front lies ~0.07-0.09 in front of the origin (head radius ~0.1), the camera at radius 1
  assert.ok(centre > 0.88 && centre < 0.95, `centre depth ${centre}`);
  // every hit lies inside the sphere of radius 0.16 around the origin that bounds the heads
  for (const v of d) assert.ok(v === 0 || (v > 0.84 && v < 1.16), `depth ${v}`);
});

test.after(() => rmSync(workDir, { recursive: true, force: true }));

test.run();
