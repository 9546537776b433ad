/**
 * The durable file primitives the storage layer is built on, over `node:fs`
 * (Node, Deno and Bun all provide real pwrite/pread/fdatasync and directory
 * fsync through it).
 *
 * Rules every caller relies on:
 * - Files are never opened with the append flag: on Linux `O_APPEND` makes
 *   positional writes ignore their position. Every write names its offset.
 * - Writes, syncs, renames and truncations are asynchronous (libuv thread
 *   pool, off the event loop; but Deno's `write` does its work before it
 *   returns, see `RuntimeAdapter.fileWritesBlock`): the storage layer
 *   issues one of each per batch, never one per entry. Reads are
 *   synchronous `pread`s, because the Raft core's `LogReader` is synchronous.
 * - An `open` that finds no file descriptor left (EMFILE/ENFILE: a flood of
 *   connections) waits for one, up to a minute, rather than fail: nothing
 *   was written yet, and the servers give descriptors back.
 * - Every error surfaces as `StorageFailedError` naming the file and the
 *   operation. The stores built on this layer treat it as fatal ("fsyncgate":
 *   after a failed fsync the kernel may have dropped the dirty pages, so a
 *   retry that succeeds proves nothing).
 *
 * @module
 */
import fs from "node:fs";
import nodePath from "node:path";
import { StorageFailedError } from "../errors.ts";

/**
 * How a file is opened.
 * - "read": existing file, read only.
 * - "readwrite": existing file, positional reads and writes.
 * - "create": a new file that must not exist yet, read and write.
 * - "replace": created or truncated to zero, read and write (temporary files).
 */
export type OpenMode = "read" | "readwrite" | "create" | "replace";

/** How a file is opened, beyond its mode. */
export interface OpenOptions {
  /**
   * Every write to the file is durable when it returns (Linux `O_DSYNC`),
   * so `writeDurable` is one system call rather than a write and an
   * fdatasync: for the log's segments, written once per batch. A layer that
   * cannot (or cannot check that the flag took) ignores it; `writeDurable`
   * is durable either way.
   */
  readonly writeThrough?: boolean;
}

/** An open file or directory. Opaque: only the layer that opened it may use it. */
export interface FileHandle {
  /** The path it was opened with, for error messages. */
  readonly path: string;
}

/** The operations a `FileLayer` performs, as named in traces and fault plans. */
export type FileOp =
  | "open"
  | "openDir"
  | "mkdir"
  | "pwrite"
  | "pread"
  | "fdatasync"
  | "fsyncDir"
  | "truncate"
  | "size"
  | "close"
  | "rename"
  | "unlink"
  | "readdir"
  | "freeBytes";

/**
 * Positional file I/O with explicit durability. Implemented for real by
 * `nodeFileLayer`; wrapped by `FaultInjectingFileLayer` in tests.
 */
export interface FileLayer {
  /** Opens a file. */
  open(path: string, mode: OpenMode, opts?: OpenOptions): Promise<FileHandle>;
  /** Opens a directory read-only, to fsync it after creating, renaming or deleting entries. */
  openDir(path: string): Promise<FileHandle>;
  /** Creates a directory and its parents if missing, durably (each new name's parent directory is fsynced). */
  mkdir(path: string): Promise<void>;
  /** Writes all of `data` at byte `position`. Not durable until `fdatasync`. */
  pwrite(file: FileHandle, data: Uint8Array, position: number): Promise<void>;
  /** Reads into `into` from byte `position` until it is full or the file ends; returns the bytes read. Synchronous. */
  pread(file: FileHandle, into: Uint8Array, position: number): number;
  /** Makes the file's data and size durable. */
  fdatasync(file: FileHandle): Promise<void>;
  /**
   * Writes all of `data` at byte `position` and makes the file's data and
   * size durable: what `pwrite` then `fdatasync` do, in one operation on a
   * file opened `writeThrough`.
   */
  writeDurable(file: FileHandle, data: Uint8Array, position: number): Promise<void>;
  /** Makes a directory's entries (created, renamed, deleted names) durable. */
  fsyncDir(dir: FileHandle): Promise<void>;
  /** Sets the file's size (a shrink discards the tail). Not durable until `fdatasync`. */
  truncate(file: FileHandle, length: number): Promise<void>;
  /** The file's current size in bytes. Synchronous. */
  size(file: FileHandle): number;
  /** Closes a file or directory handle. */
  close(file: FileHandle): Promise<void>;
  /** Atomically renames `from` over `to`. Not durable until the directory is fsynced. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file. Not durable until the directory is fsynced. */
  unlink(path: string): Promise<void>;
  /** The names in a directory. */
  readdir(dir: string): Promise<string[]>;
  /**
   * Bytes the file system holding `path` has free for this process
   * (statfs: available blocks times block size); `Infinity` where the
   * runtime cannot tell. Synchronous: it is one syscall, asked before each
   * append batch.
   */
  freeBytes(path: string): number;
}

/** A `node:fs` file descriptor with the path it was opened with. */
class _NodeHandle implements FileHandle {
  /** @param writeThrough whether the descriptor is known to carry O_DSYNC */
  constructor(readonly path: string, readonly fd: number, readonly writeThrough = false) {}
}

/** O_DSYNC where `node:fs` has it (Linux, macOS), else 0. */
const _O_DSYNC: number = (fs.constants as { O_DSYNC?: number }).O_DSYNC ?? 0;

/**
 * Whether descriptor `fd` carries O_DSYNC, read back from Linux's
 * `/proc/self/fdinfo` (false where that cannot be read: then nothing is
 * assumed, and writes are followed by an fdatasync). Checked rather than
 * trusted because a runtime's `node:fs` could pass on only the flags it
 * knows (Node 20, Deno 2.9 and Bun 1.4 all pass it on, measured).
 */
function _hasDsync(fd: number): boolean {
  if (_O_DSYNC === 0) return false;
  try {
    const m = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
    return m !== null && (parseInt(m[1]!, 8) & _O_DSYNC) === _O_DSYNC;
  } catch {
    return false;
  }
}

const _C = fs.constants;
/** Each mode's `open` flags (as `r`, `r+`, `wx+`, `w+`), numeric so that O_DSYNC can be added. */
const _FLAGS: Record<OpenMode, number> = {
  read: _C.O_RDONLY,
  readwrite: _C.O_RDWR,
  create: _C.O_RDWR | _C.O_CREAT | _C.O_EXCL | _C.O_TRUNC,
  replace: _C.O_RDWR | _C.O_CREAT | _C.O_TRUNC,
};

function _fd(file: FileHandle): number {
  if (!(file instanceof _NodeHandle)) throw new TypeError(`${file.path} was not opened by nodeFileLayer`);
  return file.fd;
}

function _call<T>(path: string, op: string, run: (cb: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((err, value) => {
      if (err) reject(new StorageFailedError(path, op, err));
      else resolve(value as T);
    });
  });
}

async function _pwrite(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  const fd = _fd(file);
  let done = 0;
  // A short write is legal (e.g. near a full disk); loop until all is written
  // or the kernel reports the error (ENOSPC), which becomes fatal.
  while (done < data.length) {
    const written = await _call<number>(file.path, "write", (cb) =>
      fs.write(fd, data, done, data.length - done, position + done, cb));
    if (written <= 0) throw new StorageFailedError(file.path, "write", new Error("the write made no progress (disk full?)"));
    done += written;
  }
}

/** How long an `open` waits for a file descriptor when the process has none left (EMFILE/ENFILE). */
export const OPEN_DESCRIPTOR_WAIT_MS_MAX = 60_000;

/**
 * `fs.open`, waiting (with backoff, up to `OPEN_DESCRIPTOR_WAIT_MS_MAX`)
 * while the process or the system is out of file descriptors. Unlike a
 * failed write or fsync, a failed open changed nothing on disk, so waiting
 * is safe; and descriptors come back as the servers close idle or excess
 * connections. Any other error (or still none after the wait) is fatal as usual.
 */
async function _open(path: string, op: string, flags: string | number, mode?: number): Promise<number> {
  const deadline = performance.now() + OPEN_DESCRIPTOR_WAIT_MS_MAX;
  for (let delayMs = 10; ; delayMs = Math.min(500, delayMs * 2)) {
    try {
      return await new Promise<number>((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "EMFILE" && code !== "ENFILE") || performance.now() > deadline) throw new StorageFailedError(path, op, err);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** The real `FileLayer`: `node:fs` callbacks for writes and syncs, synchronous preads. */
export const nodeFileLayer: FileLayer = {
  async open(path, mode, opts) {
    const dsync = opts?.writeThrough === true && _O_DSYNC !== 0 && mode !== "read";
    const fd = await _open(path, dsync ? `open(${mode}, O_DSYNC)` : `open(${mode})`, _FLAGS[mode] | (dsync ? _O_DSYNC : 0), 0o644);
    return new _NodeHandle(path, fd, dsync && _hasDsync(fd));
  },
  async openDir(path) {
    const fd = await _open(path, "open directory", "r");
    return new _NodeHandle(path, fd);
  },
  async mkdir(dir) {
    // A new directory's own name is durable only once its parent is
    // fsynced: without that, a power loss could take the whole data
    // directory, acknowledged files and all. Find what is missing first.
    const created: string[] = [];
    for (let d = nodePath.resolve(dir); !fs.existsSync(d); d = nodePath.dirname(d)) created.push(d);
    if (created.length === 0) return;
    await _call<string | undefined>(dir, "mkdir", (cb) => fs.mkdir(dir, { recursive: true }, cb));
    for (const d of created) {
      const parent = nodePath.dirname(d);
      const fd = await _open(parent, "open directory", "r");
      try {
        await _call<void>(parent, "fsync directory", (cb) => fs.fsync(fd, cb));
      } finally {
        await _call<void>(parent, "close", (cb) => fs.close(fd, cb));
      }
    }
  },
  pwrite: _pwrite,
  pread(file, into, position) {
    const fd = _fd(file);
    let done = 0;
    try {
      while (done < into.length) {
        const n = fs.readSync(fd, into, done, into.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw new StorageFailedError(file.path, "read", err);
    }
    return done;
  },
  async fdatasync(file) {
    const fd = _fd(file);
    await _call<void>(file.path, "fdatasync", (cb) => fs.fdatasync(fd, cb));
  },
  async writeDurable(file, data, position) {
    await _pwrite(file, data, position);
    // O_DSYNC made the write durable before it returned (the kernel reports a failed writeback as the write's error).
    if (!(file as _NodeHandle).writeThrough) await this.fdatasync(file);
  },
  async fsyncDir(dir) {
    const fd = _fd(dir);
    await _call<void>(dir.path, "fsync directory", (cb) => fs.fsync(fd, cb));
  },
  async truncate(file, length) {
    const fd = _fd(file);
    await _call<void>(file.path, "truncate", (cb) => fs.ftruncate(fd, length, cb));
  },
  size(file) {
    try {
      return fs.fstatSync(_fd(file)).size;
    } catch (err) {
      throw new StorageFailedError(file.path, "fstat", err);
    }
  },
  async close(file) {
    const fd = _fd(file);
    await _call<void>(file.path, "close", (cb) => fs.close(fd, cb));
  },
  async rename(from, to) {
    await _call<void>(to, `rename from ${from}`, (cb) => fs.rename(from, to, cb));
  },
  async unlink(path) {
    await _call<void>(path, "unlink", (cb) => fs.unlink(path, cb));
  },
  async readdir(dir) {
    return await _call<string[]>(dir, "readdir", (cb) => fs.readdir(dir, cb));
  },
  freeBytes(path) {
    // statfs is in node:fs on Node 18.15+, Deno 2 and Bun 1.x; a runtime
    // without it gets no watermark rather than a refused start.
    if (typeof fs.statfsSync !== "function") return Infinity;
    try {
      const s = fs.statfsSync(path);
      return Number(s.bavail) * Number(s.bsize);
    } catch (err) {
      throw new StorageFailedError(path, "statfs", err);
    }
  },
};
