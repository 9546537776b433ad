/**
 * What the checker believes one core's log holds: the durable log plus the
 * entries of every Ready handed out but not yet written. Only positions and
 * identities are kept (term and {@link entryId}), never the data.
 *
 * It is rebuilt from the durable log when a node restarts, so after a crash
 * it shows exactly what survived.
 *
 * @module
 */
import type { Entry } from "../../src/raft/types.ts";
import { entryId } from "./state-machine.ts";

/** A core's log as positions: entry at index i has term terms[i - snapIndex - 1]. */
export class LogMirror {
  /** Everything up to and including snapIndex is folded into a snapshot. */
  snapIndex = 0;
  snapTerm = 0;
  /** Invariant: terms.length === ids.length; terms are non-decreasing and >= snapTerm. */
  private terms: number[] = [];
  private ids: number[] = [];

  /** Index of the last entry (snapIndex when empty). */
  lastIndex(): number {
    return this.snapIndex + this.terms.length;
  }

  /** Term at `index`: the snapshot's term at snapIndex, undefined outside [snapIndex, lastIndex]. */
  term(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex) return undefined;
    return this.terms[index - this.snapIndex - 1];
  }

  /** Content identity at `index`, undefined at or below snapIndex or past the end. */
  id(index: number): number | undefined {
    if (index <= this.snapIndex) return undefined;
    return this.ids[index - this.snapIndex - 1];
  }

  /**
   * Writes `entries` (contiguous, first index in (snapIndex, lastIndex + 1]),
   * dropping everything from the first one's index on. The caller checks the
   * preconditions and reports violations; this asserts them.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.snapIndex || first.index > this.lastIndex() + 1) {
      throw new Error(`LogMirror.append: first index ${first.index} outside (${this.snapIndex}, ${this.lastIndex() + 1}]`);
    }
    const keep = first.index - this.snapIndex - 1;
    this.terms.length = keep;
    this.ids.length = keep;
    for (const e of entries) {
      this.terms.push(e.term);
      this.ids.push(entryId(e));
    }
  }

  /** Replaces the whole log with a snapshot at (index, term). */
  reset(index: number, term: number): void {
    this.snapIndex = index;
    this.snapTerm = term;
    this.terms = [];
    this.ids = [];
  }

  /** Drops entries up to and including `index` (which must be held). */
  compact(index: number): void {
    if (index <= this.snapIndex) return;
    const term = this.term(index);
    if (term === undefined) throw new Error(`LogMirror.compact(${index}): not held (last ${this.lastIndex()})`);
    const drop = index - this.snapIndex;
    this.terms = this.terms.slice(drop);
    this.ids = this.ids.slice(drop);
    this.snapIndex = index;
    this.snapTerm = term;
  }
}
