/**
 * The "stop on first failure" rule shared by every store: once a write,
 * sync, rename or truncate has failed, or corruption was found, the store is
 * poisoned and every later call fails with that same error. Nothing is
 * retried: a retried fsync that succeeds does not prove the earlier data
 * reached the disk.
 *
 * @module
 */
import { ClosedError, StorageCorruptError, StorageFailedError } from "../errors.ts";

/** Holds a store's fatal error, if any. */
export class Poison {
  /** The first fatal error, or null while the store is healthy. Invariant: once set, never cleared. */
  #error: Error | null = null;
  readonly #what: string;

  /** @param what names the store in the error raised after `close()` */
  constructor(what: string) {
    this.#what = what;
  }

  /** The fatal error, or null. */
  get error(): Error | null {
    return this.#error;
  }

  /** Throws the fatal error if there is one. */
  check(): void {
    if (this.#error !== null) throw this.#error;
  }

  /** Marks the store closed: later calls fail with `ClosedError`. */
  close(): void {
    if (this.#error === null) this.#error = new ClosedError(`${this.#what} is closed`);
  }

  /**
   * Records `err` as fatal if it is a storage failure or corruption (other
   * errors, such as invalid arguments, leave the store usable) and rethrows it.
   */
  fail(err: unknown): never {
    if (this.#error === null && (err instanceof StorageFailedError || err instanceof StorageCorruptError)) {
      this.#error = err;
    }
    throw err;
  }

  /** Runs `fn`; a storage failure it raises poisons the store. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Synchronous `guard`. */
  guardSync<T>(fn: () => T): T {
    this.check();
    try {
      return fn();
    } catch (err) {
      this.fail(err);
    }
  }
}
