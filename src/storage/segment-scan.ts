/**
 * Reading a whole segment at open: large sequential reads (4 MiB chunks, not
 * one pread per record), every record's checksums verified, and the
 * in-memory index built on the way (byte offsets, term runs, config entries).
 *
 * Also the search that decides what damage means: after a bad record at
 * offset X of the last segment, is there a record starting a later batch?
 * If not, the damage lies within the last write, which was never
 * acknowledged (its fdatasync never returned): a torn tail, safe to cut. If
 * so, a batch was written after the damaged one, so the damaged one had been
 * acknowledged: corruption, and the log refuses to open.
 *
 * @module
 */
import type { FileHandle, FileLayer } from "./file-layer.ts";
import {
  decodeRecordHeader,
  ENTRY_TYPES,
  FLAG_BATCH_START,
  looksLikeRecordHeader,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  recordDataValid,
  SEGMENT_HEADER_BYTES,
} from "./segment-format.ts";

/** Bytes read per sequential read while scanning. */
export const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** A config entry as stored: the caller decodes `data` into a membership. */
export interface StoredConfigEntry {
  readonly index: number;
  readonly term: number;
  /** The entry's data: an encoded membership. */
  readonly data: Uint8Array;
}

/** What a scan found. */
export interface ScanResult {
  /** Valid records found. */
  count: number;
  /** offsets[k] = byte offset of the record of index firstIndex + k. Capacity may exceed `count`. */
  offsets: Uint32Array;
  /** Term runs: runStarts[r] is the first index of a run of entries with term runTerms[r]. */
  runStarts: number[];
  runTerms: number[];
  /** Config entries, ascending. */
  configs: StoredConfigEntry[];
  /** Byte offset just past the last valid record. */
  end: number;
  /** The first bad record, or null if the whole file checked out. */
  damage: { readonly offset: number; readonly reason: string } | null;
}

/**
 * Reads and verifies every record of a segment after its header.
 *
 * @param firstIndex the index the first record must have
 * @param prevTerm the term of the entry before `firstIndex` (terms never decrease along the log)
 * @param fileSize the file's size
 * @param countMax stop after this many records (a later truncation cuts the rest away: it is not read)
 */
export function scanSegment(
  fs: FileLayer,
  file: FileHandle,
  firstIndex: number,
  prevTerm: number,
  fileSize: number,
  countMax = Infinity,
): ScanResult {
  const r: ScanResult = {
    count: 0,
    offsets: new Uint32Array(1024),
    runStarts: [],
    runTerms: [],
    configs: [],
    end: SEGMENT_HEADER_BYTES,
    damage: null,
  };
  let buf = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, Math.max(fileSize, 64)));
  let bufPos = SEGMENT_HEADER_BYTES; // file offset of buf[0]
  let bufLen = 0;
  let p = 0; // offset in buf of the next record
  let term = prevTerm;
  const refill = (need: number): void => {
    const at = bufPos + p;
    if (buf.length < need) buf = new Uint8Array(need);
    bufLen = fs.pread(file, buf.subarray(0, Math.min(buf.length, fileSize - at)), at);
    bufPos = at;
    p = 0;
  };
  const damage = (reason: string): ScanResult => {
    r.damage = { offset: bufPos + p, reason };
    r.end = bufPos + p;
    return r;
  };
  while (bufPos + p < fileSize && r.count < countMax) {
    if (p + RECORD_HEADER_BYTES > bufLen) {
      refill(RECORD_HEADER_BYTES);
      if (bufLen < RECORD_HEADER_BYTES) return damage("the file ends inside a record header");
    }
    const h = decodeRecordHeader(buf, p);
    if (typeof h === "string") return damage(h);
    const index = firstIndex + r.count;
    if (h.index !== index) return damage(`record holds index ${h.index}, expected ${index}`);
    if (h.term < term) return damage(`record term ${h.term} is lower than the previous entry's term ${term}`);
    const recLen = RECORD_OVERHEAD_BYTES + h.dataLen;
    if (bufPos + p + recLen > fileSize) return damage("the file ends inside a record");
    if (p + recLen > bufLen) {
      refill(recLen);
      if (bufLen < recLen) return damage("the file ends inside a record");
    }
    if (!recordDataValid(buf, p, h.dataLen)) return damage("record data checksum mismatch");
    if (r.count === r.offsets.length) {
      const grown = new Uint32Array(r.offsets.length * 2);
      grown.set(r.offsets);
      r.offsets = grown;
    }
    r.offsets[r.count] = bufPos + p;
    if (r.runTerms.length === 0 || h.term !== term) {
      r.runStarts.push(index);
      r.runTerms.push(h.term);
    }
    term = h.term;
    if (ENTRY_TYPES[h.type] === "config") {
      r.configs.push({ index, term: h.term, data: buf.slice(p + RECORD_HEADER_BYTES, p + RECORD_HEADER_BYTES + h.dataLen) });
    }
    r.count++;
    p += recLen;
    r.end = bufPos + p;
  }
  return r;
}

/**
 * Searches `(from, fileSize)` for a valid record header that starts a batch
 * and whose index is at least `indexMin`. Byte by byte, with a cheap filter
 * before the checksum; only runs on the recovery path.
 *
 * @returns its byte offset, or -1 if there is none
 */
export function findLaterBatch(fs: FileLayer, file: FileHandle, from: number, fileSize: number, indexMin: number): number {
  // Every record takes at least RECORD_OVERHEAD_BYTES, which bounds the index.
  const indexMax = indexMin + Math.ceil((fileSize - from) / RECORD_OVERHEAD_BYTES) + 1;
  const buf = new Uint8Array(SCAN_CHUNK_BYTES);
  let pos = from + 1;
  while (pos + RECORD_HEADER_BYTES <= fileSize) {
    const n = fs.pread(file, buf.subarray(0, Math.min(buf.length, fileSize - pos)), pos);
    const last = n - RECORD_HEADER_BYTES;
    for (let q = 0; q <= last; q++) {
      const h = looksLikeRecordHeader(buf, q, indexMin, indexMax);
      if (h !== null && (h.flags & FLAG_BATCH_START) !== 0) return pos + q;
    }
    if (last < 0) break;
    pos += last + 1;
  }
  return -1;
}
