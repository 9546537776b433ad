/**
 * One segment of the log in memory: its open file, the byte offset of every
 * record (a growable `Uint32Array`, 4 bytes per entry: a 1 GiB log of
 * 100-byte entries costs ~32 MB) and its term runs (terms change rarely, so
 * a run list answers `term(i)` without touching the disk). Entry data is not
 * kept here; reads go to the file and verify every record they return.
 *
 * @module
 */
import { StorageCorruptError } from "../errors.ts";
import type { Entry } from "../raft/types.ts";
import { assert } from "./bytes.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";
import {
  decodeRecordHeader,
  ENTRY_TYPES,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  recordDataValid,
  SEGMENT_HEADER_BYTES,
} from "./segment-format.ts";

/** Offsets are u32: a segment never grows past this (a batch that would cross it goes to a new segment). */
export const SEGMENT_BYTES_LIMIT = 0xffff_ffff;

/** A log segment: a file holding the records of indexes [firstIndex, firstIndex + count). */
export class Segment {
  /** File name inside the log directory. */
  readonly name: string;
  /** Full path, for error messages. */
  readonly path: string;
  /** Creation order. Invariant: strictly increasing along the log. */
  readonly seq: number;
  /** Index of the first record (whether or not it still exists). */
  readonly firstIndex: number;
  readonly file: FileHandle;
  /** Records held. */
  count: number;
  /** offsets[k]: byte offset of the record of index firstIndex + k. Invariant: ascending, length >= count. */
  offsets: Uint32Array;
  /** Bytes of header plus valid records. Invariant: the file's durable size once the last write's fdatasync returned. */
  size: number;
  /** Term runs: runTerms[r] is the term of indexes [runStarts[r], runStarts[r+1]). Invariant: both strictly ascending. */
  runStarts: number[];
  runTerms: number[];
  /** Sealed segments are never appended to again (only truncated or deleted). */
  sealed: boolean;
  /** True if an index file may exist beside it (deleted before any truncation). */
  hasIndexFile: boolean;

  constructor(init: {
    name: string;
    path: string;
    seq: number;
    firstIndex: number;
    file: FileHandle;
    count: number;
    offsets: Uint32Array;
    size: number;
    runStarts: number[];
    runTerms: number[];
    sealed: boolean;
    hasIndexFile: boolean;
  }) {
    this.name = init.name;
    this.path = init.path;
    this.seq = init.seq;
    this.firstIndex = init.firstIndex;
    this.file = init.file;
    this.count = init.count;
    this.offsets = init.offsets;
    this.size = init.size;
    this.runStarts = init.runStarts;
    this.runTerms = init.runTerms;
    this.sealed = init.sealed;
    this.hasIndexFile = init.hasIndexFile;
    assert(this.offsets.length >= this.count && this.size >= SEGMENT_HEADER_BYTES, "segment bookkeeping is consistent");
  }

  /** Index of the last record, or firstIndex - 1 when empty. */
  get lastIndex(): number {
    return this.firstIndex + this.count - 1;
  }

  /** The term of `index`, which this segment must hold. */
  term(index: number): number {
    if (!(index >= this.firstIndex && index <= this.lastIndex)) assert(false, `segment ${this.name} holds index ${index}`);
    const starts = this.runStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.runTerms[lo]!;
  }

  /** Term of the last record, or 0 when empty. */
  get lastTerm(): number {
    return this.runTerms.length === 0 ? 0 : this.runTerms[this.runTerms.length - 1]!;
  }

  /** Records one appended entry (its bytes are already in the file at `offset`). */
  push(index: number, term: number, offset: number): void {
    assert(index === this.firstIndex + this.count, "records are appended in index order");
    if (this.count === this.offsets.length) {
      const grown = new Uint32Array(Math.max(1024, this.offsets.length * 2));
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.count++] = offset;
    if (this.runTerms.length === 0 || this.lastTerm !== term) {
      assert(term > this.lastTerm, "terms never decrease along the log");
      this.runStarts.push(index);
      this.runTerms.push(term);
    }
  }

  /** Forgets records of index >= `index` (the file is truncated by the caller). Returns the new byte size. */
  cutFrom(index: number): number {
    assert(index >= this.firstIndex && index <= this.lastIndex + 1, "cut point inside the segment");
    const k = index - this.firstIndex;
    this.size = k < this.count ? this.offsets[k]! : this.size;
    this.count = k;
    while (this.runStarts.length > 0 && this.runStarts[this.runStarts.length - 1]! >= index) {
      this.runStarts.pop();
      this.runTerms.pop();
    }
    return this.size;
  }

  /** Byte offset where the record of `firstIndex + k` ends. */
  recordEnd(k: number): number {
    return k + 1 < this.count ? this.offsets[k + 1]! : this.size;
  }

  /**
   * Reads records [lo, hi) (all held here) into `out`, stopping once adding
   * one more would pass `budget` bytes of data (but always reading at least
   * one if `out` is empty). One pread for the whole range; every record's
   * checksums and index are verified.
   *
   * @returns the data budget left
   * @throws StorageCorruptError naming this file and the bad record's offset
   */
  read(fs: FileLayer, lo: number, hi: number, budget: number, out: Entry[]): number {
    assert(lo >= this.firstIndex && hi <= this.lastIndex + 1 && lo < hi, "read range inside the segment");
    // Decide from the offsets alone how many records fit, then read them at once.
    let k = lo - this.firstIndex;
    const kEnd = hi - this.firstIndex;
    const start = this.offsets[k]!;
    let end = start;
    let left = budget;
    let n = 0;
    while (k + n < kEnd) {
      const recEnd = this.recordEnd(k + n);
      const dataLen = recEnd - end - RECORD_OVERHEAD_BYTES;
      if (dataLen > left && (out.length > 0 || n > 0)) break;
      left -= dataLen;
      end = recEnd;
      n++;
    }
    const buf = new Uint8Array(end - start);
    const got = fs.pread(this.file, buf, start);
    if (got !== buf.length) throw new StorageCorruptError(this.path, start + got, "the segment is shorter than its index says");
    let p = 0;
    for (let i = 0; i < n; i++, k++) {
      const index = this.firstIndex + k;
      const h = decodeRecordHeader(buf, p);
      if (typeof h === "string") throw new StorageCorruptError(this.path, start + p, h);
      const recLen = RECORD_OVERHEAD_BYTES + h.dataLen;
      if (h.index !== index || p + recLen > buf.length || p + recLen !== this.recordEnd(k) - start) {
        throw new StorageCorruptError(this.path, start + p, `record does not match the index (expected index ${index})`);
      }
      if (!recordDataValid(buf, p, h.dataLen)) throw new StorageCorruptError(this.path, start + p, "record data checksum mismatch");
      out.push({
        index,
        term: h.term,
        type: ENTRY_TYPES[h.type]!,
        data: buf.subarray(p + RECORD_HEADER_BYTES, p + RECORD_HEADER_BYTES + h.dataLen),
      });
      p += recLen;
    }
    return left;
  }
}
