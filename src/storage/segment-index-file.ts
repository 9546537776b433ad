/**
 * The index file written beside a segment when it is sealed
 * (`log-…-….idx`): the byte offset of every record, the term runs and the
 * config entries' indexes. It lets `open` skip reading sealed segments (a
 * 1 GiB log opens in milliseconds instead of re-reading and re-checksumming
 * it all), while every read still verifies the records it returns.
 *
 * It is derived data, so it is written without fsync: a missing, torn or
 * stale index file fails its own checksum or its recorded segment size and
 * is rebuilt from the segment. Sealed segments never grow (truncation is the
 * only change, and deletes the index file first), so a size match means the
 * index describes the bytes present.
 *
 * Content, framed `[magic "RIX1"][length][payload][crc32c]`:
 *
 *     [seq u64][firstIndex u64][count u32][segmentBytes u64]
 *     [runCount u32] runCount × [start u64][term u64]
 *     [configCount u32] configCount × [index u64]
 *     count × [offset u32]
 *
 * @module
 */
import { assert, readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { frameSmallFile, unframeSmallFile } from "./atomic-file.ts";

const _MAGIC = 0x31584952; // "RIX1"
const _LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** What a segment's index file records. */
export interface SegmentIndex {
  readonly seq: number;
  readonly firstIndex: number;
  readonly count: number;
  readonly segmentBytes: number;
  readonly runStarts: readonly number[];
  readonly runTerms: readonly number[];
  readonly configIndexes: readonly number[];
  /** Exactly `count` offsets. */
  readonly offsets: Uint32Array;
}

/** Encodes an index file's content. */
export function encodeSegmentIndex(x: SegmentIndex): Uint8Array {
  assert(x.offsets.length >= x.count && x.runStarts.length === x.runTerms.length, "index arrays are consistent");
  const size = 28 + 4 + 16 * x.runStarts.length + 4 + 8 * x.configIndexes.length + 4 * x.count;
  const b = new Uint8Array(size);
  writeU64(b, 0, x.seq);
  writeU64(b, 8, x.firstIndex);
  writeU32(b, 16, x.count);
  writeU64(b, 20, x.segmentBytes);
  let at = 28;
  writeU32(b, at, x.runStarts.length);
  at += 4;
  for (let r = 0; r < x.runStarts.length; r++) {
    writeU64(b, at, x.runStarts[r]!);
    writeU64(b, at + 8, x.runTerms[r]!);
    at += 16;
  }
  writeU32(b, at, x.configIndexes.length);
  at += 4;
  for (const c of x.configIndexes) {
    writeU64(b, at, c);
    at += 8;
  }
  if (_LITTLE_ENDIAN) {
    b.set(new Uint8Array(x.offsets.buffer, x.offsets.byteOffset, 4 * x.count), at);
  } else {
    for (let k = 0; k < x.count; k++) writeU32(b, at + 4 * k, x.offsets[k]!);
  }
  return frameSmallFile(_MAGIC, b);
}

/**
 * Decodes an index file, or returns null if it does not check out (it is
 * then rebuilt, never trusted).
 */
export function decodeSegmentIndex(bytes: Uint8Array, file: string): SegmentIndex | null {
  let b: Uint8Array;
  try {
    b = unframeSmallFile(_MAGIC, bytes, file);
  } catch {
    return null;
  }
  if (b.length < 32) return null;
  const seq = readU64(b, 0);
  const firstIndex = readU64(b, 8);
  const count = readU32(b, 16);
  const segmentBytes = readU64(b, 20);
  let at = 28;
  const runCount = readU32(b, at);
  at += 4;
  if (seq < 0 || firstIndex < 1 || segmentBytes < 0 || at + 16 * runCount + 4 > b.length) return null;
  const runStarts: number[] = [];
  const runTerms: number[] = [];
  for (let r = 0; r < runCount; r++) {
    runStarts.push(readU64(b, at));
    runTerms.push(readU64(b, at + 8));
    at += 16;
  }
  const configCount = readU32(b, at);
  at += 4;
  if (at + 8 * configCount + 4 * count !== b.length) return null;
  const configIndexes: number[] = [];
  for (let c = 0; c < configCount; c++) {
    configIndexes.push(readU64(b, at));
    at += 8;
  }
  const offsets = new Uint32Array(count);
  if (_LITTLE_ENDIAN) {
    new Uint8Array(offsets.buffer).set(b.subarray(at, at + 4 * count));
  } else {
    for (let k = 0; k < count; k++) offsets[k] = readU32(b, at + 4 * k);
  }
  // Shape checks: runs ascending inside the segment, first run at firstIndex.
  if (count > 0 && (runCount === 0 || runStarts[0] !== firstIndex)) return null;
  for (let r = 0; r < runCount; r++) {
    const s = runStarts[r]!;
    const t = runTerms[r]!;
    if (s < firstIndex || s >= firstIndex + count || t < 1 || (r > 0 && (s <= runStarts[r - 1]! || t <= runTerms[r - 1]!))) return null;
  }
  for (const c of configIndexes) if (c < firstIndex || c >= firstIndex + count) return null;
  for (let k = 1; k < count; k++) if (offsets[k]! <= offsets[k - 1]!) return null;
  return { seq, firstIndex, count, segmentBytes, runStarts, runTerms, configIndexes, offsets };
}
