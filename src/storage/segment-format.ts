/**
 * The on-disk format of log segments: file names, the segment header and the
 * record framing, with the checks that turn bad bytes into precise errors.
 *
 * A segment file is named by its first index and a sequence number
 * (`log-<firstIndex:20>-<seq:10>.seg`); the sequence orders segments and lets
 * `installSnapshot` retire every older one with a single durable write.
 *
 * Segment header, 32 bytes:
 *
 *     [magic u32 "RSG1"][version u32 = 1][seq u64][firstIndex u64][flags u32][crc32c u32 of bytes 0..28]
 *
 * Flag bit 0, "truncates": the segment was created by a suffix truncation
 * and supersedes every entry at or after its first index in older segments.
 * Its creation (header fdatasynced, directory fsynced) is the single durable
 * step of a truncation; shrinking the older segments comes after and may be
 * interrupted, or torn, without consequence: recovery cuts them again.
 *
 * Each record (entry), 32 bytes of framing plus the data:
 *
 *     off  0  dataLen   u32
 *     off  4  type      u8   0 normal, 1 noop, 2 config
 *     off  5  flags     u8   bit 0: first record of a write (one group commit)
 *     off  6  reserved  u16  0
 *     off  8  term      u64
 *     off 16  index     u64
 *     off 24  headerCrc u32  crc32c of bytes 0..24
 *     off 28  data      dataLen bytes
 *     then    crc       u32  crc32c of the data, continued from headerCrc
 *
 * The header has its own checksum so that a bad length is never trusted: a
 * flipped bit in an early record's length must not make the rest of the file
 * look like a torn tail. The batch flag lets recovery tell a torn last write
 * (nothing after the damage starts a new batch) from damage to data written
 * before a later batch (a later batch exists: that is corruption).
 *
 * @module
 */
import type { Entry, EntryType } from "../raft/types.ts";
import { assert, readU16, readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { crc32c } from "./crc32c.ts";

/** Bytes of a segment file's header. */
export const SEGMENT_HEADER_BYTES = 32;
/** Bytes of a record's header (before its data). */
export const RECORD_HEADER_BYTES = 28;
/** Bytes of framing per record: header plus trailing checksum. */
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + 4;
/** The largest entry data accepted (256 MiB); a larger length field is corruption. */
export const ENTRY_DATA_BYTES_MAX = 256 * 1024 * 1024;
/** Record flag: the first record written by one `pwrite` (one batch). */
export const FLAG_BATCH_START = 1;

const _SEGMENT_MAGIC = 0x31475352; // "RSG1"
const _SEGMENT_VERSION = 1;
const _NAME_RE = /^log-(\d{20})-(\d{10})\.seg$/;

/** Entry type as stored: its byte value is the position in this list. */
export const ENTRY_TYPES: readonly EntryType[] = ["normal", "noop", "config"];

/** Byte value of an entry type. */
export function entryTypeByte(type: EntryType): number {
  switch (type) {
    case "normal":
      return 0;
    case "noop":
      return 1;
    case "config":
      return 2;
  }
}

/** The file name of the segment with sequence `seq` starting at `firstIndex`. */
export function segmentFileName(firstIndex: number, seq: number): string {
  return `log-${String(firstIndex).padStart(20, "0")}-${String(seq).padStart(10, "0")}.seg`;
}

/** The name of a segment's index file (written when it is sealed). */
export function segmentIndexFileName(segmentName: string): string {
  return segmentName.replace(/\.seg$/, ".idx");
}

/** Parses a segment file name, or returns null if `name` is not one. */
export function parseSegmentFileName(name: string): { firstIndex: number; seq: number } | null {
  const m = _NAME_RE.exec(name);
  if (m === null) return null;
  const firstIndex = Number(m[1]);
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) return null;
  return { firstIndex, seq };
}

/** Segment header flag: the segment supersedes older segments' entries from its first index on. */
export const SEGMENT_FLAG_TRUNCATES = 1;

/** A decoded segment header. */
export interface SegmentHeader {
  readonly seq: number;
  readonly firstIndex: number;
  readonly flags: number;
}

/** Encodes a segment header. */
export function encodeSegmentHeader(seq: number, firstIndex: number, flags: number): Uint8Array {
  const h = new Uint8Array(SEGMENT_HEADER_BYTES);
  writeU32(h, 0, _SEGMENT_MAGIC);
  writeU32(h, 4, _SEGMENT_VERSION);
  writeU64(h, 8, seq);
  writeU64(h, 16, firstIndex);
  writeU32(h, 24, flags);
  writeU32(h, 28, crc32c(h, 0, 28));
  return h;
}

/** Decodes a segment header, or returns a reason it is invalid. */
export function decodeSegmentHeader(h: Uint8Array): SegmentHeader | string {
  if (h.length < SEGMENT_HEADER_BYTES) return `the file is shorter than its ${SEGMENT_HEADER_BYTES}-byte header`;
  if (crc32c(h, 0, 28) !== readU32(h, 28)) return "segment header checksum mismatch";
  if (readU32(h, 0) !== _SEGMENT_MAGIC) return "wrong magic number (not a log segment)";
  if (readU32(h, 4) !== _SEGMENT_VERSION) return `unsupported segment version ${readU32(h, 4)}`;
  const seq = readU64(h, 8);
  const firstIndex = readU64(h, 16);
  const flags = readU32(h, 24);
  if (seq < 0 || firstIndex < 1) return "segment header holds an out-of-range seq or first index";
  if ((flags & ~SEGMENT_FLAG_TRUNCATES) !== 0) return `unknown segment flags ${flags}`;
  return { seq, firstIndex, flags };
}

/** Total encoded size of `entries`. */
export function encodedSize(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += RECORD_OVERHEAD_BYTES + e.data.length;
  return n;
}

/**
 * Encodes `entries` as consecutive records into `out` at `at`. If
 * `startsWrite`, the first one carries the batch-start flag: set it on the
 * first record of each write, and only there (appends coalesced into one
 * write by group commit are one batch on disk: a torn write may damage any
 * of them, and recovery must see them as one unacknowledged unit).
 * Returns the offset past the last record.
 */
export function encodeRecords(entries: readonly Entry[], out: Uint8Array, at: number, startsWrite: boolean): number {
  let p = at;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    const len = e.data.length;
    writeU32(out, p, len);
    out[p + 4] = entryTypeByte(e.type);
    out[p + 5] = k === 0 && startsWrite ? FLAG_BATCH_START : 0;
    out[p + 6] = 0;
    out[p + 7] = 0;
    writeU64(out, p + 8, e.term);
    writeU64(out, p + 16, e.index);
    const hcrc = crc32c(out, p, p + 24);
    writeU32(out, p + 24, hcrc);
    out.set(e.data, p + RECORD_HEADER_BYTES);
    const dEnd = p + RECORD_HEADER_BYTES + len;
    writeU32(out, dEnd, crc32c(out, p + RECORD_HEADER_BYTES, dEnd, hcrc));
    p = dEnd + 4;
  }
  return p;
}

/** A record header that passed its own checksum. */
export interface RecordHeader {
  readonly dataLen: number;
  readonly type: number;
  readonly flags: number;
  readonly term: number;
  readonly index: number;
}

/**
 * Decodes and checks the record header at `bytes[p]` (needs
 * `RECORD_HEADER_BYTES` bytes), or returns a reason it is invalid.
 */
export function decodeRecordHeader(bytes: Uint8Array, p: number): RecordHeader | string {
  assert(p + RECORD_HEADER_BYTES <= bytes.length, "a whole record header is in the buffer");
  if (crc32c(bytes, p, p + 24) !== readU32(bytes, p + 24)) return "record header checksum mismatch";
  const dataLen = readU32(bytes, p);
  const type = bytes[p + 4]!;
  const flags = bytes[p + 5]!;
  const term = readU64(bytes, p + 8);
  const index = readU64(bytes, p + 16);
  if (dataLen > ENTRY_DATA_BYTES_MAX) return `record length ${dataLen} exceeds the maximum`;
  if (type >= ENTRY_TYPES.length) return `unknown entry type ${type}`;
  if ((flags & ~FLAG_BATCH_START) !== 0 || readU16(bytes, p + 6) !== 0) return "reserved header bits are set";
  if (term < 1 || index < 1) return "term or index out of range";
  return { dataLen, type, flags, term, index };
}

/** Checks the data checksum of a record whose header (at `p`) already checked out. */
export function recordDataValid(bytes: Uint8Array, p: number, dataLen: number): boolean {
  const dEnd = p + RECORD_HEADER_BYTES + dataLen;
  return crc32c(bytes, p + RECORD_HEADER_BYTES, dEnd, readU32(bytes, p + 24)) === readU32(bytes, dEnd);
}

/**
 * Cheap test for "could a valid record header start at `p`": the index field
 * is in [indexMin, indexMax] and the reserved bits are clear; only then is
 * the header checksum computed. Used when searching past damage.
 */
export function looksLikeRecordHeader(bytes: Uint8Array, p: number, indexMin: number, indexMax: number): RecordHeader | null {
  if (bytes[p + 6] !== 0 || bytes[p + 7] !== 0 || bytes[p + 4]! >= ENTRY_TYPES.length || (bytes[p + 5]! & ~FLAG_BATCH_START) !== 0) {
    return null;
  }
  const index = readU64(bytes, p + 16);
  if (index < indexMin || index > indexMax) return null;
  const h = decodeRecordHeader(bytes, p);
  return typeof h === "string" ? null : h;
}
