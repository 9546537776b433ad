/**
 * State-machine snapshots in the data directory (`DATA/snapshots/`), on the
 * `FileLayer` (so the simulated disk and the crash-point tests reach them):
 * the ones this node takes (built-in compaction, or to send to a follower)
 * and the ones it installs from a leader.
 *
 * A snapshot is two files named from this store's own counter, never from
 * request data: `snap-<index>-<seq>.bin` (the state machine's bytes,
 * streamed, never held whole in memory) and `snap-<index>-<seq>.meta`
 * (index, term, membership as of index, byte length and CRC32C of the
 * data). The data is made durable and renamed into place first; the meta
 * file is written last, atomically: it is the commit point, so a `.bin`
 * without its `.meta` is an interrupted write and is removed at start-up.
 * A `.meta` whose `.bin` is missing or of another size is corruption.
 *
 * Snapshots being received (`incoming-<seq>.part`) are kept apart: one
 * becomes a stored snapshot only when the core decides to install it
 * (`adopt`), so a transfer the core refuses never shadows the snapshot the
 * log's compaction point depends on. Partial files are removed at start-up.
 *
 * Which stored snapshot agrees with the log is the driver's question
 * (`src/node/node-storage.ts`): this store only keeps them and checks
 * their framing.
 *
 * @module
 */
import path from "node:path";
import { StorageCorruptError } from "../errors.ts";
import { decodeMembership, encodeMembership } from "../raft/membership-codec.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { atomicWriteFile, frameSmallFile, readSmallFile, TMP_SUFFIX, unframeSmallFile } from "./atomic-file.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { crc32c } from "./crc32c.ts";
import { nodeFileLayer } from "./file-layer.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";

const _META_MAGIC = 0x52534e31; // "RSN1"
/** Chunk size for reading a snapshot back (restore, sending). */
export const SNAPSHOT_READ_CHUNK_BYTES = 1024 * 1024;
/** Complete snapshots kept at or above the log's compaction point (the newest, and one a transfer may still read). */
const _KEEP = 2;
const _NAME_RE = /^snap-(\d{20})-(\d{12})\.(bin|meta)$/;
const _INCOMING_RE = /^incoming-\d+\.part$/;

/** A complete snapshot on disk. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly byteLength: number;
  readonly crc: number;
  /** Path of the data file. */
  readonly file: string;
  /** The store's counter when it was written (newer snapshots at one index have higher ones). */
  readonly seq: number;
}

const _base = (index: number, seq: number) => `snap-${String(index).padStart(20, "0")}-${String(seq).padStart(12, "0")}`;

function _encodeMeta(s: StoredSnapshot): Uint8Array {
  const members = encodeMembership(s.meta.membership);
  const out = new Uint8Array(28 + members.length);
  writeU64(out, 0, s.meta.index);
  writeU64(out, 8, s.meta.term);
  writeU64(out, 16, s.byteLength);
  writeU32(out, 24, s.crc);
  out.set(members, 28);
  return frameSmallFile(_META_MAGIC, out);
}

function _decodeMeta(bytes: Uint8Array, metaFile: string, dataFile: string, seq: number): StoredSnapshot {
  const p = unframeSmallFile(_META_MAGIC, bytes, metaFile);
  if (p.length < 28) throw new StorageCorruptError(metaFile, 8, "snapshot meta too short");
  let membership;
  try {
    membership = decodeMembership(p.subarray(28));
  } catch (err) {
    throw new StorageCorruptError(metaFile, 36, `bad membership: ${(err as Error).message}`);
  }
  return { meta: { index: readU64(p, 0), term: readU64(p, 8), membership }, byteLength: readU64(p, 16), crc: readU32(p, 24), file: dataFile, seq };
}

/** A snapshot being received: a partial file written at increasing offsets. */
export class IncomingSnapshot {
  /** Bytes written so far. */
  bytes = 0;
  readonly path: string;
  readonly #fs: FileLayer;
  readonly #file: FileHandle;
  #closed = false;

  /** @internal made by `SnapshotStore.createIncoming` */
  constructor(fs: FileLayer, filePath: string, file: FileHandle) {
    this.#fs = fs;
    this.path = filePath;
    this.#file = file;
  }

  /** Appends `chunk` (at `bytes`). */
  async write(chunk: Uint8Array): Promise<void> {
    await this.#fs.pwrite(this.#file, chunk, this.bytes);
    this.bytes += chunk.length;
  }

  /** Makes the data durable and closes the file; it can then be adopted. */
  async finish(): Promise<void> {
    await this.#fs.fdatasync(this.#file);
    await this.#close();
  }

  /** Closes and deletes the partial file. */
  async discard(): Promise<void> {
    await this.#close().catch(() => {});
    await this.#fs.unlink(this.path).catch(() => {});
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fs.close(this.#file);
  }
}

/** Snapshot files of one data directory (see the module comment). */
export class SnapshotStore {
  readonly dir: string;
  readonly #fs: FileLayer;
  /** Complete snapshots, ascending by (index, seq). */
  #all: StoredSnapshot[];
  #nextSeq: number;

  private constructor(dir: string, fs: FileLayer, all: StoredSnapshot[], nextSeq: number) {
    this.dir = dir;
    this.#fs = fs;
    this.#all = all;
    this.#nextSeq = nextSeq;
  }

  /** Bytes of the complete snapshots' data files, from what the store knows: no file system call. */
  diskBytes(): number {
    let bytes = 0;
    for (const s of this.#all) bytes += s.byteLength;
    return bytes;
  }

  /**
   * Opens (creating) `dataDir/snapshots`, removing interrupted writes and
   * partial transfers.
   *
   * @throws StorageCorruptError naming the file when a meta file is damaged or its data file is missing or of the wrong size
   * @throws StorageFailedError if the disk fails
   */
  static async open(dataDir: string, fs: FileLayer = nodeFileLayer): Promise<SnapshotStore> {
    const dir = path.join(dataDir, "snapshots");
    await fs.mkdir(dir);
    const names = (await fs.readdir(dir)).sort();
    const all: StoredSnapshot[] = [];
    let maxSeq = 0;
    let removed = false;
    for (const n of names) {
      const full = path.join(dir, n);
      const m = _NAME_RE.exec(n);
      if (n.endsWith(TMP_SUFFIX) || _INCOMING_RE.test(n)) {
        await fs.unlink(full);
        removed = true;
        continue;
      }
      if (m === null) continue;
      const seq = Number(m[2]);
      maxSeq = Math.max(maxSeq, seq);
      const base = n.slice(0, -(m[3]!.length + 1));
      if (m[3] === "bin") {
        if (!names.includes(`${base}.meta`)) {
          await fs.unlink(full); // its meta was never written: an interrupted write (or removal)
          removed = true;
        }
        continue;
      }
      const dataFile = path.join(dir, `${base}.bin`);
      const bytes = await readSmallFile(dir, n, fs);
      if (bytes === null) continue;
      const s = _decodeMeta(bytes, full, dataFile, seq);
      if (s.meta.index !== Number(m[1])) throw new StorageCorruptError(full, 8, `meta says index ${s.meta.index}, its name says ${Number(m[1])}`);
      if (!names.includes(`${base}.bin`)) throw new StorageCorruptError(dataFile, 0, `snapshot data file is missing (its meta ${full} is there)`);
      const h = await fs.open(dataFile, "read");
      const size = fs.size(h);
      await fs.close(h);
      if (size !== s.byteLength) throw new StorageCorruptError(dataFile, Math.min(size, s.byteLength), `snapshot data is ${size} bytes, its meta says ${s.byteLength}`);
      all.push(s);
    }
    if (removed) await _fsyncDir(fs, dir);
    all.sort((a, b) => a.meta.index - b.meta.index || a.seq - b.seq);
    return new SnapshotStore(dir, fs, all, maxSeq + 1);
  }

  /** Every complete snapshot, ascending by index. */
  list(): readonly StoredSnapshot[] {
    return this.#all;
  }

  /** The newest complete snapshot, or null. */
  latest(): StoredSnapshot | null {
    return this.#all[this.#all.length - 1] ?? null;
  }

  /** The newest snapshot at exactly `index`, or null. */
  get(index: number): StoredSnapshot | null {
    for (let i = this.#all.length - 1; i >= 0; i--) if (this.#all[i]!.meta.index === index) return this.#all[i]!;
    return null;
  }

  /**
   * Writes a snapshot durably from `chunks`.
   * @throws StorageFailedError if the disk fails
   */
  async write(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<StoredSnapshot> {
    const seq = this.#nextSeq++;
    const tmp = path.join(this.dir, `${_base(meta.index, seq)}.bin${TMP_SUFFIX}`);
    const file = await this.#fs.open(tmp, "replace");
    let crc = 0;
    let length = 0;
    try {
      for await (const chunk of chunks) {
        await this.#fs.pwrite(file, chunk, length);
        crc = crc32c(chunk, 0, chunk.length, crc);
        length += chunk.length;
      }
      await this.#fs.fdatasync(file);
    } catch (err) {
      await this.#fs.close(file).catch(() => {});
      await this.#fs.unlink(tmp).catch(() => {});
      throw err;
    }
    await this.#fs.close(file);
    return this.#commit(tmp, meta, seq, length, crc);
  }

  /** Opens a partial file for a snapshot being received, named from this store's counter. */
  async createIncoming(): Promise<IncomingSnapshot> {
    const p = path.join(this.dir, `incoming-${this.#nextSeq++}.part`);
    const file = await this.#fs.open(p, "create");
    return new IncomingSnapshot(this.#fs, p, file);
  }

  /**
   * Adopts a fully received and finished transfer as the snapshot `meta`
   * describes (renamed into place; meta written last). The checksum is
   * computed from the durable bytes.
   */
  async adopt(incoming: IncomingSnapshot, meta: SnapshotMeta): Promise<StoredSnapshot> {
    let crc = 0;
    let length = 0;
    const file = await this.#fs.open(incoming.path, "read");
    try {
      const buf = new Uint8Array(Math.max(1, Math.min(SNAPSHOT_READ_CHUNK_BYTES, this.#fs.size(file))));
      for (;;) {
        const n = this.#fs.pread(file, buf, length);
        if (n === 0) break;
        crc = crc32c(buf, 0, n, crc);
        length += n;
      }
    } finally {
      await this.#fs.close(file);
    }
    return this.#commit(incoming.path, meta, this.#nextSeq++, length, crc);
  }

  async #commit(tmp: string, meta: SnapshotMeta, seq: number, byteLength: number, crc: number): Promise<StoredSnapshot> {
    const base = _base(meta.index, seq);
    const dataFile = path.join(this.dir, `${base}.bin`);
    await this.#fs.rename(tmp, dataFile);
    const stored: StoredSnapshot = { meta, byteLength, crc, file: dataFile, seq };
    // The meta file is the commit point; atomicWriteFile fsyncs the directory, covering the rename above too.
    await atomicWriteFile(this.dir, `${base}.meta`, _encodeMeta(stored), this.#fs);
    this.#all.push(stored);
    this.#all.sort((a, b) => a.meta.index - b.meta.index || a.seq - b.seq);
    return stored;
  }

  /**
   * Reads a snapshot's data from `offset`, checking its length (and, from
   * offset 0, its checksum) at the end.
   *
   * @throws StorageCorruptError when the data does not match its meta
   */
  async *read(s: StoredSnapshot, offset = 0): AsyncIterable<Uint8Array> {
    const file = await this.#fs.open(s.file, "read");
    let crc = 0;
    let pos = offset;
    try {
      for (;;) {
        // Small snapshots get small buffers (a megabyte each would be most of the cost).
        const buf = new Uint8Array(Math.max(1, Math.min(SNAPSHOT_READ_CHUNK_BYTES, s.byteLength - pos)));
        const n = this.#fs.pread(file, buf, pos);
        if (n === 0) break;
        if (offset === 0) crc = crc32c(buf, 0, n, crc);
        pos += n;
        yield n === buf.length ? buf : buf.subarray(0, n);
      }
    } finally {
      await this.#fs.close(file);
    }
    if (pos !== s.byteLength || (offset === 0 && crc !== s.crc)) {
      throw new StorageCorruptError(s.file, Math.min(pos, s.byteLength), `snapshot data does not match its meta (length ${pos} vs ${s.byteLength}, checksum ${offset !== 0 || crc === s.crc ? "ok" : "mismatch"})`);
    }
  }

  /** Deletes a snapshot: its meta first (the commit point), then its data. */
  async remove(s: StoredSnapshot): Promise<void> {
    if (!this.#all.includes(s)) return; // removed already (two prunes overlapped)
    const base = path.basename(s.file).slice(0, -".bin".length);
    this.#all = this.#all.filter((x) => x !== s);
    await this.#fs.unlink(path.join(this.dir, `${base}.meta`));
    await this.#fs.unlink(s.file);
    await _fsyncDir(this.#fs, this.dir);
  }

  /**
   * Drops what no restart can use: every snapshot below the log's
   * compaction point `compactedIndex` (the log no longer holds the entries
   * between it and the compaction point), and all but the newest `_KEEP`
   * at or above it; never one at an index in `pinned` (still to be restored).
   */
  async prune(compactedIndex: number, pinned: ReadonlySet<number> = new Set()): Promise<void> {
    const above = this.#all.filter((s) => s.meta.index >= compactedIndex);
    const keep = new Set(above.slice(-_KEEP));
    for (const s of [...this.#all]) if (!keep.has(s) && !pinned.has(s.meta.index)) await this.remove(s);
  }
}

async function _fsyncDir(fs: FileLayer, dir: string): Promise<void> {
  const d = await fs.openDir(dir);
  try {
    await fs.fsyncDir(d);
  } finally {
    await fs.close(d);
  }
}
