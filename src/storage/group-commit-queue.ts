/**
 * The queue that runs a log's durable operations one at a time, in call
 * order, and turns consecutive appends into one group commit: appends that
 * arrive while a write is in flight are written together with one write and
 * one fdatasync once it completes. Each caller's promise resolves when its
 * own entries are durable (or rejects with the group's error).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Entry } from "../raft/types.ts";
import type { Poison } from "./poison.ts";
import { ENTRY_DATA_BYTES_MAX, ENTRY_TYPES } from "./segment-format.ts";

type _Op =
  | { readonly kind: "append"; readonly entries: readonly Entry[]; readonly resolve: () => void; readonly reject: (e: unknown) => void }
  | { readonly kind: "task"; readonly run: () => Promise<unknown>; readonly resolve: (v: unknown) => void; readonly reject: (e: unknown) => void };

/** See the module comment. */
export class GroupCommitQueue {
  readonly #poison: Poison;
  readonly #appendGroup: (batches: readonly (readonly Entry[])[]) => Promise<void>;
  /** Waiting operations. */
  readonly #ops: _Op[] = [];
  /** True while #drain works through #ops. Invariant: at most one #drain runs. */
  #running = false;

  /**
   * @param poison the store's fatal-error state: a storage failure stops every later operation
   * @param appendGroup writes consecutive batches durably with one write and one fdatasync
   */
  constructor(poison: Poison, appendGroup: (batches: readonly (readonly Entry[])[]) => Promise<void>) {
    this.#poison = poison;
    this.#appendGroup = appendGroup;
  }

  /** Queues an append; resolves once its entries are durable. */
  append(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return this.#poison.error === null ? Promise.resolve() : Promise.reject(this.#poison.error);
    return new Promise<void>((resolve, reject) => {
      this.#ops.push({ kind: "append", entries, resolve, reject });
      this.#kick();
    });
  }

  /** Queues any other operation. */
  task<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#ops.push({ kind: "task", run, resolve: resolve as (v: unknown) => void, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#ops.length > 0) {
      const op = this.#ops.shift()!;
      if (op.kind === "task") {
        try {
          op.resolve(await this.#poison.guard(op.run));
        } catch (err) {
          op.reject(err);
        }
        continue;
      }
      // Group commit: take every queued append that continues this one.
      const group = [op];
      const invalid = validateBatch(op.entries);
      if (invalid === null) {
        let tail = op.entries[op.entries.length - 1]!;
        while (this.#ops.length > 0) {
          const next = this.#ops[0]!;
          if (next.kind !== "append" || validateBatch(next.entries) !== null) break;
          const head = next.entries[0]!;
          if (head.index !== tail.index + 1 || head.term < tail.term) break;
          group.push(next);
          tail = next.entries[next.entries.length - 1]!;
          this.#ops.shift();
        }
      }
      try {
        if (invalid !== null) throw invalid;
        await this.#poison.guard(() => this.#appendGroup(group.map((g) => g.entries)));
        for (const g of group) g.resolve();
      } catch (e) {
        for (const g of group) g.reject(e);
      }
    }
    this.#running = false;
  }
}

/** Checks a batch's shape (consecutive indexes, terms not decreasing, known types), not its place in the log; returns the error or null. */
export function validateBatch(entries: readonly Entry[]): InvalidArgumentError | null {
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    if (!Number.isSafeInteger(e.index) || e.index < 1 || !Number.isSafeInteger(e.term) || e.term < 1) {
      return new InvalidArgumentError(`entry ${k} of the batch has index ${e.index} / term ${e.term}; both must be positive safe integers`);
    }
    if (!ENTRY_TYPES.includes(e.type)) return new InvalidArgumentError(`entry ${e.index} has unknown type ${String(e.type)}`);
    if (e.data.length > ENTRY_DATA_BYTES_MAX) return new InvalidArgumentError(`entry ${e.index} has ${e.data.length} bytes of data, over the maximum`);
    if (k > 0) {
      const p = entries[k - 1]!;
      if (e.index !== p.index + 1) return new InvalidArgumentError(`batch indexes are not consecutive at ${p.index} -> ${e.index}`);
      if (e.term < p.term) return new InvalidArgumentError(`batch terms decrease at index ${e.index}`);
    }
  }
  return null;
}
