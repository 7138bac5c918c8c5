// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor
// name to { dtype, shape, data_offsets: [begin, end) relative to the data section } (plus an
// optional "__metadata__" map of strings), then the raw little-endian tensor data.
import { CheckpointError, dtypeBytes, isDType, numel } from './host-tensor.ts';
import type { HostTensor } from './host-tensor.ts';

const METADATA_KEY = '__metadata__';

/** The tensors (data are subarrays of `bytes`, no copy) and the metadata of a safetensors file. */
export function parseSafetensors(bytes: Uint8Array, fileName: string):
    { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const fail: (problem: string) => never = (problem) => { throw new CheckpointError(`${fileName}: ${problem}`); };
  if (bytes.byteLength < 8) {
    fail(`file has ${bytes.byteLength} bytes, fewer than the 8-byte header length of a safetensors file`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLength} runs past the end of the file (${bytes.byteLength - 8} bytes follow it): truncated or not safetensors`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    fail(`header is not valid UTF-8 JSON (${oneLine(error)})`);
  }
  if (!isRecord(header)) fail('header is not a JSON object');
  const data = bytes.subarray(dataStart);
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  const extents: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isRecord(entry) || !Object.values(entry).every((value) => typeof value === 'string')) {
        fail(`"${METADATA_KEY}" must map strings to strings`);
      }
      metadata = entry as Record<string, string>; // checked just above
      continue;
    }
    if (!isRecord(entry)) fail(`tensor '${name}': header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDType(dtype)) {
      fail(`tensor '${name}': unknown dtype ${JSON.stringify(dtype)}, expected one of ${Object.keys(dtypeBytes).join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number]; // checked just above
    const expected = numel(shape) * dtypeBytes[dtype];
    if (end - begin !== expected) {
      fail(`tensor '${name}': data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} [${shape}] needs ${expected}`);
    }
    if (end > data.byteLength) {
      fail(`tensor '${name}': data ends at byte ${end} but the data section has only ${data.byteLength} bytes: file truncated`);
    }
    if (end > begin) extents.push({ name, begin, end }); // empty tensors cannot overlap anything
    tensors.set(name, { dtype, shape, data: data.subarray(begin, end) });
  }
  extents.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < extents.length; i++) {
    const [previous, current] = [extents[i - 1]!, extents[i]!];
    if (current.begin < previous.end) {
      fail(`tensors '${previous.name}' [${previous.begin}, ${previous.end}) and '${current.name}' [${current.begin}, ${current.end}) overlap`);
    }
  }
  return { tensors, metadata };
}

/** A safetensors file holding `tensors` in the given order; the header is space-padded to 8 bytes. */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | [string, HostTensor][],
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = [...tensors];
  const header: Record<string, unknown> = {};
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const expected = numel(t.shape) * dtypeBytes[t.dtype];
    if (name === METADATA_KEY) throw new CheckpointError(`safetensors: "${METADATA_KEY}" cannot name a tensor`);
    if (t.data.byteLength !== expected) {
      throw new CheckpointError(`safetensors: tensor '${name}' has ${t.data.byteLength} bytes, but ${t.dtype} [${t.shape}] needs ${expected}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  let position = 8 + headerLength;
  for (const [, t] of entries) {
    out.set(t.data, position);
    position += t.data.byteLength;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function oneLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).replace(/\s+/g, ' ');
}
