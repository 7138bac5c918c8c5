// Dataset reading: pose files (.mat / .npy) from our own minimal writers (checked against scipy and
// numpy when python3 has them), image decoding, Pillow-exact Lanczos, both dataset layouts with
// flips, the prefetching loader, and the error messages for broken inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { epochOrder, openDataset, type ImageDataset } from '../../train/dataset.ts';
import { decodeImage } from '../../train/image-decode.ts';
import { lanczos3, resizeLanczos } from '../../train/lanczos.ts';
import { createLoader, type Batch, type LoaderOptions } from '../../train/loader.ts';
import { parseMat, parseNpy, readMatAngle, readNpyPose } from '../../train/pose-files.ts';

// ---------------------------------------------------------------- minimal writers

function u32(values: number[]): Uint8Array {
  return new Uint8Array(Uint32Array.from(values).buffer);
}

/** A MAT data element: 8-byte tag, payload, zero padding to 8 bytes. */
function matElement(type: number, payload: Uint8Array): Uint8Array {
  const padded = new Uint8Array(8 + Math.ceil(payload.length / 8) * 8);
  padded.set(u32([type, payload.length]), 0);
  padded.set(payload, 8);
  return padded;
}

/** A small data element (<= 4 bytes of payload packed into the tag word). */
function matSmallElement(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8);
  out.set(u32([(payload.length << 16) | type]), 0);
  out.set(payload, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A level-5 MAT file holding a 1 x n real array `name` (double, or single when asked). */
function writeMat(vars: Array<{ name: string; values: number[]; single?: boolean }>, compressed: boolean): Uint8Array {
  const header = new Uint8Array(128).fill(0x20);
  header.set(new TextEncoder().encode('MATLAB 5.0 MAT-file, written by gramhd tests'), 0);
  header.fill(0, 116, 124); // subsystem data offset
  header.set([0x00, 0x01, 0x49, 0x4d], 124); // version 0x0100, 'IM' (little-endian)
  const elements = vars.map(({ name, values, single }) => {
    const nameBytes = new TextEncoder().encode(name);
    const real = single
      ? matElement(7, new Uint8Array(Float32Array.from(values).buffer))
      : matElement(9, new Uint8Array(Float64Array.from(values).buffer));
    const matrix = matElement(
      14,
      concat([
        matElement(6, u32([single ? 7 : 6, 0])), // array flags: mxSINGLE_CLASS / mxDOUBLE_CLASS
        matElement(5, new Uint8Array(Int32Array.from([1, values.length]).buffer)), // dimensions
        nameBytes.length <= 4 ? matSmallElement(1, nameBytes) : matElement(1, nameBytes),
        real,
      ]),
    );
    if (!compressed) return matrix;
    const z = deflateSync(matrix);
    return concat([u32([15, z.length]), z]); // miCOMPRESSED, unpadded
  });
  return concat([header, ...elements]);
}

/** A version-1 .npy file of a 1-D little-endian float32 or float64 array. */
function writeNpy(values: number[], dtype: 'f4' | 'f8', shape: number[] = [values.length]): Uint8Array {
  let header = `{'descr': '<${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header = header.padEnd(header.length + ((64 - (total % 64)) % 64), ' ') + '\n';
  const data = dtype === 'f4' ? new Float32Array(values) : new Float64Array(values);
  const prefix = new Uint8Array(10);
  prefix.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(prefix.buffer).setUint16(8, header.length, true);
  return concat([prefix, new TextEncoder().encode(header), new Uint8Array(data.buffer)]);
}

/** An RGB image as interleaved bytes, from a per-pixel function. */
function makeRgb(w: number, h: number, f: (x: number, y: number, c: number) => number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = f(x, y, c);
  return out;
}

function writePng(w: number, h: number, rgb: Uint8Array, alpha?: (i: number) => number, colorType: 0 | 2 | 6 = 2): Uint8Array {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    png.data[i * 4] = rgb[i * 3];
    png.data[i * 4 + 1] = rgb[i * 3 + 1];
    png.data[i * 4 + 2] = rgb[i * 3 + 2];
    png.data[i * 4 + 3] = alpha ? alpha(i) : 255;
  }
  return new Uint8Array(PNG.sync.write(png, { colorType }));
}

// ---------------------------------------------------------------- python helpers

/** Runs a python3 snippet; null when python3 or a module it imports is missing. */
function python(script: string): string | null {
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    if (/ModuleNotFoundError|ENOENT/.test(`${r.stderr}${r.error}`)) return null;
    throw new Error(`python3 failed: ${r.stderr}`);
  }
  return r.stdout;
}

const tmp = mkdtempSync(join(tmpdir(), 'gramhd-dataset-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Float32 of the dataset's normalisation: ToTensor (u / 255) then (x - 0.5) / 0.5. */
const unit = (u: number): number => Math.fround(Math.fround(Math.fround(u / 255) - 0.5) / 0.5);

// ---------------------------------------------------------------- pose files

test('.mat reader: uncompressed and zlib-compressed, double and single, small-element names', () => {
  for (const compressed of [false, true]) {
    const bytes = writeMat(
      [
        { name: 'id', values: [7, 8], single: true }, // 2-byte name: small data element format
        { name: 'angle', values: [0.3, -0.2, 0.05] },
      ],
      compressed,
    );
    const vars = parseMat(bytes);
    assert.equal(vars.get('angle')?.shape, [1, 3]);
    assert.equal(Array.from(vars.get('angle')!.data), [0.3, -0.2, 0.05]);
    assert.equal(Array.from(vars.get('id')!.data), [7, 8]);
    assert.equal(readMatAngle('a.mat', bytes), [0.3, -0.2]);
  }
});

test('.npy reader: float32 and float64', () => {
  assert.equal(Array.from(parseNpy(writeNpy([0.5, 1.25, -2], 'f8')).data), [0.5, 1.25, -2]);
  const f4 = parseNpy(writeNpy([0.1, 1.2], 'f4'));
  assert.equal(f4.shape, [2]);
  assert.equal(Array.from(f4.data), [Math.fround(0.1), Math.fround(1.2)]);
  assert.equal(readNpyPose('x_pose.npy', writeNpy([0.5, 1.2, 3], 'f8')), [0.5, 1.2]);
});

test('writers and readers agree with scipy.io / numpy (skipped without them)', () => {
  const dir = join(tmp, 'python');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'plain.mat'), writeMat([{ name: 'angle', values: [0.3, -0.2, 0.05] }], false));
  writeFileSync(join(dir, 'zipped.mat'), writeMat([{ name: 'angle', values: [0.3, -0.2, 0.05] }], true));
  writeFileSync(join(dir, 'ours.npy'), writeNpy([0.5, 1.2], 'f4'));
  const out = python(`
import json, numpy as np, scipy.io as sio
d = ${JSON.stringify(dir)}
res = {k: sio.loadmat(f'{d}/{k}.mat')['angle'].tolist() for k in ['plain', 'zipped']}
res['npy'] = np.load(f'{d}/ours.npy').tolist()
res['npy_dtype'] = str(np.load(f'{d}/ours.npy').dtype)
sio.savemat(f'{d}/scipy.mat', {'angle': np.array([[0.25, -0.5, 0.125]]), 'other': np.arange(6.0).reshape(2, 3)})
sio.savemat(f'{d}/scipy_z.mat', {'angle': np.array([[0.25, -0.5, 0.125]], dtype=np.float32)}, do_compression=True)
np.save(f'{d}/np8.npy', np.array([0.7, -1.1, 2.0]))
np.save(f'{d}/np4.npy', np.array([0.7, -1.1], dtype=np.float32))
with open(f'{d}/np_v2.npy', 'wb') as f:
    np.lib.format.write_array(f, np.array([0.7, -1.1]), version=(2, 0))
print(json.dumps(res))
`);
  if (out === null) {
    console.log('  (python3 with numpy and scipy not found: writer cross-check skipped)');
    return;
  }
  const res = JSON.parse(out);
  assert.equal(res.plain, [[0.3, -0.2, 0.05]]);
  assert.equal(res.zipped, [[0.3, -0.2, 0.05]]);
  assert.equal(res.npy, [Math.fround(0.5), Math.fround(1.2)]);
  assert.is(res.npy_dtype, 'float32');
  const read = (f: string) => readFileSync(join(dir, f));
  assert.equal(readMatAngle('scipy.mat', read('scipy.mat')), [0.25, -0.5]);
  const other = parseMat(read('scipy.mat')).get('other')!;
  assert.equal(other.shape, [2, 3]);
  assert.equal(Array.from(other.data), [0, 3, 1, 4, 2, 5]); // column-major
  assert.equal(readMatAngle('scipy_z.mat', read('scipy_z.mat')), [0.25, -0.5]);
  assert.equal(readNpyPose('np8.npy', read('np8.npy')), [0.7, -1.1]);
  assert.equal(readNpyPose('np4.npy', read('np4.npy')), [Math.fround(0.7), Math.fround(-1.1)]);
  assert.equal(readNpyPose('np_v2.npy', read('np_v2.npy')), [0.7, -1.1]);
});

test('pose-file errors name the file', () => {
  assert.throws(() => readMatAngle('poses/bad.mat', new Uint8Array(40)), /^poses\/bad.mat: not a MAT file/);
  const good = writeMat([{ name: 'angle', values: [1, 2, 3] }], true);
  const broken = good.slice();
  broken.fill(0x55, 140, 150); // inside the deflate stream
  assert.throws(() => readMatAngle('poses/z.mat', broken), /poses\/z.mat: corrupt compressed element/);
  assert.throws(() => readMatAngle('poses/t.mat', good.subarray(0, good.length - 5)), /poses\/t.mat: truncated/);
  assert.throws(() => readMatAngle('poses/n.mat', writeMat([{ name: 'pose', values: [1, 2] }], false)), /poses\/n.mat: no numeric 'angle' array/);
  assert.throws(() => readNpyPose('p_pose.npy', new TextEncoder().encode('hello')), /p_pose.npy: not a .npy file/);
});

// ---------------------------------------------------------------- images

test('PNG with alpha drops alpha; grey PNG becomes RGB; JPEG decodes', () => {
  const rgb = makeRgb(3, 2, (x, y, c) => 40 * x + 70 * y + 20 * c);
  const rgba = decodeImage('a.png', writePng(3, 2, rgb, (i) => 30 * i, 6));
  assert.equal([rgba.width, rgba.height, rgba.channels], [3, 2, 3]);
  assert.equal(Array.from(rgba.data), Array.from(rgb)); // colour kept, not premultiplied
  const grey = decodeImage('g.png', writePng(2, 2, makeRgb(2, 2, (x, y) => 60 * x + 100 * y), undefined, 0));
  for (let i = 0; i < 4; i++) {
    assert.is(grey.data[i * 3], grey.data[i * 3 + 1]);
    assert.is(grey.data[i * 3], grey.data[i * 3 + 2]);
  }
  const flat = new Uint8Array(16 * 16 * 4).map((_, i) => [200, 100, 50, 255][i % 4]);
  const jpg = jpeg.encode({ width: 16, height: 16, data: flat }, 100).data;
  const decoded = decodeImage('c.jpg', jpg);
  assert.equal([decoded.width, decoded.height, decoded.channels], [16, 16, 3]);
  for (let i = 0; i < 16 * 16; i++) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(decoded.data[i * 3 + c] - [200, 100, 50][c]) <= 2);
  }
  assert.throws(() => decodeImage('x.png', new Uint8Array([1, 2, 3])), /x.png: not a PNG or JPEG image/);
});

// ---------------------------------------------------------------- Lanczos

test('Lanczos 6 -> 2 matches Pillow\'s algorithm derived by hand in float64', () => {
  // One row of 6 pixels to 2 (no vertical pass). Pillow: scale = 3, support = 3 * 3 = 9, so each
  // output pixel sees all 6 inputs; output xx has centre (xx + 0.5) * 3 and input x weight
  // L((x - centre + 0.5) / 3), L(t) = sinc(t) sinc(t / 3); weights normalised, quantised to
  // round(w * 2^22), accumulated from 2^21 and shifted right by 22.
  const row = [
    [0, 255, 0],
    [255, 60, 200],
    [10, 20, 30],
    [40, 50, 60],
    [255, 255, 255],
    [0, 0, 0],
  ];
  const sinc = (t: number) => (t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t));
  const expected: number[] = [];
  for (const centre of [1.5, 4.5]) {
    const w = row.map((_, x) => sinc((x - centre + 0.5) / 3) * sinc((x - centre + 0.5) / 9));
    const total = w.reduce((a, b) => a + b, 0);
    const q = w.map((v) => Math.sign(v) * Math.floor(Math.abs(v / total) * 2 ** 22 + 0.5));
    for (let c = 0; c < 3; c++) {
      const acc = row.reduce((s, px, x) => s + px[c] * q[x], 2 ** 21);
      expected.push(Math.min(255, Math.max(0, Math.floor(acc / 2 ** 22))));
    }
  }
  const out = resizeLanczos({ width: 6, height: 1, channels: 3, data: Uint8Array.from(row.flat()) }, 2, 1);
  assert.equal(Array.from(out.data), expected);
  assert.equal(expected, [97, 106, 87, 102, 93, 110]); // Pillow 12.3 Image.resize((2, 1), LANCZOS)
  assert.is(lanczos3(3), 0);
  assert.ok(Math.abs(lanczos3(0.5) - (Math.sin(Math.PI / 2) / (Math.PI / 2)) * (Math.sin(Math.PI / 6) / (Math.PI / 6))) < 1e-15);
});

test('Lanczos matches Pillow 12.3 on 2-D down/up-scales (golden values)', () => {
  // Source pixel i (interleaved RGB) = (i * 97 + 13 * floor(i / 7)) % 256; expected values from
  // PIL.Image.frombytes('RGB', (w, h), src).resize((W, H), Image.LANCZOS).tobytes().
  const golden: Array<[number, number, number, number, number[]]> = [
    [7, 5, 3, 2, [42, 157, 128, 147, 166, 72, 146, 78, 179, 117, 184, 65, 178, 60, 157, 58, 134, 166]],
    [9, 4, 4, 7, [5, 106, 198, 98, 243, 35, 224, 90, 158, 68, 119, 140, 61, 152, 136, 134, 162, 96, 144, 131, 170, 96, 135, 100, 136, 195, 69, 165, 63, 173, 50, 172, 170, 142, 146, 67, 131, 126, 143, 96, 107, 152, 109, 126, 112, 167, 97, 146, 84, 79, 196, 58, 186, 95, 184, 65, 97, 147, 89, 202, 84, 160, 92, 142, 145, 109, 120, 81, 174, 112, 169, 131, 93, 228, 7, 210, 101, 130, 59, 106, 233, 91, 229, 67]],
    [20, 16, 6, 5, [114, 129, 103, 145, 115, 137, 125, 159, 92, 119, 123, 169, 122, 137, 123, 96, 109, 157, 157, 103, 147, 131, 116, 107, 133, 122, 136, 125, 148, 137, 112, 122, 157, 117, 133, 119, 138, 127, 115, 145, 104, 137, 131, 103, 103, 124, 122, 127, 124, 141, 134, 103, 117, 156, 156, 114, 151, 139, 117, 115, 136, 114, 131, 132, 156, 100, 115, 128, 124, 125, 135, 126, 142, 135, 114, 151, 104, 145, 136, 133, 108, 128, 132, 128, 132, 146, 94, 105, 119, 127]],
  ];
  for (const [w, h, W, H, expected] of golden) {
    const src = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 97 + 13 * Math.floor(i / 7)) % 256);
    const out = resizeLanczos({ width: w, height: h, channels: 3, data: src }, W, H);
    assert.equal(Array.from(out.data), expected, `${w}x${h} -> ${W}x${H}`);
  }
});

// ---------------------------------------------------------------- datasets

/** A 4x4 test image whose pixels are all distinct per row position. */
const pixels = (seed: number) => makeRgb(4, 4, (x, y, c) => (seed * 50 + x * 60 + y * 13 + c * 5) % 256);

function collectWarnings(): { warn: (m: string) => void; messages: string[] } {
  const messages: string[] = [];
  return { warn: (m) => messages.push(m), messages };
}

test('FFHQ layout: poses, flips, PNG with alpha, JPEG, skipped files', () => {
  const dir = join(tmp, 'ffhq');
  mkdirSync(join(dir, 'poses'), { recursive: true });
  writeFileSync(join(dir, 'a.png'), writePng(4, 4, pixels(0)));
  writeFileSync(join(dir, 'b.png'), writePng(4, 4, pixels(1), (i) => i * 16, 6));
  const flat = new Uint8Array(4 * 4 * 4).map((_, i) => [120, 30, 220, 255][i % 4]);
  writeFileSync(join(dir, 'c.jpg'), jpeg.encode({ width: 4, height: 4, data: flat }, 100).data);
  writeFileSync(join(dir, 'd.png'), writePng(4, 4, pixels(3))); // no pose file
  writeFileSync(join(dir, 'e.png'), writePng(4, 4, pixels(4))); // corrupt pose file
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
  writeFileSync(join(dir, 'poses', 'a.mat'), writeMat([{ name: 'angle', values: [0.3, -0.2, 0.05] }], false));
  writeFileSync(join(dir, 'poses', 'b.mat'), writeMat([{ name: 'angle', values: [-0.1, 0.4, 0] }], true));
  writeFileSync(join(dir, 'poses', 'c.mat'), writeMat([{ name: 'angle', values: [0, 0, 0] }], false));
  writeFileSync(join(dir, 'poses', 'e.mat'), new Uint8Array(64));
  const { warn, messages } = collectWarnings();
  const ds = openDataset(dir, { imgSize: 4, warn });
  assert.is(ds.layout, 'ffhq');
  assert.equal(ds.images.map((f) => f.slice(dir.length + 1)), ['a.png', 'b.png', 'c.jpg']);
  assert.equal(messages, [
    `skipping ${join(dir, 'd.png')}: no pose file ${join(dir, 'poses', 'd.mat')}`,
    `skipping ${join(dir, 'poses', 'e.mat')}: not a MAT file (shorter than its 128-byte header)`,
  ]);

  // angle (0.3, -0.2): pitch = -(0.3 - 0.1) + pi/2 = 1.3707963267948966, yaw = -0.2 + pi/2 = 1.3707963267948966;
  // flipped yaw = 0.2 + pi/2 = 1.7707963267948966
  assert.equal(ds.sample(0, false).pose, [Math.fround(1.3707963267948966), Math.fround(1.3707963267948966)]);
  assert.equal(ds.sample(0, true).pose, [Math.fround(1.3707963267948966), Math.fround(1.7707963267948966)]);
  // angle (-0.1, 0.4): pitch = 0.2 + pi/2 = 1.7707963267948966, yaw 1.9707963267948966, flipped 1.1707963267948966
  assert.equal(ds.pose(1, false), [Math.fround(1.7707963267948966), Math.fround(1.9707963267948966)]);
  assert.equal(ds.pose(1, true)[1], Math.fround(1.1707963267948966));

  // imgSize equals the source size: pixels pass through, scaled to [-1, 1]; a flip mirrors x
  const src = pixels(0);
  const plain = ds.sample(0, false).image;
  const flipped = ds.sample(0, true).image;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        assert.is(plain[c * 16 + y * 4 + x], unit(src[(y * 4 + x) * 3 + c]));
        assert.is(flipped[c * 16 + y * 4 + x], unit(src[(y * 4 + 3 - x) * 3 + c]));
      }
    }
  }
  assert.is(unit(0), -1);
  assert.is(unit(255), 1);
  // alpha dropped: b.png's colours unchanged despite its varying alpha
  const b = ds.sample(1, false).image;
  assert.is(b[2 * 16 + 5], unit(pixels(1)[5 * 3 + 2]));
  // JPEG: a flat colour within 2 levels
  const c = ds.sample(2, false).image;
  assert.ok(Math.abs(c[0] - unit(120)) <= 2 / 127.5 && Math.abs(c[16] - unit(30)) <= 2 / 127.5);
});

test('AFHQ layout: .npy poses, flipped yaw pi - p1, Lanczos resize then mirror', () => {
  const dir = join(tmp, 'afhq');
  mkdirSync(join(dir, 'poses'), { recursive: true });
  const big = makeRgb(12, 10, (x, y, c) => (x * 21 + y * 7 + c * 40) % 256);
  writeFileSync(join(dir, 'cat1.png'), writePng(12, 10, big));
  writeFileSync(join(dir, 'cat2.png'), writePng(4, 4, pixels(2)));
  writeFileSync(join(dir, 'poses', 'cat1_pose.npy'), writeNpy([0.5, 1.2], 'f8'));
  writeFileSync(join(dir, 'poses', 'cat2_pose.npy'), writeNpy([-0.25, 2.0], 'f4'));
  const ds = openDataset(dir, { imgSize: 5 }); // layout auto-detected
  assert.is(ds.layout, 'afhq');
  // pitch = 0.5 + 0.14 = 0.64, yaw 1.2; flipped yaw = pi - 1.2 = 1.9415926535897931
  assert.equal(ds.pose(0, false), [Math.fround(0.64), Math.fround(1.2)]);
  assert.equal(ds.pose(0, true), [Math.fround(0.64), Math.fround(1.9415926535897931)]);
  assert.equal(ds.pose(1, false), [Math.fround(Math.fround(-0.25) + 0.14), Math.fround(2)]);
  // the image is resized (non-square 12x10 -> 5x5) first, then mirrored, as F.hflip on the tensor
  const resized = resizeLanczos({ width: 12, height: 10, channels: 3, data: big }, 5, 5).data;
  const { image } = ds.sample(0, true);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 5; x++) assert.is(image[c * 25 + y * 5 + x], unit(resized[(y * 5 + 4 - x) * 3 + c]));
    }
  }
});

test('depth maps: depth/<name>.npy at img_size; missing or mis-sized ones name the file', () => {
  const dir = join(tmp, 'afhq');
  mkdirSync(join(dir, 'depth'), { recursive: true });
  const values = Array.from({ length: 25 }, (_, k) => (k % 3 === 0 ? 0 : 0.9 + k / 100));
  writeFileSync(join(dir, 'depth', 'cat1.npy'), writeNpy(values, 'f4', [5, 5]));
  writeFileSync(join(dir, 'depth', 'cat2.npy'), writeNpy(values.slice(0, 16), 'f4', [4, 4]));
  const ds = openDataset(dir, { imgSize: 5 });
  assert.equal(Array.from(ds.depth(0)), values.map((v) => Math.fround(v)));
  assert.throws(() => ds.depth(1), (e: Error) => e.message.includes('cat2.npy') && e.message.includes('(5, 5) expected'));
  rmSync(join(dir, 'depth', 'cat2.npy'));
  assert.throws(() => ds.depth(1), (e: Error) => e.message.includes('cat2.npy: no depth map'));
});

test('dataset errors: empty folder, missing folder, only unusable files', () => {
  const empty = join(tmp, 'empty');
  mkdirSync(empty, { recursive: true });
  const expected = `${empty}: no image with a pose file (expected poses/<name>.mat or poses/<name>_pose.npy)`;
  assert.throws(() => openDataset(empty, { imgSize: 8 }), (e: Error) => e.message === expected);
  assert.throws(() => openDataset(join(tmp, 'nope'), { imgSize: 8 }), /nope: no such directory/);
  const lonely = join(tmp, 'lonely');
  mkdirSync(lonely, { recursive: true });
  writeFileSync(join(lonely, 'x.png'), writePng(4, 4, pixels(0)));
  const { warn, messages } = collectWarnings();
  assert.throws(() => openDataset(lonely, { imgSize: 4, warn }), /no image with a pose file/);
  assert.equal(messages, [`skipping ${join(lonely, 'x.png')}: no pose file ${join(lonely, 'poses', 'x.mat')}`]);
});

test('epoch order: a permutation per epoch, seeded, sharded like DistributedSampler', () => {
  const a = epochOrder(10, 0, 1);
  assert.equal([...a].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(a, epochOrder(10, 0, 1));
  assert.not.equal(a, epochOrder(10, 1, 1));
  assert.not.equal(a, epochOrder(10, 0, 2));
  const r0 = epochOrder(9, 3, 5, 0, 2);
  const r1 = epochOrder(9, 3, 5, 1, 2);
  assert.is(r0.length, 5);
  assert.is(r1.length, 5); // padded to 10 by wrapping
  assert.equal(new Set([...r0, ...r1]).size, 9);
});

// ---------------------------------------------------------------- loader

function loaderDataset(): { ds: ImageDataset; dir: string } {
  const dir = join(tmp, 'loader');
  mkdirSync(join(dir, 'poses'), { recursive: true });
  for (let i = 0; i < 7; i++) {
    const name = `img${i}`;
    writeFileSync(join(dir, `${name}.png`), writePng(4, 4, pixels(i)));
    writeFileSync(join(dir, 'poses', `${name}.mat`), writeMat([{ name: 'angle', values: [0.01 * i, -0.02 * i, 0] }], i % 2 === 1));
  }
  // a PNG signature with a broken body: passes the scan, fails when decoded
  writeFileSync(join(dir, 'img7.png'), writePng(4, 4, pixels(7)).subarray(0, 40));
  writeFileSync(join(dir, 'poses', 'img7.mat'), writeMat([{ name: 'angle', values: [0, 0, 0] }], false));
  return { ds: openDataset(dir, { imgSize: 2 }), dir };
}

async function take(loader: { next(): Promise<Batch> }, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) out.push(await loader.next());
  return out;
}

/** The first n batches of a fresh loader (default worker count), which is then closed. */
async function firstBatches(ds: ImageDataset, options: LoaderOptions, n: number): Promise<Batch[]> {
  const loader = createLoader(ds, options);
  try {
    return await take(loader, n);
  } finally {
    await loader.close();
  }
}

test('loader: ordered prefetch, batches equal dataset samples, deterministic per seed, bad files substituted', async () => {
  const { ds, dir } = loaderDataset();
  assert.is(ds.length, 8);
  const warnings: string[] = [];
  const loader = createLoader(ds, { batchSize: 3, seed: 11, prefetch: 3, workers: 0, warn: (m) => warnings.push(m) });
  assert.is(loader.batchesPerEpoch, 2); // 8 images, drop_last
  const batches = await take(loader, 5);
  await loader.close();
  assert.equal(batches.map((b) => [b.step, b.epoch]), [[0, 0], [1, 0], [2, 1], [3, 1], [4, 2]]);
  for (const b of batches) {
    assert.is(b.images.length, 3 * 3 * 2 * 2);
    assert.is(b.poses.length, 3 * 2);
    for (let i = 0; i < 3; i++) {
      const s = ds.sample(b.indices[i], b.flips[i] === 1);
      assert.equal(Array.from(b.images.subarray(i * 12, (i + 1) * 12)), Array.from(s.image));
      assert.equal(Array.from(b.poses.subarray(2 * i, 2 * i + 2)), s.pose);
      assert.is.not(b.indices[i], 7); // the broken image never appears
    }
  }
  // the planned order, with the broken image replaced by the next index
  for (const b of batches) {
    const planned = loader.plan(b.step).indices.map((i) => (i === 7 ? 0 : i));
    assert.equal(Array.from(b.indices), Array.from(planned));
  }
  // seed 11 plans img7 in epochs 0, 1 and 2; it is reported once
  assert.ok(batches.some((b) => Array.from(loader.plan(b.step).indices).includes(7)));
  assert.is(warnings.length, 1);
  assert.ok(warnings[0].startsWith(`skipping ${join(dir, 'img7.png')}: cannot decode PNG (`), warnings[0]);
  const again = await firstBatches(ds, { batchSize: 3, seed: 11, warn: () => {} }, 5);
  assert.equal(again.map((b) => Array.from(b.images)), batches.map((b) => Array.from(b.images)));
  const other = await firstBatches(ds, { batchSize: 3, seed: 12, warn: () => {} }, 5);
  assert.not.equal(other.map((b) => Array.from(b.indices)), batches.map((b) => Array.from(b.indices)));
  const resumed = await firstBatches(ds, { batchSize: 3, seed: 11, startStep: 3, workers: 0, warn: () => {} }, 2);
  assert.equal(resumed.map((b) => Array.from(b.images)), batches.slice(3).map((b) => Array.from(b.images)));
});

test('loader: worker threads give the same batches as the main thread', async () => {
  const { ds } = loaderDataset();
  const inline = await firstBatches(ds, { batchSize: 2, seed: 4, workers: 0, warn: () => {} }, 6);
  const loader = createLoader(ds, { batchSize: 2, seed: 4, workers: 2, prefetch: 4, warn: () => {} });
  const threaded = await take(loader, 6);
  await loader.close();
  assert.equal(threaded.map((b) => b.step), [0, 1, 2, 3, 4, 5]);
  assert.equal(threaded.map((b) => Array.from(b.images)), inline.map((b) => Array.from(b.images)));
  assert.equal(threaded.map((b) => Array.from(b.poses)), inline.map((b) => Array.from(b.poses)));
  assert.equal(threaded.map((b) => Array.from(b.indices)), inline.map((b) => Array.from(b.indices)));
});

test('loader: a batch larger than the shard is an error', () => {
  const { ds } = loaderDataset();
  assert.throws(() => createLoader(ds, { batchSize: 5, worldSize: 2, rank: 1 }), /4 images per rank, fewer than one batch of 5/);
});

test.run();
