/**
 * Opening a segmented log after a clean stop or a crash: finds the
 * compaction point, the segments that are part of the log, finishes what an
 * interrupted operation left half done (deleting obsolete segments, cutting
 * a torn last write) and refuses, with the file and byte offset, anything
 * that could only be corruption.
 *
 * What each leftover means (steps as ordered in `segmented-log.ts`):
 * - `*.tmp`: a replace that never reached its rename; deleted.
 * - a segment older than the compaction point's `minSeq`: retired by an
 *   `installSnapshot` that crashed before deleting it; deleted.
 * - a sealed segment whose entries all lie at or below the compaction point:
 *   left by an `endSnapshot` that crashed before deleting it; deleted.
 * - entries at or after the first index of a newer segment flagged
 *   "truncates": superseded by a suffix truncation whose cleanup did not
 *   finish; older segments are cut there (whatever lies beyond the cut,
 *   even torn bytes, is never read) and segments starting there deleted.
 * - an empty last segment whose first index does not follow the log: created
 *   by an `installSnapshot` that crashed before its compaction point was
 *   written; deleted (it holds nothing).
 * - a last segment with a header shorter than 32 bytes or a bad header and
 *   no records: a creation that crashed; deleted.
 * - damage in the last segment after which no later batch starts: a torn
 *   last write, never acknowledged; cut off and reported to the logger.
 * - any other damage: `StorageCorruptError`.
 *
 * @module
 */
import path from "node:path";
import { StorageCorruptError } from "../errors.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { readSmallFile, TMP_SUFFIX } from "./atomic-file.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";
import { Segment } from "./segment.ts";
import {
  decodeRecordHeader,
  decodeSegmentHeader,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  recordDataValid,
  SEGMENT_FLAG_TRUNCATES,
  SEGMENT_HEADER_BYTES,
  segmentIndexFileName,
} from "./segment-format.ts";
import type { SegmentHeader } from "./segment-format.ts";
import { decodeSegmentIndex, encodeSegmentIndex } from "./segment-index-file.ts";
import type { SegmentIndex } from "./segment-index-file.ts";
import { findLaterBatch, scanSegment } from "./segment-scan.ts";
import type { StoredConfigEntry } from "./segment-scan.ts";
import { decodeCompactionPoint, SNAPSHOT_META_FILE_NAME } from "./snapshot-meta-file.ts";

/** A segment file opened during recovery, header checked. */
interface _Opened {
  readonly name: string;
  readonly path: string;
  readonly file: FileHandle;
  readonly size: number;
  readonly header: SegmentHeader;
}

/** The state of a log as found on disk. */
export interface RecoveredLog {
  readonly snapshot: SnapshotMeta;
  readonly minSeq: number;
  /** Segments in log order. */
  readonly segments: Segment[];
  /** Config entries above the compaction point, ascending. */
  readonly configs: StoredConfigEntry[];
  /** The sequence number for the next segment created. */
  readonly nextSeq: number;
}

/** Options of `recoverLog`. */
export interface RecoverOptions {
  readonly logger: (line: string) => void;
  /** Refuse to cut a torn tail at or below this index (known committed). */
  readonly commitIndex: number;
  /** Verify every record of sealed segments too, instead of trusting their index files. */
  readonly verifyAll: boolean;
  /** Open the segments write-through (O_DSYNC), as the log opens new ones (see `SegmentedLogOptions.writeThrough`). */
  readonly writeThrough: boolean;
}

/**
 * Writes a sealed segment's index file: tmp + rename, no fsync (see
 * `segment-index-file.ts`: it is derived and self-checking).
 */
export async function writeSegmentIndexFile(fs: FileLayer, dir: string, seg: Segment, configIndexes: readonly number[]): Promise<void> {
  const bytes = encodeSegmentIndex({
    seq: seg.seq,
    firstIndex: seg.firstIndex,
    count: seg.count,
    segmentBytes: seg.size,
    runStarts: seg.runStarts,
    runTerms: seg.runTerms,
    configIndexes: configIndexes.filter((i) => i >= seg.firstIndex && i <= seg.lastIndex),
    offsets: seg.offsets,
  });
  const target = path.join(dir, segmentIndexFileName(seg.name));
  const tmp = await fs.open(target + TMP_SUFFIX, "replace");
  try {
    await fs.pwrite(tmp, bytes, 0);
  } finally {
    await fs.close(tmp);
  }
  await fs.rename(target + TMP_SUFFIX, target);
  seg.hasIndexFile = true;
}

/** Loads a segment's index file if it is present, intact and matches the segment; otherwise null. */
function _loadIndex(fs: FileLayer, bytes: Uint8Array | null, file: FileHandle, idxPath: string, seq: number, firstIndex: number, size: number): SegmentIndex | null {
  if (bytes === null) return null;
  const x = decodeSegmentIndex(bytes, idxPath);
  if (x === null || x.seq !== seq || x.firstIndex !== firstIndex || x.segmentBytes !== size) return null;
  if (x.count === 0) return size === SEGMENT_HEADER_BYTES ? x : null;
  // Spot-check the last record against the index: its header, index, term and end.
  const off = x.offsets[x.count - 1]!;
  const h = new Uint8Array(RECORD_HEADER_BYTES);
  if (off < SEGMENT_HEADER_BYTES || fs.pread(file, h, off) !== RECORD_HEADER_BYTES) return null;
  const rh = decodeRecordHeader(h, 0);
  if (typeof rh === "string") return null;
  if (rh.index !== firstIndex + x.count - 1 || rh.term !== x.runTerms[x.runTerms.length - 1]) return null;
  if (off + RECORD_OVERHEAD_BYTES + rh.dataLen !== size || x.offsets[0] !== SEGMENT_HEADER_BYTES) return null;
  return x;
}

/** Reads and verifies one record's data (config entries of segments loaded from their index file). */
function _readConfig(fs: FileLayer, seg: Segment, index: number): StoredConfigEntry {
  const k = index - seg.firstIndex;
  const start = seg.offsets[k]!;
  const buf = new Uint8Array(seg.recordEnd(k) - start);
  fs.pread(seg.file, buf, start);
  const h = decodeRecordHeader(buf, 0);
  if (typeof h === "string") throw new StorageCorruptError(seg.path, start, h);
  if (h.index !== index || RECORD_OVERHEAD_BYTES + h.dataLen !== buf.length || !recordDataValid(buf, 0, h.dataLen)) {
    throw new StorageCorruptError(seg.path, start, "config record does not check out");
  }
  return { index, term: h.term, data: buf.slice(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + h.dataLen) };
}

/**
 * Recovers the log in `dir` (see the module comment for what is repaired
 * and what is refused).
 *
 * @throws StorageCorruptError naming the file and byte offset of the damage
 * @throws StorageFailedError if the disk fails
 */
export async function recoverLog(fs: FileLayer, dir: string, dirHandle: FileHandle, opts: RecoverOptions): Promise<RecoveredLog> {
  const log = opts.logger;
  const names = await fs.readdir(dir);
  const present = new Set(names);
  let dirChanged = false;
  const remove = async (name: string, why: string): Promise<void> => {
    if (!present.has(name)) return;
    await fs.unlink(path.join(dir, name));
    present.delete(name);
    dirChanged = true;
    if (why !== "") log(`storage: removed ${path.join(dir, name)}: ${why}`);
  };
  for (const name of names) {
    if (name === SNAPSHOT_META_FILE_NAME + TMP_SUFFIX || (name.startsWith("log-") && name.endsWith(".idx" + TMP_SUFFIX))) {
      await remove(name, "");
    }
  }

  const metaBytes = await readSmallFile(dir, SNAPSHOT_META_FILE_NAME, fs);
  const cp = metaBytes === null
    ? { meta: { index: 0, term: 0, membership: [] }, minSeq: 0 }
    : decodeCompactionPoint(metaBytes, path.join(dir, SNAPSHOT_META_FILE_NAME));
  const snapshot = cp.meta;

  const found = names
    .map((name) => ({ name, parsed: parseSegmentFileName(name) }))
    .filter((x): x is { name: string; parsed: { firstIndex: number; seq: number } } => x.parsed !== null)
    .sort((a, b) => a.parsed.seq - b.parsed.seq);
  let nextSeq = cp.minSeq;
  const candidates: typeof found = [];
  for (const f of found) {
    nextSeq = Math.max(nextSeq, f.parsed.seq + 1);
    if (f.parsed.seq < cp.minSeq) {
      await remove(segmentIndexFileName(f.name), "");
      await remove(f.name, "retired by an installed snapshot");
    } else {
      candidates.push(f);
    }
  }

  const segments: Segment[] = [];
  const configs: StoredConfigEntry[] = [];
  const opened: _Opened[] = [];
  /** Handles still open: closed on the way out if recovery fails. */
  const openFiles = new Set<FileHandle>();
  const closeFile = async (h: FileHandle): Promise<void> => {
    openFiles.delete(h);
    await fs.close(h);
  };
  try {
    // Pass 1: open every segment and check its header.
    for (let k = 0; k < candidates.length; k++) {
      const { name, parsed } = candidates[k]!;
      const segPath = path.join(dir, name);
      // As the log opens new ones: the last segment takes the next appends.
      const file = await fs.open(segPath, "readwrite", { writeThrough: opts.writeThrough });
      openFiles.add(file);
      const size = fs.size(file);
      const hb = new Uint8Array(SEGMENT_HEADER_BYTES);
      const header = decodeSegmentHeader(hb.subarray(0, fs.pread(file, hb, 0)));
      if (typeof header === "string") {
        await closeFile(file);
        if (k === candidates.length - 1 && size <= SEGMENT_HEADER_BYTES) {
          await remove(name, "its creation did not finish (no records)");
          continue;
        }
        throw new StorageCorruptError(segPath, 0, header);
      }
      opened.push({ name, path: segPath, file, size, header });
      if (header.seq !== parsed.seq || header.firstIndex !== parsed.firstIndex) {
        throw new StorageCorruptError(segPath, 0, "the segment header does not match the file name");
      }
    }
    // Pass 2: a truncation segment cuts every older segment at its first index.
    const limits: number[] = new Array<number>(opened.length).fill(Infinity);
    for (let k = opened.length - 2; k >= 0; k--) {
      const next = opened[k + 1]!.header;
      limits[k] = Math.min(limits[k + 1]!, (next.flags & SEGMENT_FLAG_TRUNCATES) !== 0 ? next.firstIndex : Infinity);
    }
    // Pass 3: load each segment (index file or full scan), in log order.
    for (let k = 0; k < opened.length; k++) {
      const o = opened[k]!;
      const { name, file, size } = o;
      const segPath = o.path;
      const { seq, firstIndex, flags } = o.header;
      const isLast = k === opened.length - 1;
      const limit = limits[k]!;
      const idxName = segmentIndexFileName(name);
      const prev = segments[segments.length - 1];
      if (firstIndex >= limit) {
        await closeFile(file);
        await remove(idxName, "");
        await remove(name, `superseded by a truncation at index ${limit}`);
        continue;
      }
      if ((flags & SEGMENT_FLAG_TRUNCATES) === 0 && isLast && size === SEGMENT_HEADER_BYTES &&
        (prev === undefined ? firstIndex !== snapshot.index + 1 : firstIndex !== prev.lastIndex + 1)) {
        await closeFile(file);
        await remove(name, "an empty segment left by an unfinished snapshot install");
        continue;
      }
      if (prev !== undefined && firstIndex !== prev.lastIndex + 1) {
        throw new StorageCorruptError(segPath, 0, `the segment starts at index ${firstIndex} but the previous one (${prev.name}) ends at ${prev.lastIndex}`);
      }
      const idxBytes = present.has(idxName) && !opts.verifyAll ? await readSmallFile(dir, idxName, fs) : null;
      const idx = _loadIndex(fs, idxBytes, file, path.join(dir, idxName), seq, firstIndex, size);
      const prevTerm = prev?.lastTerm ?? 0;
      let seg: Segment;
      if (idx !== null && (idx.count === 0 || idx.runTerms[0]! >= prevTerm)) {
        seg = new Segment({
          name, path: segPath, seq, firstIndex, file, count: idx.count, offsets: idx.offsets,
          size, runStarts: [...idx.runStarts], runTerms: [...idx.runTerms], sealed: true, hasIndexFile: true,
        });
        for (const c of idx.configIndexes) if (c < limit) configs.push(_readConfig(fs, seg, c));
      } else {
        if (present.has(idxName) && (idxBytes !== null || isLast)) {
          // Never leave an index file that does not describe its segment:
          // the segment could grow back to the size it records.
          await remove(idxName, "");
        }
        const scan = scanSegment(fs, file, firstIndex, prevTerm, size, limit - firstIndex);
        if (scan.damage !== null) {
          const d = scan.damage;
          if (!isLast) throw new StorageCorruptError(segPath, d.offset, `${d.reason} (in a sealed segment)`);
          const nextIndex = firstIndex + scan.count;
          const later = findLaterBatch(fs, file, d.offset, size, nextIndex);
          if (later >= 0) {
            throw new StorageCorruptError(segPath, d.offset, `${d.reason}; a later write starts at byte ${later}, so this record had been acknowledged`);
          }
          if (nextIndex - 1 < opts.commitIndex) {
            throw new StorageCorruptError(segPath, d.offset, `${d.reason}; cutting here would lose committed entries up to ${opts.commitIndex}`);
          }
          await fs.truncate(file, scan.end);
          await fs.fdatasync(file);
          log(`storage: cut a torn write off ${segPath} at byte ${d.offset} (${size - d.offset} bytes, ${d.reason}); entries from index ${nextIndex} on were never acknowledged`);
        }
        // Sealed segments never grow: keep their offsets without growth headroom.
        const offsets = isLast ? scan.offsets : scan.offsets.slice(0, scan.count);
        seg = new Segment({
          name, path: segPath, seq, firstIndex, file, count: scan.count, offsets,
          size: scan.end, runStarts: scan.runStarts, runTerms: scan.runTerms, sealed: !isLast, hasIndexFile: false,
        });
        configs.push(...scan.configs);
      }
      segments.push(seg);
      // Finish an interrupted truncation: drop what the newer segment superseded.
      if (seg.lastIndex >= limit) seg.cutFrom(limit);
      if (seg.size < size) {
        if (seg.hasIndexFile) {
          await remove(idxName, "");
          seg.hasIndexFile = false;
        }
        await fs.truncate(file, seg.size);
        await fs.fdatasync(file);
        if (limit !== Infinity) log(`storage: finished a truncation: cut ${segPath} at byte ${seg.size} (entries from ${limit} on are superseded)`);
      }
      if (!isLast && !seg.hasIndexFile) await writeSegmentIndexFile(fs, dir, seg, configs.map((c) => c.index));
    }

    // Finish an interrupted endSnapshot: sealed segments wholly at or below the compaction point go.
    while (segments.length > 0 && segments[0]!.sealed && segments[0]!.lastIndex <= snapshot.index) {
      const seg = segments.shift()!;
      await closeFile(seg.file);
      await remove(segmentIndexFileName(seg.name), "");
      await remove(seg.name, `all its entries are at or below the compaction point ${snapshot.index}`);
    }
    const first = segments[0];
    const last = segments[segments.length - 1];
    if (first !== undefined && first.firstIndex > snapshot.index + 1) {
      throw new StorageCorruptError(first.path, 0, `the log starts at index ${first.firstIndex} but the compaction point is ${snapshot.index}: entries in between are missing`);
    }
    if (last !== undefined && last.lastIndex < snapshot.index) {
      throw new StorageCorruptError(last.path, last.size, `the log ends at index ${last.lastIndex}, before the compaction point ${snapshot.index}`);
    }
    if (first !== undefined && snapshot.index >= first.firstIndex && snapshot.index <= first.lastIndex && first.term(snapshot.index) !== snapshot.term) {
      throw new StorageCorruptError(first.path, first.offsets[snapshot.index - first.firstIndex]!, `the entry at the compaction point ${snapshot.index} has term ${first.term(snapshot.index)}, the compaction point says ${snapshot.term}`);
    }
    if (dirChanged) await fs.fsyncDir(dirHandle);
  } catch (err) {
    for (const h of openFiles) await fs.close(h);
    throw err;
  }
  return {
    snapshot,
    minSeq: cp.minSeq,
    segments,
    configs: configs.filter((c) => c.index > snapshot.index),
    nextSeq,
  };
}
