/**
 * The free-space watermark of a member's data directory, read every second
 * and before an append batch once the bytes written since the last reading
 * could have used a quarter of the headroom it left above the minimum
 * (`beforeAppend`): below `diskFreeBytesMin` a leader
 * refuses new proposals (507, naming the figures) and a follower refuses
 * new entries (the others can still commit; heartbeats keep it a follower),
 * so a filling disk is met before the write that would fail with ENOSPC,
 * which stops the member. statfs is one syscall, but read before every
 * batch it took 4-5% of a member's main thread at one proposal in flight
 * (CPU profile, on the virtual machine it was measured on). Counting the
 * log's own bytes instead meets them at the same batch a reading per batch
 * did: the first batch after the one that crossed the minimum. Other writers
 * are met by the reading every second, as they were (a reading per batch
 * never stopped a writer racing it).
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
  /** Log bytes appended since the last reading (see `beforeAppend`). */
  #sinceReading = 0;

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
    this.#sinceReading = 0;
    const low = free < this.#minBytes;
    if (low !== this.#low) {
      this.#logger(low
        ? `disk space low (${free} bytes free in ${this.#dir}, minimum ${this.#minBytes}): refusing new proposals and entries`
        : `disk space is back above the minimum (${free} bytes free): accepting proposals`);
    }
    this.#low = low;
  }

  /**
   * Before an append of `bytes` (encoded): reads the free space again if it
   * was low, or if these bytes and those appended since the last reading
   * reach a quarter of the headroom that reading left above the minimum.
   * @throws StorageFailedError when statfs fails
   */
  beforeAppend(bytes: number): void {
    if (this.#low || 4 * (this.#sinceReading + bytes) >= this.#free - this.#minBytes) this.check();
    this.#sinceReading += bytes;
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
