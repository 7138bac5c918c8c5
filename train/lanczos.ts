// Lanczos resize of 8-bit images, reproducing Pillow's Image.resize(size, Image.LANCZOS) bit for bit
// (libImaging/Resample.c), which is what torchvision's Resize does to the authors' PIL images.
// Pillow's algorithm: separable, horizontal pass first; a = 3 Lanczos kernel stretched by the
// downscale factor (support 3 * max(scale, 1)), so downscaling is antialiased; weights normalised
// per output pixel, then quantised to 22-bit fixed point; each pass rounds and clips to uint8.

/** An interleaved 8-bit image (channels = 3 for RGB). */
export interface ImageU8 {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** Fixed-point fraction bits for 8-bit images (Pillow: 32 - 8 - 2). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

/** The truncated-sinc Lanczos kernel with a = 3 (Pillow's lanczos_filter). */
export function lanczos3(x: number): number {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

/** Per output pixel: the first input index, the tap count and the fixed-point weights. */
interface Coefficients {
  first: Int32Array;
  count: Int32Array;
  /** outSize x taps, row-major. */
  weights: Int32Array;
  taps: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the full-image box [0, inSize). */
export function lanczosCoefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  const invScale = 1 / filterScale; // Pillow multiplies by the reciprocal (not the same rounding as dividing)
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; a negative start is clamped to 0 anyway
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = lanczos3((x + xmin - center + 0.5) * invScale);
      sum += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = sum !== 0 ? w[x] / sum : w[x];
      // round half away from zero, as Pillow does
      weights[xx * taps + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, taps };
}

/** Pillow's clip8: drop the fraction bits (arithmetic shift = floor) and clamp to [0, 255]. */
function clip8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resamples along one axis: `*Step` is the stride along it, `*Line` the stride between lines. */
function resampleAxis(
  src: Uint8Array,
  dst: Uint8Array,
  lines: number,
  channels: number,
  c: Coefficients,
  srcStep: number,
  srcLine: number,
  dstStep: number,
  dstLine: number,
): void {
  const { first, count, weights, taps } = c;
  const outSize = first.length;
  const half = 1 << (PRECISION_BITS - 1); // rounding offset
  for (let line = 0; line < lines; line++) {
    const srcBase = line * srcLine;
    const dstBase = line * dstLine;
    for (let o = 0; o < outSize; o++) {
      const n = count[o];
      const kBase = o * taps;
      const start = srcBase + first[o] * srcStep;
      if (channels === 3) {
        // the common case, all three channels in one sweep over the taps
        let r = half;
        let g = half;
        let b = half;
        for (let i = 0, at = start; i < n; i++, at += srcStep) {
          const k = weights[kBase + i];
          r += src[at] * k;
          g += src[at + 1] * k;
          b += src[at + 2] * k;
        }
        const d = dstBase + o * dstStep;
        dst[d] = clip8(r);
        dst[d + 1] = clip8(g);
        dst[d + 2] = clip8(b);
        continue;
      }
      for (let ch = 0; ch < channels; ch++) {
        let acc = half;
        for (let i = 0, at = start + ch; i < n; i++, at += srcStep) acc += src[at] * weights[kBase + i];
        dst[dstBase + o * dstStep + ch] = clip8(acc);
      }
    }
  }
}

/** Image.resize((width, height), Image.LANCZOS) for an 8-bit image of any channel count. */
export function resizeLanczos(image: ImageU8, width: number, height: number): ImageU8 {
  const { width: w0, height: h0, channels: ch } = image;
  if (width === w0 && height === h0) return { width, height, channels: ch, data: image.data.slice() };
  let data = image.data;
  let w = w0;
  // Horizontal pass first; Pillow restricts it to the rows the vertical pass reads, which
  // changes nothing in the result, so every row is resampled here.
  if (width !== w0) {
    const out = new Uint8Array(width * h0 * ch);
    resampleAxis(data, out, h0, ch, lanczosCoefficients(w0, width), ch, w0 * ch, ch, width * ch);
    data = out;
    w = width;
  }
  if (height !== h0) {
    const out = new Uint8Array(w * height * ch);
    // lines are columns here: step along y is a row, lines are pixels along x
    resampleAxis(data, out, w, ch, lanczosCoefficients(h0, height), w * ch, ch, w * ch, ch);
    data = out;
  }
  return { width, height, channels: ch, data };
}
