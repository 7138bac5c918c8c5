// Reading a ZIP archive from bytes through its central directory (the local headers of files
// written with data descriptors, as torch.save does, carry no sizes). ZIP64 is supported, since
// checkpoints pass 4 GiB; compressed entries are listed but not inflated.
import { CheckpointError } from './host-tensor.ts';

/** One archive member; `raw` is a subarray of the archive, still compressed unless `method` is 0. */
export interface ZipEntry {
  name: string;
  /** 0: stored, 8: DEFLATE, other values: other compressions. */
  method: number;
  raw: Uint8Array;
}

const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const ZIP64_EXTRA = 0x0001;

/** Every member of the archive by name, in central-directory order. */
export function readZip(bytes: Uint8Array, fileName: string): Map<string, ZipEntry> {
  const fail: (problem: string) => never = (problem) => { throw new CheckpointError(`${fileName}: ${problem}`); };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => safeNumber(view.getBigUint64(at, true), fileName);

  // The end-of-directory record is the last 22 bytes, followed by a comment of up to 65535 bytes.
  let end = -1;
  for (let at = bytes.byteLength - 22; at >= Math.max(0, bytes.byteLength - 22 - 0xffff); at--) {
    if (u32(at) === END_OF_DIRECTORY) { end = at; break; }
  }
  if (end < 0) fail('no ZIP end-of-central-directory record: the file is truncated or not a ZIP archive');
  let count = u16(end + 10);
  let directoryOffset = u32(end + 16);
  if (count === 0xffff || directoryOffset === 0xffffffff) {
    if (end < 20 || u32(end - 20) !== ZIP64_LOCATOR) fail('ZIP64 end-of-central-directory locator is missing');
    const zip64End = u64(end - 12);
    if (zip64End + 56 > end || u32(zip64End) !== ZIP64_END_OF_DIRECTORY) fail('ZIP64 end-of-central-directory record is missing');
    count = u64(zip64End + 32);
    directoryOffset = u64(zip64End + 48);
  }

  const entries = new Map<string, ZipEntry>();
  let at = directoryOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || u32(at) !== DIRECTORY_ENTRY) fail(`ZIP central directory entry ${i} of ${count} is missing or damaged`);
    const method = u16(at + 10);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    let size = u32(at + 20);
    let uncompressedSize = u32(at + 24);
    let localOffset = u32(at + 42);
    // A ZIP64 extra field holds, in this order, the 64-bit values of the fields saturated at 2^32-1.
    for (let extra = at + 46 + nameLength; extra + 4 <= at + 46 + nameLength + extraLength;) {
      let field = extra + 4;
      if (u16(extra) === ZIP64_EXTRA) {
        if (uncompressedSize === 0xffffffff) { uncompressedSize = u64(field); field += 8; }
        if (size === 0xffffffff) { size = u64(field); field += 8; }
        if (localOffset === 0xffffffff) localOffset = u64(field);
      }
      extra += 4 + u16(extra + 2);
    }
    if (localOffset + 30 > bytes.byteLength || u32(localOffset) !== LOCAL_HEADER) {
      fail(`ZIP entry '${name}': local header at byte ${localOffset} is missing (archive truncated?)`);
    }
    const start = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (start + size > bytes.byteLength) {
      fail(`ZIP entry '${name}': its ${size} bytes run past the end of the ${bytes.byteLength}-byte file (archive truncated?)`);
    }
    entries.set(name, { name, method, raw: bytes.subarray(start, start + size) });
    at += 46 + nameLength + extraLength + u16(at + 32);
  }
  return entries;
}

/** The bytes of a stored (uncompressed) entry. */
export function storedBytes(entry: ZipEntry, fileName: string): Uint8Array {
  if (entry.method === 0) return entry.raw;
  // Inflating would need the asynchronous DecompressionStream; torch.save never compresses.
  const method = entry.method === 8 ? 'DEFLATE-compressed' : `compressed (method ${entry.method})`;
  throw new CheckpointError(
    `${fileName}: ZIP entry '${entry.name}' is ${method}; only stored (uncompressed) entries, as torch.save writes them, are supported`);
}

function safeNumber(value: bigint, fileName: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(`${fileName}: ZIP64 field ${value} is out of range`);
  return Number(value);
}
