/**
 * An in-memory `FileLayer` that models what survives a power loss, for the
 * simulator and for tests (TigerBeetle's idea: the same code runs on the
 * real disk and on a simulated one that fails on purpose).
 *
 * What it models, deliberately pessimistic but within what Linux file
 * systems do:
 * - File data written but not fdatasynced may be lost on `crash()`, sector
 *   by sector in any combination, and the file's size may be the old or the
 *   new one: out-of-order writeback of dirty pages. Sectors are 512 bytes
 *   by default; a smaller `sectorBytes` (down to 1) also tears writes that
 *   real disks usually keep whole, to test designs that do not rely on it.
 * - Directory changes (create, rename, unlink) not followed by a directory
 *   fsync may be lost on `crash()`; a prefix of them (in order) survives,
 *   as a journaling file system commits metadata in order.
 * - `fdatasync` makes the file's data and size durable; `fsyncDir` makes
 *   every name change in that directory durable.
 * - Directories themselves (`mkdir`) are durable at once (simplification).
 * - A capacity can be set (`capacityBytes`): a write that would grow the
 *   files past it fails with ENOSPC, and `freeBytes` reports what is left.
 *
 * @module
 */
import path from "node:path";
import { StorageFailedError } from "../errors.ts";
import type { FileHandle, FileLayer, OpenMode } from "./file-layer.ts";


class _Inode {
  data = new Uint8Array(0);
  size = 0;
  durable = new Uint8Array(0);
}

type _DirOp = { readonly kind: "set"; readonly name: string; readonly inode: _Inode } | { readonly kind: "delete"; readonly name: string };
/** One name change; a rename is two ops that survive or vanish together. */
type _DirChange = readonly _DirOp[];

class _Dir {
  names = new Map<string, _Inode>();
  durable = new Map<string, _Inode>();
  /** Name changes since the last fsync, in order. */
  pending: _DirChange[] = [];
}

class _SimHandle implements FileHandle {
  constructor(readonly path: string, readonly inode: _Inode | null, readonly dir: _Dir | null, readonly epoch: number) {}
}

function _err(p: string, op: string, code: string): StorageFailedError {
  return new StorageFailedError(p, op, Object.assign(new Error(`${code}: simulated ${op} ${p}`), { code }));
}

/** A simulated disk (see the module comment). Paths are plain strings; only the directories made with `mkdir` exist. */
export class SimulatedDisk implements FileLayer {
  readonly #dirs = new Map<string, _Dir>();
  /** Bumped by `crash()`: handles from before it fail (the process died). */
  #epoch = 0;
  readonly #sectorBytes: number;
  /** Total bytes the files may hold (their sizes summed); Infinity by default. */
  capacityBytes = Infinity;

  /** @param sectorBytes the unit in which unsynced data survives or is lost on `crash()` (default 512) */
  constructor(sectorBytes = 512) {
    this.#sectorBytes = sectorBytes;
  }

  /**
   * Simulates a power loss: unsynced data and names are lost or kept
   * according to `random` (a seeded PRNG returning [0, 1)). Every handle
   * opened before becomes invalid.
   */
  crash(random: () => number): void {
    this.#epoch++;
    const inodes = new Set<_Inode>();
    for (const dir of this.#dirs.values()) {
      const keep = Math.floor(random() * (dir.pending.length + 1));
      const names = new Map(dir.durable);
      for (const change of dir.pending.slice(0, keep)) {
        for (const op of change) {
          if (op.kind === "set") names.set(op.name, op.inode);
          else names.delete(op.name);
        }
      }
      dir.names = names;
      dir.durable = new Map(names);
      dir.pending = [];
      for (const i of names.values()) inodes.add(i);
    }
    for (const inode of inodes) {
      const cur = inode.data.subarray(0, inode.size);
      const dur = inode.durable;
      const size = random() < 0.5 ? dur.length : cur.length;
      const out = new Uint8Array(size);
      for (let s = 0; s < size; s += this.#sectorBytes) {
        const end = Math.min(size, s + this.#sectorBytes);
        const src = random() < 0.5 ? cur : dur;
        out.set(src.subarray(Math.min(s, src.length), Math.min(end, src.length)), s);
      }
      inode.data = out;
      inode.size = size;
      inode.durable = out.slice();
    }
  }

  /** A deep copy of the disk as it is now (durable and volatile state alike). */
  clone(): SimulatedDisk {
    const copy = new SimulatedDisk(this.#sectorBytes);
    const map = new Map<_Inode, _Inode>();
    const inodeCopy = (i: _Inode): _Inode => {
      let c = map.get(i);
      if (c === undefined) {
        c = new _Inode();
        c.data = i.data.slice();
        c.size = i.size;
        c.durable = i.durable.slice();
        map.set(i, c);
      }
      return c;
    };
    for (const [p, d] of this.#dirs) {
      const nd = new _Dir();
      for (const [n, i] of d.names) nd.names.set(n, inodeCopy(i));
      for (const [n, i] of d.durable) nd.durable.set(n, inodeCopy(i));
      nd.pending = d.pending.map((change) => change.map((op): _DirOp => (op.kind === "set" ? { kind: "set", name: op.name, inode: inodeCopy(op.inode) } : op)));
      copy.#dirs.set(p, nd);
    }
    return copy;
  }

  /** The current content of a file (for tests that damage files on purpose). */
  readFile(p: string): Uint8Array | null {
    const i = this.#dirs.get(path.dirname(p))?.names.get(path.basename(p));
    return i === undefined ? null : i.data.slice(0, i.size);
  }

  /** Replaces a file's content, durably (for tests that damage files on purpose). */
  writeFile(p: string, bytes: Uint8Array): void {
    const dir = this.#dirs.get(path.dirname(p));
    if (dir === undefined) throw _err(p, "writeFile", "ENOENT");
    let i = dir.names.get(path.basename(p));
    if (i === undefined) {
      i = new _Inode();
      dir.names.set(path.basename(p), i);
      dir.durable.set(path.basename(p), i);
    }
    i.data = bytes.slice();
    i.size = bytes.length;
    i.durable = bytes.slice();
  }

  #dir(p: string, op: string): _Dir {
    const d = this.#dirs.get(path.dirname(p));
    if (d === undefined) throw _err(p, op, "ENOENT");
    return d;
  }

  #handle(h: FileHandle, op: string): _SimHandle {
    if (!(h instanceof _SimHandle) || h.epoch !== this.#epoch) throw _err(h.path, op, "EBADF");
    return h;
  }

  #inode(h: FileHandle, op: string): _Inode {
    const s = this.#handle(h, op);
    if (s.inode === null) throw _err(h.path, op, "EISDIR");
    return s.inode;
  }

  open(p: string, mode: OpenMode): Promise<FileHandle> {
    const dir = this.#dir(p, "open");
    const name = path.basename(p);
    let inode = dir.names.get(name);
    if (mode === "create" && inode !== undefined) return Promise.reject(_err(p, "open", "EEXIST"));
    if ((mode === "read" || mode === "readwrite") && inode === undefined) return Promise.reject(_err(p, "open", "ENOENT"));
    if (inode === undefined) {
      inode = new _Inode();
      dir.names.set(name, inode);
      dir.pending.push([{ kind: "set", name, inode }]);
    } else if (mode === "replace") {
      inode.size = 0;
      inode.data = new Uint8Array(0);
    }
    return Promise.resolve(new _SimHandle(p, inode, null, this.#epoch));
  }

  openDir(p: string): Promise<FileHandle> {
    const d = this.#dirs.get(p);
    if (d === undefined) return Promise.reject(_err(p, "open directory", "ENOENT"));
    return Promise.resolve(new _SimHandle(p, null, d, this.#epoch));
  }

  mkdir(p: string): Promise<void> {
    for (let d = p; !this.#dirs.has(d); d = path.dirname(d)) {
      this.#dirs.set(d, new _Dir());
      if (path.dirname(d) === d) break;
    }
    return Promise.resolve();
  }

  /** Sum of the sizes of every file that has a name. */
  #usedBytes(): number {
    const seen = new Set<_Inode>();
    let used = 0;
    for (const d of this.#dirs.values()) {
      for (const i of d.names.values()) {
        if (seen.has(i)) continue;
        seen.add(i);
        used += i.size;
      }
    }
    return used;
  }

  freeBytes(_p: string): number {
    return this.capacityBytes === Infinity ? Infinity : Math.max(0, this.capacityBytes - this.#usedBytes());
  }

  pwrite(h: FileHandle, data: Uint8Array, position: number): Promise<void> {
    const i = this.#inode(h, "write");
    const end = position + data.length;
    if (end > i.size && this.capacityBytes !== Infinity && this.#usedBytes() + (end - i.size) > this.capacityBytes) {
      return Promise.reject(_err(h.path, "write", "ENOSPC"));
    }
    if (end > i.data.length) {
      const grown = new Uint8Array(Math.max(end, i.data.length * 2));
      grown.set(i.data.subarray(0, i.size));
      i.data = grown;
    }
    i.data.set(data, position);
    i.size = Math.max(i.size, end);
    return Promise.resolve();
  }

  pread(h: FileHandle, into: Uint8Array, position: number): number {
    const i = this.#inode(h, "read");
    const n = Math.max(0, Math.min(into.length, i.size - position));
    into.set(i.data.subarray(position, position + n));
    return n;
  }

  fdatasync(h: FileHandle): Promise<void> {
    const i = this.#inode(h, "fdatasync");
    i.durable = i.data.slice(0, i.size);
    return Promise.resolve();
  }

  /** A write then an fdatasync: a crash can come between them only when they are two calls, which the simulator's file layer makes them. */
  async writeDurable(h: FileHandle, data: Uint8Array, position: number): Promise<void> {
    await this.pwrite(h, data, position);
    await this.fdatasync(h);
  }

  fsyncDir(h: FileHandle): Promise<void> {
    const s = this.#handle(h, "fsync directory");
    if (s.dir === null) return Promise.reject(_err(h.path, "fsync directory", "ENOTDIR"));
    s.dir.durable = new Map(s.dir.names);
    s.dir.pending = [];
    return Promise.resolve();
  }

  truncate(h: FileHandle, length: number): Promise<void> {
    const i = this.#inode(h, "truncate");
    if (length < i.size) i.data.fill(0, length, i.size);
    else if (length > i.data.length) {
      const grown = new Uint8Array(length);
      grown.set(i.data.subarray(0, i.size));
      i.data = grown;
    }
    i.size = length;
    return Promise.resolve();
  }

  size(h: FileHandle): number {
    return this.#inode(h, "fstat").size;
  }

  close(h: FileHandle): Promise<void> {
    this.#handle(h, "close");
    return Promise.resolve();
  }

  rename(from: string, to: string): Promise<void> {
    const dir = this.#dir(from, "rename");
    if (this.#dir(to, "rename") !== dir) return Promise.reject(_err(to, "rename", "EXDEV"));
    const inode = dir.names.get(path.basename(from));
    if (inode === undefined) return Promise.reject(_err(from, "rename", "ENOENT"));
    dir.names.delete(path.basename(from));
    dir.names.set(path.basename(to), inode);
    dir.pending.push([{ kind: "delete", name: path.basename(from) }, { kind: "set", name: path.basename(to), inode }]);
    return Promise.resolve();
  }

  unlink(p: string): Promise<void> {
    const dir = this.#dir(p, "unlink");
    if (!dir.names.delete(path.basename(p))) return Promise.reject(_err(p, "unlink", "ENOENT"));
    dir.pending.push([{ kind: "delete", name: path.basename(p) }]);
    return Promise.resolve();
  }

  readdir(p: string): Promise<string[]> {
    const d = this.#dirs.get(p);
    if (d === undefined) return Promise.reject(_err(p, "readdir", "ENOENT"));
    return Promise.resolve([...d.names.keys()]);
  }
}
