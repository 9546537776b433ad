/**
 * The Raft log on disk: append-only segment files, group commit, durable
 * suffix truncation, compaction in two steps (`beginSnapshot` /
 * `endSnapshot`, as the seed describes) and snapshot installation.
 *
 * Durability contract: every promise resolves only once what it changed is
 * on disk (data fdatasynced; created, renamed and deleted names made durable
 * by a directory fsync). The synchronous `LogReader` methods answer what is
 * durable: an append shows up once it has resolved.
 *
 * Ordering of the multi-step operations, chosen so that a crash between any
 * two steps leaves a log that opens and has lost nothing acknowledged (the
 * recovery side is in `log-recovery.ts`):
 * - append: [roll: seal = write index file; create segment + header,
 *   fdatasync, fsync dir] then one durable write of the whole batch
 *   (`writeDurable`: segments are opened write-through, O_DSYNC, so that is
 *   one system call; elsewhere a pwrite and an fdatasync).
 * - truncate a suffix from index i: create a new segment flagged
 *   "truncates" starting at i (header fdatasynced, directory fsynced): that
 *   is the one durable step, done before anything new is written. Then
 *   delete the older segments that start at or after i and shrink the one
 *   holding i; recovery redoes this cleanup if it was interrupted.
 * - endSnapshot: write the compaction point (atomic replace) FIRST, then
 *   delete obsolete sealed segments, fsync dir.
 * - installSnapshot: create the new empty segment (fsync dir), write the
 *   compaction point naming it as the oldest live segment, then delete the
 *   older ones.
 *
 * Concurrency: calls are queued and run one at a time in call order.
 * Consecutive appends that arrive while a write is in flight are coalesced
 * into one write and one fdatasync (group commit).
 *
 * @module
 */
import path from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import type { Entry, LogReader, Member, SnapshotMeta } from "../raft/types.ts";
import { atomicWriteFile } from "./atomic-file.ts";
import { assert } from "./bytes.ts";
import { nodeFileLayer } from "./file-layer.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";
import { recoverLog, writeSegmentIndexFile } from "./log-recovery.ts";
import { EntryCache } from "./entry-cache.ts";
import { GroupCommitQueue } from "./group-commit-queue.ts";
import { Poison } from "./poison.ts";
import { Segment, SEGMENT_BYTES_LIMIT } from "./segment.ts";
import {
  encodedSize,
  encodeRecords,
  encodeSegmentHeader,
  RECORD_OVERHEAD_BYTES,
  SEGMENT_FLAG_TRUNCATES,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
  segmentIndexFileName,
} from "./segment-format.ts";
import type { StoredConfigEntry } from "./segment-scan.ts";
import { encodeCompactionPoint, SNAPSHOT_META_FILE_NAME } from "./snapshot-meta-file.ts";

export type { StoredConfigEntry } from "./segment-scan.ts";

/** Options of `SegmentedLog.open`. */
export interface SegmentedLogOptions {
  /** A segment is sealed and a new one started once it reaches this size (default 64 MiB). */
  readonly segmentBytesMax?: number;
  /** Bytes of recent entries kept in memory to serve reads without the disk (default 16 MiB). */
  readonly cacheBytesMax?: number;
  /** The file layer (default `nodeFileLayer`). */
  readonly fs?: FileLayer;
  /** Receives one line per notable recovery event (a torn tail cut off, leftovers removed). */
  readonly logger?: (line: string) => void;
  /**
   * An index known to be committed (e.g. the state file's commitIndex):
   * recovery refuses to cut a torn tail at or below it rather than lose
   * committed entries. Default 0.
   */
  readonly commitIndex?: number;
  /** Verify every record of every segment at open, not only the last segment's (slower; default false). */
  readonly verifyAll?: boolean;
  /**
   * Open segments write-through (O_DSYNC), so that a batch is one durable
   * write rather than a write and an `fdatasync` (default true). Off where
   * the runtime's `node:fs` write blocks its thread until done (the
   * adapter's `fileWritesBlock`): then a page-cache write and a separate,
   * off-thread `fdatasync` let the thread send and serve meanwhile.
   * Durable either way.
   */
  readonly writeThrough?: boolean;
}

const _SCRATCH_BYTES_MAX = 4 * 1024 * 1024;

/** The durable Raft log (see the module comment). */
export class SegmentedLog implements LogReader {
  readonly #dir: string;
  readonly #fs: FileLayer;
  readonly #dirHandle: FileHandle;
  readonly #logger: (line: string) => void;
  readonly #segmentBytesMax: number;
  readonly #writeThrough: boolean;
  readonly #poison = new Poison("The log");

  /** The compaction point. Invariant: snapshot.index <= lastIndex(). */
  #snapshot: SnapshotMeta;
  /** Oldest live segment sequence (recorded in the compaction point file). */
  #minSeq: number;
  /** Segments in log order. Invariant: contiguous: seg[k+1].firstIndex === seg[k].lastIndex + 1. */
  #segments: Segment[];
  /** Config entries above the compaction point, ascending. */
  #configs: StoredConfigEntry[];
  #nextSeq: number;
  /** Durable last index. */
  #lastIndex: number;
  /** Recent entries. Invariant: covers [cache.first, #lastIndex]. */
  readonly #cache: EntryCache;
  /** Runs durable operations one at a time, coalescing appends (group commit). */
  readonly #queue: GroupCommitQueue;
  /** Encoding buffer reused by appends (see #scratchFor). */
  #scratch: Uint8Array = new Uint8Array(0);

  private constructor(dir: string, fs: FileLayer, dirHandle: FileHandle, opts: SegmentedLogOptions, r: Awaited<ReturnType<typeof recoverLog>>) {
    this.#dir = dir;
    this.#fs = fs;
    this.#dirHandle = dirHandle;
    this.#logger = opts.logger ?? (() => {});
    this.#segmentBytesMax = opts.segmentBytesMax ?? 64 * 1024 * 1024;
    this.#writeThrough = opts.writeThrough ?? true;
    this.#snapshot = r.snapshot;
    this.#minSeq = r.minSeq;
    this.#segments = r.segments;
    this.#configs = r.configs;
    this.#nextSeq = r.nextSeq;
    const last = r.segments[r.segments.length - 1];
    this.#lastIndex = last === undefined ? r.snapshot.index : last.lastIndex;
    this.#queue = new GroupCommitQueue(this.#poison, (batches) => this.#appendGroup(batches));
    this.#cache = new EntryCache(opts.cacheBytesMax ?? 16 * 1024 * 1024, this.#lastIndex + 1);
    assert(this.#lastIndex >= this.#snapshot.index, "the log reaches the compaction point");
  }

  /**
   * Opens (or creates) the log in `dir`, recovering from any crash.
   *
   * @throws StorageCorruptError naming the file and byte offset of damage that is not a torn last write
   * @throws StorageFailedError if the disk fails
   * @throws InvalidArgumentError if an option is out of range
   */
  static async open(dir: string, opts: SegmentedLogOptions = {}): Promise<SegmentedLog> {
    const fs = opts.fs ?? nodeFileLayer;
    const segMax = opts.segmentBytesMax ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(segMax) || segMax < 4096 || segMax > SEGMENT_BYTES_LIMIT) {
      throw new InvalidArgumentError(`segmentBytesMax must be an integer in [4096, ${SEGMENT_BYTES_LIMIT}], got ${segMax}`);
    }
    await fs.mkdir(dir);
    const dirHandle = await fs.openDir(dir);
    try {
      const r = await recoverLog(fs, dir, dirHandle, {
        logger: opts.logger ?? (() => {}),
        commitIndex: opts.commitIndex ?? 0,
        verifyAll: opts.verifyAll ?? false,
        writeThrough: opts.writeThrough ?? true,
      });
      return new SegmentedLog(dir, fs, dirHandle, opts, r);
    } catch (err) {
      await fs.close(dirHandle);
      throw err;
    }
  }

  // ---- LogReader (synchronous) ----

  /** The first index still held: the compaction point + 1. */
  firstIndex(): number {
    this.#poison.check();
    return this.#snapshot.index + 1;
  }

  /** The last index durably stored (the compaction point when the log is empty). */
  lastIndex(): number {
    this.#poison.check();
    return this.#lastIndex;
  }

  /**
   * The term of the entry at `index`; `firstIndex() - 1` answers the
   * compaction point's term.
   *
   * @throws InvalidArgumentError outside [firstIndex() - 1, lastIndex()]
   */
  term(index: number): number {
    this.#poison.check();
    if (index === this.#snapshot.index) return this.#snapshot.term;
    this.#checkRange(index, index + 1);
    if (index >= this.#cache.first) return this.#cache.get(index).term;
    return this.#segmentOf(index).term(index);
  }

  /**
   * Entries [lo, hi), at least one if lo < hi, stopping before `maxBytes`
   * of entry data would be passed. Every entry read from disk is verified.
   *
   * @throws InvalidArgumentError if the range is not inside [firstIndex(), lastIndex() + 1)
   * @throws StorageCorruptError if a record on disk does not check out (the log stops)
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#poison.guardSync(() => {
      if (lo >= hi) {
        if (lo === hi) return [];
        throw new InvalidArgumentError(`entries(${lo}, ${hi}): lo must not exceed hi`);
      }
      this.#checkRange(lo, hi);
      const out: Entry[] = [];
      let budget = maxBytes;
      let i = lo;
      const cacheFirst = this.#cache.first;
      while (i < hi && i < cacheFirst) {
        const seg = this.#segmentOf(i);
        const end = Math.min(hi, seg.lastIndex + 1, cacheFirst);
        budget = seg.read(this.#fs, i, end, budget, out);
        if (out.length < end - lo) return out; // budget reached
        i = end;
      }
      while (i < hi) {
        const e = this.#cache.get(i);
        if (e.data.length > budget && out.length > 0) break;
        budget -= e.data.length;
        out.push(e);
        i++;
      }
      return out;
    });
  }

  /** The compaction point: {index, term, membership}; {0, 0, []} for a log never compacted. */
  snapshotMeta(): SnapshotMeta {
    this.#poison.check();
    return this.#snapshot;
  }

  /**
   * Config entries above the compaction point, ascending, with their raw
   * data (an encoded membership: the caller decodes it). Kept up to date by
   * append, truncation and compaction.
   */
  configs(): StoredConfigEntry[] {
    this.#poison.check();
    return this.#configs.slice();
  }

  /**
   * Memory and shape figures: segment count, bytes held by the in-memory
   * index (record offsets and term runs) and by the entry cache. Entry data
   * outside the cache is never held, so a log of any size costs ~4 bytes of
   * index per entry.
   */
  stats(): { segments: number; indexBytes: number; cacheBytes: number } {
    let indexBytes = 0;
    for (const seg of this.#segments) indexBytes += seg.offsets.byteLength + 16 * seg.runStarts.length;
    return { segments: this.#segments.length, indexBytes, cacheBytes: this.#cache.bytes };
  }

  /** Bytes of the segment files (headers and records), from the in-memory bookkeeping: no file system call. */
  diskBytes(): number {
    let bytes = 0;
    for (const seg of this.#segments) bytes += seg.size;
    return bytes;
  }

  // ---- Durable operations (queued) ----

  /**
   * Appends `entries` (consecutive indexes, terms not decreasing). If
   * `entries[0].index <= lastIndex()`, the conflicting suffix from there on
   * is first removed durably (§5.3). One write and one fdatasync for the
   * batch. Resolves once durable. The entries' data must not be modified
   * afterwards (it may be cached).
   *
   * @throws InvalidArgumentError for a gap, a decreasing term, or an index at or below the compaction point
   * @throws StorageFailedError if the disk fails; the log stops and nothing of this batch is reported durable
   */
  append(entries: readonly Entry[]): Promise<void> {
    return this.#queue.append(entries);
  }

  /**
   * Seals the current segment and starts a new one for every further
   * append, so that everything up to the returned index lives in sealed
   * segments that `endSnapshot` can later delete whole.
   *
   * @returns the last index in the sealed part (the snapshot may cover up to it)
   */
  beginSnapshot(): Promise<number> {
    return this.#queue.task(async () => {
      const last = this.#segments[this.#segments.length - 1];
      if (last !== undefined && !last.sealed && last.count > 0) await this.#seal(last);
      if (last === undefined || last.sealed || last.count > 0) await this.#createSegment(this.#lastIndex + 1);
      return this.#lastIndex;
    });
  }

  /**
   * Records the compaction point durably FIRST (`marker`, its `term`, the
   * membership as of `marker`), then deletes the sealed segments whose
   * entries are all <= marker. A marker below the compaction point (one
   * that moved while the call was queued) does nothing. `firstIndex()` becomes marker + 1; entries
   * <= marker that remain in a kept segment are hidden.
   *
   * @throws InvalidArgumentError if marker is outside [firstIndex() - 1, lastIndex()] or `term` is not its term
   */
  endSnapshot(marker: number, term: number, membership: readonly Member[]): Promise<void> {
    return this.#queue.task(async () => {
      const snap = this.#snapshot;
      // A snapshot installed (or a compaction done) while this call was queued already dropped everything up to the marker.
      if (Number.isSafeInteger(marker) && marker >= 0 && marker < snap.index) return;
      if (!Number.isSafeInteger(marker) || marker < snap.index || marker > this.#lastIndex) {
        throw new InvalidArgumentError(`endSnapshot(${marker}): the marker must be in [${snap.index}, ${this.#lastIndex}]`);
      }
      const actual = marker === snap.index ? snap.term : this.#termHeld(marker);
      if (actual !== term) throw new InvalidArgumentError(`endSnapshot(${marker}, ${term}): the entry at ${marker} has term ${actual}`);
      const meta: SnapshotMeta = { index: marker, term, membership: membership.map((m) => ({ ...m })) };
      await atomicWriteFile(this.#dir, SNAPSHOT_META_FILE_NAME, encodeCompactionPoint({ meta, minSeq: this.#minSeq }), this.#fs, this.#dirHandle);
      this.#snapshot = meta;
      this.#configs = this.#configs.filter((c) => c.index > marker);
      this.#cache.dropBefore(marker + 1);
      const doomed: Segment[] = [];
      while (this.#segments.length > 1 && this.#segments[0]!.sealed && this.#segments[0]!.lastIndex <= marker) {
        doomed.push(this.#segments.shift()!);
      }
      await this.#deleteSegments(doomed);
    });
  }

  /**
   * A follower received a snapshot: the log becomes empty, starting at
   * meta.index + 1 (durably), and the compaction point becomes `meta`.
   *
   * @throws InvalidArgumentError if meta.index is below the current compaction point
   */
  installSnapshot(meta: SnapshotMeta): Promise<void> {
    return this.#queue.task(async () => {
      if (!Number.isSafeInteger(meta.index) || meta.index < this.#snapshot.index || !Number.isSafeInteger(meta.term) || meta.term < (meta.index > 0 ? 1 : 0)) {
        throw new InvalidArgumentError(`installSnapshot: index ${meta.index} / term ${meta.term} out of range (compaction point ${this.#snapshot.index})`);
      }
      // The old log stays visible until the new compaction point is durable.
      const seg = await this.#createSegment(meta.index + 1, false);
      const copy: SnapshotMeta = { index: meta.index, term: meta.term, membership: meta.membership.map((m) => ({ ...m })) };
      await atomicWriteFile(this.#dir, SNAPSHOT_META_FILE_NAME, encodeCompactionPoint({ meta: copy, minSeq: seg.seq }), this.#fs, this.#dirHandle);
      const old = this.#segments;
      this.#segments = [seg];
      this.#minSeq = seg.seq;
      this.#snapshot = copy;
      this.#lastIndex = meta.index;
      this.#configs = [];
      this.#cache.reset(meta.index + 1);
      await this.#deleteSegments(old);
    });
  }

  /** Waits for queued operations, then closes every file. Later calls fail with `ClosedError`. */
  async close(): Promise<void> {
    try {
      await this.#queue.task(async () => {});
    } catch {
      // Already failed: close the files anyway.
    }
    this.#poison.close();
    for (const s of this.#segments) await this.#fs.close(s.file);
    this.#segments = [];
    await this.#fs.close(this.#dirHandle);
  }

  // ---- internals ----

  async #appendGroup(batches: readonly (readonly Entry[])[]): Promise<void> {
    const head = batches[0]![0]!;
    const snap = this.#snapshot;
    if (head.index <= snap.index) {
      throw new InvalidArgumentError(`append at index ${head.index}: entries up to ${snap.index} are compacted and cannot be replaced`);
    }
    if (head.index > this.#lastIndex + 1) {
      throw new InvalidArgumentError(`append at index ${head.index} would leave a gap after the last index ${this.#lastIndex}`);
    }
    const prevTerm = head.index - 1 === snap.index ? snap.term : this.#termHeld(head.index - 1);
    if (head.term < prevTerm) {
      throw new InvalidArgumentError(`append at index ${head.index} with term ${head.term}: the entry before it has the higher term ${prevTerm}`);
    }
    let bytes = 0;
    for (const b of batches) bytes += encodedSize(b);
    if (bytes > SEGMENT_BYTES_LIMIT - SEGMENT_HEADER_BYTES) throw new InvalidArgumentError(`a batch of ${bytes} bytes does not fit in one segment`);
    if (head.index <= this.#lastIndex) await this.#truncateFrom(head.index);

    let seg = this.#segments[this.#segments.length - 1];
    if (seg === undefined || seg.sealed || (seg.count > 0 && (seg.size >= this.#segmentBytesMax || seg.size + bytes > SEGMENT_BYTES_LIMIT))) {
      if (seg !== undefined && !seg.sealed) await this.#seal(seg);
      seg = await this.#createSegment(this.#lastIndex + 1);
    }
    assert(seg.size + bytes <= SEGMENT_BYTES_LIMIT, "the batch fits in the segment");
    // One buffer, one write, one fdatasync for everything coalesced.
    const buf = this.#scratchFor(bytes);
    let at = 0;
    for (const b of batches) at = encodeRecords(b, buf, at, at === 0);
    assert(at === bytes, "encoded exactly the computed size");
    const base = seg.size;
    await this.#fs.writeDurable(seg.file, buf, base);

    // Durable: publish.
    let off = base;
    for (const b of batches) {
      for (const e of b) {
        seg.push(e.index, e.term, off);
        off += RECORD_OVERHEAD_BYTES + e.data.length;
        if (e.type === "config") this.#configs.push({ index: e.index, term: e.term, data: e.data });
        this.#cache.push(e);
      }
    }
    seg.size = base + bytes;
    this.#lastIndex = seg.lastIndex;
  }

  /**
   * A buffer of `bytes` bytes to encode a batch into. Reused across batches
   * (appends run one at a time, and a write completes before the next batch
   * is encoded): saves the allocation, zeroing and GC of ~1 MB per batch of
   * 4 KiB entries. Batches above 4 MiB get their own buffer so a rare huge
   * batch does not pin memory.
   */
  #scratchFor(bytes: number): Uint8Array {
    if (bytes > _SCRATCH_BYTES_MAX) return new Uint8Array(bytes);
    if (this.#scratch.length < bytes) this.#scratch = new Uint8Array(Math.min(_SCRATCH_BYTES_MAX, Math.max(bytes, this.#scratch.length * 2, 64 * 1024)));
    return this.#scratch.subarray(0, bytes);
  }

  /**
   * Removes entries >= index. The single durable step is the creation of a
   * new segment flagged "truncates" starting at `index`: once its header and
   * name are on disk, recovery treats every older entry >= index as gone.
   * Deleting and shrinking the older segments comes after, without syncs:
   * if it is interrupted (or torn by a power loss), recovery does it again.
   */
  async #truncateFrom(index: number): Promise<void> {
    assert(index > this.#snapshot.index && index <= this.#lastIndex, "truncation point is a held entry above the compaction point");
    const t = await this.#createSegment(index, false, SEGMENT_FLAG_TRUNCATES);
    // Durable: publish the cut.
    this.#lastIndex = index - 1;
    this.#configs = this.#configs.filter((c) => c.index < index);
    this.#cache.cutFrom(index);
    const doomed: Segment[] = [];
    while (this.#segments.length > 0 && this.#segments[this.#segments.length - 1]!.firstIndex >= index) {
      doomed.push(this.#segments.pop()!);
    }
    const seg = this.#segments[this.#segments.length - 1];
    this.#segments.push(t);
    this.#logger(`storage: truncated the log from index ${index} (a conflicting suffix); new entries go to ${t.name}`);
    // Clean up: whole segments go, the one holding `index` shrinks and is sealed.
    for (const d of doomed) {
      await this.#fs.close(d.file);
      if (d.hasIndexFile) await this.#fs.unlink(path.join(this.#dir, segmentIndexFileName(d.name)));
      await this.#fs.unlink(d.path);
    }
    if (seg !== undefined && seg.lastIndex >= index) {
      if (seg.hasIndexFile) {
        await this.#fs.unlink(path.join(this.#dir, segmentIndexFileName(seg.name)));
        seg.hasIndexFile = false;
      }
      await this.#fs.truncate(seg.file, seg.cutFrom(index));
      await this.#seal(seg);
    } else if (seg !== undefined && !seg.sealed) {
      await this.#seal(seg);
    }
  }

  /** Seals `seg`: no more appends to it; its index file lets the next open skip reading it. */
  async #seal(seg: Segment): Promise<void> {
    seg.sealed = true;
    // A sealed segment never grows: drop the growth headroom of its offsets.
    if (seg.offsets.length > seg.count) seg.offsets = seg.offsets.slice(0, seg.count);
    await writeSegmentIndexFile(this.#fs, this.#dir, seg, this.#configs.map((c) => c.index));
  }

  /**
   * Creates a new empty segment starting at `firstIndex`, durably (header
   * fdatasynced, directory fsynced), and appends it to the log's segments
   * unless `publish` is false.
   */
  async #createSegment(firstIndex: number, publish = true, flags = 0): Promise<Segment> {
    const seq = this.#nextSeq++;
    const name = segmentFileName(firstIndex, seq);
    const segPath = path.join(this.#dir, name);
    const file = await this.#fs.open(segPath, "create", { writeThrough: this.#writeThrough });
    const seg = new Segment({
      name, path: segPath, seq, firstIndex, file, count: 0, offsets: new Uint32Array(1024), size: SEGMENT_HEADER_BYTES,
      runStarts: [], runTerms: [], sealed: false, hasIndexFile: false,
    });
    if (publish) this.#segments.push(seg);
    await this.#fs.pwrite(file, encodeSegmentHeader(seq, firstIndex, flags), 0);
    await this.#fs.fdatasync(file);
    await this.#fs.fsyncDir(this.#dirHandle);
    return seg;
  }

  async #deleteSegments(doomed: readonly Segment[]): Promise<void> {
    if (doomed.length === 0) return;
    for (const d of doomed) {
      await this.#fs.close(d.file);
      if (d.hasIndexFile) await this.#fs.unlink(path.join(this.#dir, segmentIndexFileName(d.name)));
      await this.#fs.unlink(d.path);
    }
    await this.#fs.fsyncDir(this.#dirHandle);
  }

  #checkRange(lo: number, hi: number): void {
    const first = this.#snapshot.index + 1;
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo < first || hi > this.#lastIndex + 1) {
      throw new InvalidArgumentError(`log range [${lo}, ${hi}) is outside the entries held [${first}, ${this.#lastIndex + 1})`);
    }
  }

  /** Term of a held entry (firstIndex <= index <= lastIndex), without the poison check. */
  #termHeld(index: number): number {
    if (!(index > this.#snapshot.index && index <= this.#lastIndex)) assert(false, `index ${index} is held`);
    if (index >= this.#cache.first) return this.#cache.get(index).term;
    return this.#segmentOf(index).term(index);
  }

  /** The segment holding `index` (binary search; segments are few). */
  #segmentOf(index: number): Segment {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid]!.firstIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    const seg = segs[lo];
    if (!(seg !== undefined && index >= seg.firstIndex && index <= seg.lastIndex)) assert(false, `a segment holds index ${index}`);
    return seg;
  }
}
