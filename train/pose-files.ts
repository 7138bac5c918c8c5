// Readers for the two pose-file formats of the datasets: MATLAB level-5 .mat (FFHQ, an 'angle'
// array written by scipy.io.savemat) and NumPy .npy (AFHQ). Only what those files use: numeric
// real arrays, optionally zlib-compressed. Node only (node:zlib), like the rest of train/.
import { inflateSync } from 'node:zlib';

/** A numeric array as stored: its dimensions and its values in the file's element order. */
export interface StoredArray {
  shape: number[];
  /** Column-major for .mat (MATLAB's order), C order for .npy. */
  data: Float64Array;
}

// MAT-file data types (the 'mi' codes of the MAT-file format reference, table 1-1).
const miINT8 = 1;
const miUINT8 = 2;
const miINT16 = 3;
const miUINT16 = 4;
const miINT32 = 5;
const miUINT32 = 6;
const miSINGLE = 7;
const miDOUBLE = 9;
const miINT64 = 12;
const miUINT64 = 13;
const miMATRIX = 14;
const miCOMPRESSED = 15;
/** Array classes that hold plain numbers (mxDOUBLE_CLASS = 6 up to mxUINT64_CLASS = 15). */
const numericClasses = new Set([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/** One data element: its type and its payload (tag and padding removed). */
interface Element {
  type: number;
  bytes: Uint8Array;
}

/** Reads the data element at `offset`; returns it and the offset of the next one. */
function readElement(buf: Uint8Array, offset: number, little: boolean): { element: Element; next: number } {
  if (offset + 8 > buf.length) throw new Error('truncated data element tag');
  const view = new DataView(buf.buffer, buf.byteOffset + offset, 8);
  const first = view.getUint32(0, little);
  // Small data element format: the size sits in the upper 16 bits, the data in the next 4 bytes.
  if (first >>> 16 !== 0) {
    const size = first >>> 16;
    if (size > 4) throw new Error('bad small data element');
    return { element: { type: first & 0xffff, bytes: buf.subarray(offset + 4, offset + 4 + size) }, next: offset + 8 };
  }
  const size = view.getUint32(4, little);
  const start = offset + 8;
  if (start + size > buf.length) throw new Error('truncated data element');
  // Compressed elements are not padded; every other element is padded to 8 bytes.
  const next = first === miCOMPRESSED ? start + size : start + Math.ceil(size / 8) * 8;
  return { element: { type: first, bytes: buf.subarray(start, start + size) }, next };
}

/** Decodes a numeric element's payload to float64, whatever integer/float type MATLAB chose. */
function numbers(el: Element, little: boolean): Float64Array {
  const v = new DataView(el.bytes.buffer, el.bytes.byteOffset, el.bytes.byteLength);
  const read: Record<number, [number, (i: number) => number]> = {
    [miINT8]: [1, (i) => v.getInt8(i)],
    [miUINT8]: [1, (i) => v.getUint8(i)],
    [miINT16]: [2, (i) => v.getInt16(i, little)],
    [miUINT16]: [2, (i) => v.getUint16(i, little)],
    [miINT32]: [4, (i) => v.getInt32(i, little)],
    [miUINT32]: [4, (i) => v.getUint32(i, little)],
    [miSINGLE]: [4, (i) => v.getFloat32(i, little)],
    [miDOUBLE]: [8, (i) => v.getFloat64(i, little)],
    [miINT64]: [8, (i) => Number(v.getBigInt64(i, little))],
    [miUINT64]: [8, (i) => Number(v.getBigUint64(i, little))],
  };
  const entry = read[el.type];
  if (!entry) throw new Error(`unsupported numeric data type ${el.type}`);
  const [size, get] = entry;
  const out = new Float64Array(Math.floor(el.bytes.byteLength / size));
  for (let i = 0; i < out.length; i++) out[i] = get(i * size);
  return out;
}

/** Parses a miMATRIX payload; returns its name and array, or null for non-numeric classes. */
function parseMatrix(payload: Uint8Array, little: boolean): { name: string; array: StoredArray | null } {
  let at = 0;
  const next = (): Element => {
    const r = readElement(payload, at, little);
    at = r.next;
    return r.element;
  };
  const flags = numbers(next(), little);
  const arrayClass = flags[0] & 0xff;
  const complex = (flags[0] & 0x0800) !== 0;
  const shape = Array.from(numbers(next(), little));
  const name = new TextDecoder('latin1').decode(next().bytes);
  if (!numericClasses.has(arrayClass) || complex) return { name, array: null };
  const data = numbers(next(), little);
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`'${name}' holds ${data.length} values for shape [${shape}]`);
  return { name, array: { shape, data } };
}

/** Parses a MATLAB level-5 MAT file and returns its numeric variables by name. */
export function parseMat(buf: Uint8Array): Map<string, StoredArray> {
  if (buf.length < 128) throw new Error('not a MAT file (shorter than its 128-byte header)');
  const text = new TextDecoder('latin1').decode(buf.subarray(0, 116));
  if (text.startsWith('MATLAB 7.3')) throw new Error('MAT v7.3 (HDF5) files are not supported; save with -v7 or scipy.io.savemat');
  const endian = String.fromCharCode(buf[126], buf[127]);
  if (endian !== 'IM' && endian !== 'MI') throw new Error('not a level-5 MAT file (no endian indicator at byte 126)');
  const little = endian === 'IM';
  const vars = new Map<string, StoredArray>();
  const visit = (body: Uint8Array, start: number): void => {
    for (let at = start; at < body.length; ) {
      const { element, next } = readElement(body, at, little);
      at = next;
      if (element.type === miCOMPRESSED) {
        let inflated: Uint8Array;
        try {
          inflated = inflateSync(element.bytes);
        } catch (e) {
          throw new Error(`corrupt compressed element (${(e as Error).message})`);
        }
        visit(inflated, 0);
      } else if (element.type === miMATRIX && element.bytes.length > 0) {
        const { name, array } = parseMatrix(element.bytes, little);
        if (array) vars.set(name, array);
      }
    }
  };
  visit(buf, 128);
  return vars;
}

/** Parses a NumPy .npy file (format versions 1-3) of little- or big-endian float32/float64. */
export function parseNpy(buf: Uint8Array): StoredArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw new Error('not a .npy file (bad magic)');
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (major < 1 || major > 3) throw new Error(`unsupported .npy format version ${major}`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLength;
  if (dataStart > buf.length) throw new Error('truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error('malformed .npy header');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error('malformed .npy shape');
  const m = /^([<>|=])f([48])$/.exec(descr);
  if (!m) throw new Error(`unsupported .npy dtype '${descr}' (float32 or float64 expected)`);
  const little = m[1] !== '>';
  const size = Number(m[2]);
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1) throw new Error('Fortran-order .npy arrays are not supported');
  if (dataStart + count * size > buf.length) throw new Error(`truncated .npy data (${count} values expected)`);
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = dataStart + i * size;
    data[i] = size === 4 ? view.getFloat32(at, little) : view.getFloat64(at, little);
  }
  return { shape, data };
}

/** Runs a parser on a file's bytes, prefixing any failure with the file's name. */
function withFile<T>(file: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** The first two entries P[0,0], P[0,1] of a .mat file's 'angle' array (pitch-ish, yaw-ish). */
export function readMatAngle(file: string, buf: Uint8Array): [number, number] {
  return withFile(file, () => {
    const angle = parseMat(buf).get('angle');
    if (!angle) throw new Error("no numeric 'angle' array");
    const [rows, cols] = angle.shape;
    if (angle.shape.length !== 2 || rows < 1 || cols < 2) throw new Error(`'angle' has shape [${angle.shape}], at least 1x2 expected`);
    // column-major: element (i, j) sits at i + j * rows
    return [angle.data[0], angle.data[rows]];
  });
}

/** A [size, size] .npy depth map (`gramhd data synth --depth`), as float32. */
export function readNpyDepth(file: string, buf: Uint8Array, size: number): Float32Array {
  return withFile(file, () => {
    const depth = parseNpy(buf);
    if (depth.shape.length !== 2 || depth.shape[0] !== size || depth.shape[1] !== size) throw new Error(`depth has shape (${depth.shape}), (${size}, ${size}) expected (the configuration's img_size)`);
    return Float32Array.from(depth.data);
  });
}

/** The first two entries P[0], P[1] of a 1-D .npy pose vector. */
export function readNpyPose(file: string, buf: Uint8Array): [number, number] {
  return withFile(file, () => {
    const pose = parseNpy(buf);
    if (pose.shape.length !== 1 || pose.shape[0] < 2) throw new Error(`pose has shape (${pose.shape}), a vector of at least 2 expected`);
    return [pose.data[0], pose.data[1]];
  });
}
