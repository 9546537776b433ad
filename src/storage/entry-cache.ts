/**
 * A bounded cache of the most recent log entries, so that replication (which
 * reads the tail of the log) and `term()` near the tail are answered without
 * touching the disk. It always covers a suffix of the log: entries
 * [first, first + size) where first + size = lastIndex + 1.
 *
 * @module
 */
import type { Entry } from "../raft/types.ts";
import { assert } from "./bytes.ts";

/** Per-entry bookkeeping cost counted on top of the data (object, array slot). */
const _ENTRY_OVERHEAD_BYTES = 64;

/** The tail cache (see the module comment). */
export class EntryCache {
  /** entries[k] has index first + k. */
  #entries: Entry[] = [];
  /** Index of the first cached entry; when empty, the index the next pushed entry must have. */
  #first: number;
  /** Accounted bytes. Invariant: equals the sum over entries of data.length + overhead. */
  #bytes = 0;
  readonly #bytesMax: number;

  /**
   * @param bytesMax the budget; when passed, the older half is dropped
   * @param next the index of the first entry that will be pushed (lastIndex + 1)
   */
  constructor(bytesMax: number, next: number) {
    this.#bytesMax = bytesMax;
    this.#first = next;
  }

  /** Index of the first cached entry (lastIndex + 1 when empty): indexes below it are read from disk. */
  get first(): number {
    return this.#first;
  }

  /** Bytes accounted to the cache. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The cached entry at `index` (which must be in [first, lastIndex]). */
  get(index: number): Entry {
    const e = this.#entries[index - this.#first];
    if (!(e !== undefined && e.index === index)) assert(false, `entry ${index} is cached`);
    return e;
  }

  /** Adds the entry following the last one. */
  push(e: Entry): void {
    assert(e.index === this.#first + this.#entries.length, "the cache stays contiguous");
    this.#entries.push(e);
    this.#bytes += e.data.length + _ENTRY_OVERHEAD_BYTES;
    if (this.#bytes > this.#bytesMax) {
      // Drop the older half at once: amortized O(1) per entry instead of a shift per push.
      let drop = 0;
      while (drop < this.#entries.length && this.#bytes > this.#bytesMax / 2) {
        this.#bytes -= this.#entries[drop]!.data.length + _ENTRY_OVERHEAD_BYTES;
        drop++;
      }
      this.#entries = this.#entries.slice(drop);
      this.#first += drop;
    }
  }

  /** Forgets entries >= `index` (a truncated suffix); the next push must be `index`. */
  cutFrom(index: number): void {
    const keep = Math.max(0, Math.min(index - this.#first, this.#entries.length));
    for (let k = keep; k < this.#entries.length; k++) this.#bytes -= this.#entries[k]!.data.length + _ENTRY_OVERHEAD_BYTES;
    this.#entries.length = keep;
    if (keep === 0) this.#first = index;
  }

  /** Forgets entries < `index` (compacted). */
  dropBefore(index: number): void {
    const drop = Math.max(0, Math.min(index - this.#first, this.#entries.length));
    if (drop === 0) return;
    for (let k = 0; k < drop; k++) this.#bytes -= this.#entries[k]!.data.length + _ENTRY_OVERHEAD_BYTES;
    this.#entries = this.#entries.slice(drop);
    this.#first += drop;
  }

  /** Empties the cache; the next push must be `next`. */
  reset(next: number): void {
    this.#entries = [];
    this.#bytes = 0;
    this.#first = next;
  }
}
