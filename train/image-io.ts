// Images on the host: float CHW tensors in [-1, 1] -> 8-bit RGB as the authors' inference converts
// them, tiling into grids, and PNG encoding (pngjs). Node only (lives in cli/).
import { PNG } from 'pngjs';

/** An 8-bit RGB image, row-major HWC. */
export interface Rgb8 {
  width: number;
  height: number;
  data: Uint8Array;
}

const f = Math.fround;

/**
 * One value of an image in [-1, 1] as the reference's 8 bits: float32 arithmetic x*0.5+0.5, clipped
 * to [0, 1] when `clip` (the high-res image), times 255, truncated. Unclipped values (the low-res
 * image) convert like numpy's float->uint8 cast on x86: truncate to an integer and keep its low 8
 * bits (-0.5/255 -> 0, -1.5/255 -> 255, 256/255 -> 0). NaN (and values beyond int32) become 0.
 */
export function toByte(x: number, clip: boolean): number {
  let v = f(f(x * 0.5) + 0.5);
  if (clip) v = Math.min(Math.max(v, 0), 1);
  const scaled = f(v * 255);
  if (!Number.isFinite(scaled) || Math.abs(scaled) >= 2 ** 31) return 0;
  return Math.trunc(scaled) & 255;
}

/** Image `index` of a [B, 3, H, W] float buffer as 8-bit RGB. */
export function imageToRgb8(values: Float32Array, shape: readonly number[], index: number, clip: boolean): Rgb8 {
  const [, c, height, width] = shape;
  if (c !== 3) throw new Error(`expected 3 channels, got [${shape.join(', ')}]`);
  const plane = height * width;
  const base = index * 3 * plane;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) data[p * 3 + ch] = toByte(values[base + ch * plane + p], clip);
  }
  return { width, height, data };
}

/**
 * Depth map `index` of a [B, H, W, 1] buffer as grey RGB: normalised per image, nearest (smallest
 * depth) black, farthest white, (d - min) / (max - min) * 255 truncated; a flat map is black, NaN 0.
 */
export function depthToRgb8(values: Float32Array, shape: readonly number[], index: number): Rgb8 {
  const [, height, width] = shape;
  const plane = height * width;
  const slice = values.subarray(index * plane, (index + 1) * plane);
  let lo = Infinity;
  let hi = -Infinity;
  for (const d of slice) {
    if (Number.isFinite(d)) {
      lo = Math.min(lo, d);
      hi = Math.max(hi, d);
    }
  }
  const range = hi - lo;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    const d = slice[p];
    const g = Number.isFinite(d) && range > 0 ? Math.min(255, Math.trunc(((d - lo) / range) * 255)) : 0;
    data[p * 3] = data[p * 3 + 1] = data[p * 3 + 2] = g;
  }
  return { width, height, data };
}

/** Tiles equally sized images into `rows` x `cols`, row-major (image r*cols + c at row r, column c). */
export function tileGrid(images: readonly Rgb8[], rows: number, cols: number): Rgb8 {
  if (images.length !== rows * cols) throw new Error(`a ${rows}x${cols} grid needs ${rows * cols} images, got ${images.length}`);
  const { width, height } = images[0];
  const out = new Uint8Array(rows * cols * width * height * 3);
  const stride = cols * width * 3;
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height) throw new Error('grid tiles must share one size');
    const r = Math.floor(i / cols);
    const c = i % cols;
    for (let y = 0; y < height; y++) {
      out.set(img.data.subarray(y * width * 3, (y + 1) * width * 3), (r * height + y) * stride + c * width * 3);
    }
  });
  return { width: cols * width, height: rows * height, data: out };
}

/** PNG bytes (8-bit RGB, no alpha). */
export function encodePng(image: Rgb8): Uint8Array {
  const png = new PNG({ width: image.width, height: image.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

/** Decodes a PNG into 8-bit RGB (alpha dropped). */
export function decodePng(bytes: Uint8Array): Rgb8 {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const data = new Uint8Array(png.width * png.height * 3);
  for (let p = 0; p < png.width * png.height; p++) {
    data[p * 3] = png.data[p * 4];
    data[p * 3 + 1] = png.data[p * 4 + 1];
    data[p * 3 + 2] = png.data[p * 4 + 2];
  }
  return { width: png.width, height: png.height, data };
}
