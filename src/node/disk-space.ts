/**
 * The free-space watermark of a member's data directory, read before each
 * append batch (and every second): below `diskFreeBytesMin` a leader
 * refuses new proposals (507, naming the figures) and a follower refuses
 * new entries (the others can still commit; heartbeats keep it a follower),
 * so a filling disk is met before the write that would fail with ENOSPC,
 * which stops the member. statfs is one syscall.
 *
 * @module
 */
import { DiskSpaceError } from "../errors.ts";
import type { FileLayer } from "../storage/file-layer.ts";

/** The watermark of one data directory (see the module comment). */
export class DiskSpace {
  readonly #fs: FileLayer;
  readonly #dir: string;
  readonly #minBytes: number;
  readonly #logger: (line: string) => void;
  #low = false;
  #free = Infinity;

  constructor(fs: FileLayer, dir: string, minBytes: number, logger: (line: string) => void) {
    this.#fs = fs;
    this.#dir = dir;
    this.#minBytes = minBytes;
    this.#logger = logger;
  }

  /** Below the minimum at the last check. */
  get low(): boolean {
    return this.#low;
  }

  /** Reads the free space now. @throws StorageFailedError when statfs fails */
  check(): void {
    const free = this.#fs.freeBytes(this.#dir);
    this.#free = free;
    const low = free < this.#minBytes;
    if (low !== this.#low) {
      this.#logger(low
        ? `disk space low (${free} bytes free in ${this.#dir}, minimum ${this.#minBytes}): refusing new proposals and entries`
        : `disk space is back above the minimum (${free} bytes free): accepting proposals`);
    }
    this.#low = low;
  }

  /** The refusal of a proposal while low. */
  error(): DiskSpaceError {
    return new DiskSpaceError(`Free space in ${this.#dir} is ${this.#free} bytes, below the minimum of ${this.#minBytes}; free some space and retry`);
  }

  /** Why a follower refuses entries while low. */
  describe(): string {
    return `below the free-space minimum (${this.#free} bytes free, minimum ${this.#minBytes})`;
  }
}
