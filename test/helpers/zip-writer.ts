// A minimal ZIP writer for crafting test archives: stored entries (or entries labelled with another
// method, to test that readers refuse them), CRC-32, no ZIP64.

export interface ZipMember {
  name: string;
  data: Uint8Array;
  /** Compression method recorded in the headers; the data is written as given. */
  method?: number;
}

export function writeZip(members: ZipMember[]): Uint8Array {
  const encoder = new TextEncoder();
  const locals: Uint8Array[] = [];
  const directory: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data, method = 0 } of members) {
    const nameBytes = encoder.encode(name);
    const common = (header: DataView, at: number) => {
      header.setUint16(at, 20, true); // version needed
      header.setUint16(at + 4, method, true);
      header.setUint32(at + 10, crc32(data), true);
      header.setUint32(at + 14, data.byteLength, true); // compressed size
      header.setUint32(at + 18, data.byteLength, true); // uncompressed size
      header.setUint16(at + 22, nameBytes.byteLength, true);
    };
    const local = new Uint8Array(30 + nameBytes.byteLength + data.byteLength);
    const localView = new DataView(local.buffer);
    localView.setUint32(0, 0x04034b50, true);
    common(localView, 4);
    local.set(nameBytes, 30);
    local.set(data, 30 + nameBytes.byteLength);
    const entry = new Uint8Array(46 + nameBytes.byteLength);
    const entryView = new DataView(entry.buffer);
    entryView.setUint32(0, 0x02014b50, true);
    entryView.setUint16(4, 20, true); // version made by
    common(entryView, 6);
    entryView.setUint32(42, offset, true);
    entry.set(nameBytes, 46);
    locals.push(local);
    directory.push(entry);
    offset += local.byteLength;
  }
  const directorySize = directory.reduce((sum, entry) => sum + entry.byteLength, 0);
  const end = new Uint8Array(22);
  const endView = new DataView(end.buffer);
  endView.setUint32(0, 0x06054b50, true);
  endView.setUint16(8, members.length, true);
  endView.setUint16(10, members.length, true);
  endView.setUint32(12, directorySize, true);
  endView.setUint32(16, offset, true);
  return concat([...locals, ...directory, end]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.byteLength; }
  return out;
}

function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
