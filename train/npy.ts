// A NumPy .npy writer (format version 1.0, little-endian float32 or float64, C order): the AFHQ-style
// pose files and depth maps of the synthetic data. The reader is train/pose-files.ts.

/** The bytes of a .npy file holding `data` with `shape` ('<f4' for Float32Array, '<f8' for
 * Float64Array). */
export function encodeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`.npy: ${data.length} values do not fill shape [${shape.join(', ')}]`);
  const descr = data instanceof Float64Array ? '<f8' : '<f4';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64
  // and ended by a newline, as NumPy writes it
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (header.length > 0xffff) throw new Error('.npy: header too long for format 1.0');
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, 10 + header.length);
  const wide = data instanceof Float64Array;
  for (let i = 0; i < data.length; i++) {
    if (wide) view.setFloat64(i * 8, data[i], true);
    else view.setFloat32(i * 4, data[i], true);
  }
  return out;
}
