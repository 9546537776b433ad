/**
 * State-machine snapshots in the data directory (`DATA/snapshots/`): the
 * ones this node takes (built-in compaction, or to send to a follower) and
 * the ones it receives through InstallSnapshot.
 *
 * A snapshot is two files: `snap-<index>.bin` (the state machine's bytes,
 * streamed, never held whole in memory) and `snap-<index>.meta` (index,
 * term, membership as of index, byte length and CRC32C of the data). The
 * meta file is written last, atomically, after the data is durable: it is
 * the commit point, so a `.bin` without its `.meta` is an interrupted
 * write and is removed at start-up.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StorageCorruptError, StorageFailedError } from "../errors.ts";
import { atomicWriteFile, frameSmallFile, readSmallFile, unframeSmallFile } from "../storage/atomic-file.ts";
import { readU32, readU64, writeU32, writeU64 } from "../storage/bytes.ts";
import { crc32c } from "../storage/crc32c.ts";
import { nodeFileLayer } from "../storage/file-layer.ts";
import { decodeMembership, encodeMembership } from "../raft/membership-codec.ts";
import type { SnapshotMeta } from "../raft/types.ts";

const _META_MAGIC = 0x52534e30; // "RSN0"
/** Chunk size for reading a snapshot back (restore, sending). */
export const SNAPSHOT_READ_CHUNK_BYTES = 1024 * 1024;
/** How many complete snapshots to keep (the newest, and one in case a transfer still reads it). */
const _KEEP = 2;

/** A complete snapshot on disk. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly byteLength: number;
  readonly crc: number;
  readonly file: string;
}

const _name = (index: number) => `snap-${String(index).padStart(20, "0")}`;

function _encodeMeta(s: Omit<StoredSnapshot, "file">): Uint8Array {
  const members = encodeMembership(s.meta.membership);
  const out = new Uint8Array(28 + members.length);
  writeU64(out, 0, s.meta.index);
  writeU64(out, 8, s.meta.term);
  writeU64(out, 16, s.byteLength);
  writeU32(out, 24, s.crc);
  out.set(members, 28);
  return frameSmallFile(_META_MAGIC, out);
}

function _decodeMeta(bytes: Uint8Array, file: string, dataFile: string): StoredSnapshot {
  const p = unframeSmallFile(_META_MAGIC, bytes, file);
  if (p.length < 28) throw new StorageCorruptError(file, 8, "snapshot meta too short");
  let membership;
  try {
    membership = decodeMembership(p.subarray(28));
  } catch (err) {
    throw new StorageCorruptError(file, 36, `bad membership: ${(err as Error).message}`);
  }
  return { meta: { index: readU64(p, 0), term: readU64(p, 8), membership }, byteLength: readU64(p, 16), crc: readU32(p, 24), file: dataFile };
}

/** Reads `file` from `offset` in chunks. */
export async function* readChunks(file: string, offset = 0): AsyncIterable<Uint8Array> {
  const handle = await fs.promises.open(file, "r");
  try {
    let pos = offset;
    for (;;) {
      const buf = new Uint8Array(SNAPSHOT_READ_CHUNK_BYTES);
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** Snapshot files of one data directory. */
export class SnapshotStore {
  readonly dir: string;
  #latest: StoredSnapshot | null;

  private constructor(dir: string, latest: StoredSnapshot | null) {
    this.dir = dir;
    this.#latest = latest;
  }

  /** Opens (creating) `dataDir/snapshots`, removing interrupted writes and partial transfers. */
  static async open(dataDir: string): Promise<SnapshotStore> {
    const dir = path.join(dataDir, "snapshots");
    fs.mkdirSync(dir, { recursive: true });
    let latest: StoredSnapshot | null = null;
    const names = fs.readdirSync(dir).sort();
    for (const n of names) {
      const full = path.join(dir, n);
      if (n.endsWith(".tmp") || n.endsWith(".part")) {
        fs.rmSync(full, { force: true });
      } else if (n.endsWith(".bin") && !names.includes(n.replace(/\.bin$/, ".meta"))) {
        fs.rmSync(full, { force: true }); // its meta was never written: an interrupted write
      } else if (n.endsWith(".meta")) {
        const dataFile = full.replace(/\.meta$/, ".bin");
        const bytes = await readSmallFile(dir, n);
        if (bytes === null) continue;
        const s = _decodeMeta(bytes, full, dataFile);
        const size = fs.existsSync(dataFile) ? fs.statSync(dataFile).size : -1;
        if (size !== s.byteLength) throw new StorageCorruptError(dataFile, Math.max(size, 0), `snapshot data is ${size} bytes, its meta says ${s.byteLength}`);
        if (latest === null || s.meta.index > latest.meta.index) latest = s;
      }
    }
    return new SnapshotStore(dir, latest);
  }

  /** The newest complete snapshot, or null. */
  latest(): StoredSnapshot | null {
    return this.#latest;
  }

  /**
   * Writes a snapshot durably from `chunks` and makes it the latest.
   * @throws StorageFailedError if the disk fails
   */
  async write(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<StoredSnapshot> {
    const tmp = path.join(this.dir, `${_name(meta.index)}.bin.tmp`);
    const handle = await fs.promises.open(tmp, "w");
    let crc = 0;
    let length = 0;
    try {
      for await (const chunk of chunks) {
        await handle.write(chunk, 0, chunk.length, length);
        crc = crc32c(chunk, 0, chunk.length, crc);
        length += chunk.length;
      }
      await handle.datasync();
    } catch (err) {
      await handle.close().catch(() => {});
      fs.rmSync(tmp, { force: true });
      throw err instanceof StorageFailedError ? err : new StorageFailedError(tmp, "snapshot write", err);
    }
    await handle.close();
    return this.#commit(tmp, meta, length, crc);
  }

  /**
   * Adopts a fully received, already fsynced file as a snapshot (renamed into
   * place; meta written last).
   */
  async adopt(file: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    let crc = 0;
    let length = 0;
    for await (const chunk of readChunks(file)) {
      crc = crc32c(chunk, 0, chunk.length, crc);
      length += chunk.length;
    }
    return this.#commit(file, meta, length, crc);
  }

  async #commit(tmp: string, meta: SnapshotMeta, byteLength: number, crc: number): Promise<StoredSnapshot> {
    const dataFile = path.join(this.dir, `${_name(meta.index)}.bin`);
    try {
      fs.renameSync(tmp, dataFile);
    } catch (err) {
      throw new StorageFailedError(tmp, "rename", err);
    }
    const stored: StoredSnapshot = { meta, byteLength, crc, file: dataFile };
    // The meta file is the commit point; atomicWriteFile fsyncs the directory, covering the rename above too.
    await atomicWriteFile(this.dir, `${_name(meta.index)}.meta`, _encodeMeta(stored), nodeFileLayer);
    if (this.#latest === null || meta.index >= this.#latest.meta.index) this.#latest = stored;
    this.#prune();
    return stored;
  }

  /** Reads a snapshot's data, checking its length and checksum at the end. */
  async *read(s: StoredSnapshot, offset = 0): AsyncIterable<Uint8Array> {
    let crc = 0;
    let length = offset;
    for await (const chunk of readChunks(s.file, offset)) {
      if (offset === 0) crc = crc32c(chunk, 0, chunk.length, crc);
      length += chunk.length;
      yield chunk;
    }
    if (length !== s.byteLength || (offset === 0 && crc !== s.crc)) {
      throw new StorageCorruptError(s.file, 0, `snapshot data does not match its meta (length ${length} vs ${s.byteLength}, checksum ${crc === s.crc ? "ok" : "mismatch"})`);
    }
  }

  /** A path for an incoming transfer's partial file. */
  incomingPath(from: string, snapshotId: string): string {
    return path.join(this.dir, `incoming-${from}-${snapshotId}.part`);
  }

  #prune(): void {
    const metas = fs.readdirSync(this.dir).filter((n) => n.endsWith(".meta")).sort();
    for (const n of metas.slice(0, Math.max(0, metas.length - _KEEP))) {
      fs.rmSync(path.join(this.dir, n), { force: true });
      fs.rmSync(path.join(this.dir, n.replace(/\.meta$/, ".bin")), { force: true });
    }
  }
}
