// Decodes dataset images (PNG through pngjs, JPEG through jpeg-js, both pure JavaScript so they run
// in worker threads) to 8-bit RGB. Alpha is dropped (the authors' loader would hand an RGBA image
// to the model as 4 channels; we keep RGB, as PIL's .convert('RGB') would) and grey is replicated.
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import type { ImageU8 } from './lanczos.ts';

export type ImageFormat = 'png' | 'jpeg';

/** The format a file's first bytes announce, or null. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** RGBA (4 bytes a pixel) to RGB: alpha dropped, colour kept unpremultiplied. */
function rgbaToRgb(rgba: Uint8Array, width: number, height: number): ImageU8 {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    data[i * 3] = rgba[i * 4];
    data[i * 3 + 1] = rgba[i * 4 + 1];
    data[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return { width, height, channels: 3, data };
}

/**
 * Decodes a PNG or JPEG file's bytes to 8-bit RGB. pngjs expands palette and grey images to RGBA
 * and scales 16-bit samples to 8 bits; jpeg-js emits RGBA for grey and colour JPEGs alike. JPEG
 * pixels may differ from libjpeg's (PIL's) by a level or two: the IDCTs differ.
 */
export function decodeImage(file: string, bytes: Uint8Array): ImageU8 {
  const format = sniffImageFormat(bytes);
  if (!format) throw new Error(`${file}: not a PNG or JPEG image`);
  try {
    if (format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return rgbaToRgb(png.data, png.width, png.height);
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 2048 });
    return rgbaToRgb(img.data, img.width, img.height);
  } catch (e) {
    throw new Error(`${file}: cannot decode ${format.toUpperCase()} (${(e as Error).message})`);
  }
}
