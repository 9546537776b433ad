/**
 * One incarnation's view of a simulated member's disk: the production
 * storage code (`SegmentedLog`, `StateFile`, `MembershipFile`,
 * `SnapshotStore`) runs on it unchanged. Underneath is a `SimulatedDisk`
 * (src/storage/simulated-disk.ts), which keeps what a power loss keeps:
 * unsynced writes to different files reach the platter in any order and
 * are lost or torn at a crash, unsynced directory changes vanish.
 *
 * This layer adds time and faults: every write, sync and name change
 * completes after a latency drawn from the disk's profile (scheduler
 * events, so several writes are in flight and a crash can land between any
 * two of them), an fdatasync can fail (EIO), and once the incarnation is
 * dead (crashed) nothing it asks for reaches the disk and nothing it waits
 * for ever completes.
 *
 * @module
 */
import { StorageFailedError } from "../../src/errors.ts";
import type { FileHandle, FileLayer, OpenMode } from "../../src/storage/file-layer.ts";
import type { SimulatedDisk } from "../../src/storage/simulated-disk.ts";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";

/** How a disk behaves; the world changes it as the schedule goes. */
export interface DiskProfile {
  /** Latency of a write, rename, unlink or create: 0..writeMsMax ms. */
  writeMsMax: number;
  /** Latency of an fdatasync or directory fsync: 0..syncMsMax ms. */
  syncMsMax: number;
  /** Probability that an operation completes at once (no event). */
  zeroRate: number;
  /** Probability that an fdatasync or directory fsync fails with EIO. */
  syncFailRate: number;
}

/** Counters for the run summary. */
export interface DiskStats {
  ops: number;
  syncFailures: number;
}

const _never = new Promise<never>(() => {});

/** The FileLayer of one incarnation (see the module comment). */
export class SimFileLayer implements FileLayer {
  readonly #disk: SimulatedDisk;
  readonly #sched: Scheduler;
  readonly #owner: object;
  readonly #rng: Prng;
  readonly #profile: () => DiskProfile;
  readonly #stats: DiskStats;

  constructor(disk: SimulatedDisk, sched: Scheduler, owner: object, rng: Prng, profile: () => DiskProfile, stats: DiskStats) {
    this.#disk = disk;
    this.#sched = sched;
    this.#owner = owner;
    this.#rng = rng;
    this.#profile = profile;
    this.#stats = stats;
  }

  get #dead(): boolean {
    return this.#sched.isDead(this.#owner);
  }

  /** Runs `op` on the disk after a latency; a dead incarnation's operations never happen. */
  #later<T>(maxMs: number, op: () => Promise<T>): Promise<T> {
    if (this.#dead) return _never;
    this.#stats.ops++;
    const p = this.#profile();
    if (maxMs === 0 || this.#rng.chance(p.zeroRate)) return op();
    return new Promise<T>((resolve, reject) => {
      this.#sched.after(this.#rng.range(1, maxMs), () => {
        op().then(resolve, reject);
      }, this.#owner);
    });
  }

  #sync(file: FileHandle, op: () => Promise<void>, what: string): Promise<void> {
    const p = this.#profile();
    return this.#later(p.syncMsMax, () => {
      if (p.syncFailRate > 0 && this.#rng.chance(p.syncFailRate)) {
        this.#stats.syncFailures++;
        return Promise.reject(new StorageFailedError(file.path, what, Object.assign(new Error(`EIO: simulated ${what} failure`), { code: "EIO" })));
      }
      return op();
    });
  }

  #now<T>(op: () => T): T {
    if (this.#dead) throw new StorageFailedError("(dead)", "call", new Error("the process is dead"));
    return op();
  }

  open(path: string, mode: OpenMode): Promise<FileHandle> {
    return this.#later(mode === "create" || mode === "replace" ? this.#profile().writeMsMax : 0, () => this.#disk.open(path, mode));
  }
  openDir(path: string): Promise<FileHandle> {
    return this.#later(0, () => this.#disk.openDir(path));
  }
  mkdir(path: string): Promise<void> {
    return this.#later(0, () => this.#disk.mkdir(path));
  }
  pwrite(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
    // The disk keeps no reference to `data` (it copies), as a kernel copies into its page cache.
    return this.#later(this.#profile().writeMsMax, () => this.#disk.pwrite(file, data, position));
  }
  pread(file: FileHandle, into: Uint8Array, position: number): number {
    return this.#now(() => this.#disk.pread(file, into, position));
  }
  fdatasync(file: FileHandle): Promise<void> {
    return this.#sync(file, () => this.#disk.fdatasync(file), "fdatasync");
  }
  /** As the real layer without write-through: the write, then the sync, each with its own delay and crash point. */
  async writeDurable(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
    await this.pwrite(file, data, position);
    await this.fdatasync(file);
  }
  fsyncDir(dir: FileHandle): Promise<void> {
    return this.#sync(dir, () => this.#disk.fsyncDir(dir), "fsync directory");
  }
  truncate(file: FileHandle, length: number): Promise<void> {
    return this.#later(this.#profile().writeMsMax, () => this.#disk.truncate(file, length));
  }
  size(file: FileHandle): number {
    return this.#now(() => this.#disk.size(file));
  }
  close(file: FileHandle): Promise<void> {
    return this.#later(0, () => this.#disk.close(file));
  }
  rename(from: string, to: string): Promise<void> {
    return this.#later(this.#profile().writeMsMax, () => this.#disk.rename(from, to));
  }
  unlink(path: string): Promise<void> {
    return this.#later(this.#profile().writeMsMax, () => this.#disk.unlink(path));
  }
  readdir(dir: string): Promise<string[]> {
    return this.#later(0, () => this.#disk.readdir(dir));
  }
  freeBytes(path: string): number {
    return this.#now(() => this.#disk.freeBytes(path));
  }
}
