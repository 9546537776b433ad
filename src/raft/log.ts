/**
 * The core's view of its log (etcd's log.go + log_unstable.go): the durable
 * part read through a `LogReader`, plus an unstable tail (entries, or a
 * snapshot, appended but not yet reported durable by `advance`).
 *
 * Index arithmetic: `_unstable[i]` has log position `i + _offset`.
 * Invariants: applied <= applying <= committed <= lastIndex();
 * without a pending snapshot the reader holds every index in
 * [firstIndex(), _offset - 1] and those entries are part of this log.
 *
 * @module
 */
import { assert } from "./assert.ts";
import type { Entry, LogReader, SnapshotMeta } from "./types.ts";

/** The log of one member. */
export class RaftLog {
  /** Durable entries, written by the driver. */
  readonly reader: LogReader;
  /** Entries not yet reported durable. Invariant: contiguous from `_offset`. */
  private _unstable: Entry[] = [];
  /** Log position of `_unstable[0]`. */
  private _offset: number;
  /** Unstable entries up to this index were handed out in a Ready. Invariant: _offset - 1 <= _inProgress. */
  private _inProgress: number;
  /** A received snapshot not yet reported durable; the log starts after it. */
  private _snapshot: SnapshotMeta | null = null;
  /** The pending snapshot was handed out in a Ready. */
  private _snapshotInProgress = false;
  /** Highest index known committed. Invariant: never decreases; <= lastIndex(). */
  committed: number;
  /** Highest index handed out for applying (in committedEntries). Invariant: applied <= applying <= committed. */
  applying: number;
  /** Highest index the driver reported applied (advanced). */
  applied: number;

  constructor(reader: LogReader, committed: number, applied: number) {
    this.reader = reader;
    this._offset = reader.lastIndex() + 1;
    this._inProgress = this._offset - 1;
    this.committed = committed;
    this.applying = applied;
    this.applied = applied;
    this.check();
  }

  /** Asserts the index invariants. */
  check(): void {
    assert(this.applied <= this.applying && this.applying <= this.committed, "applied <= applying <= committed", `${this.applied}, ${this.applying}, ${this.committed}`);
    assert(this.committed <= this.lastIndex(), "committed <= lastIndex", `${this.committed} > ${this.lastIndex()}`);
  }

  /** First index still held (after the compaction point or the pending snapshot). */
  firstIndex(): number {
    return this._snapshot !== null ? this._snapshot.index + 1 : this.reader.firstIndex();
  }

  /** Last index, unstable entries included. */
  lastIndex(): number {
    if (this._unstable.length > 0) return this._offset + this._unstable.length - 1;
    if (this._snapshot !== null) return this._snapshot.index;
    return this._offset - 1;
  }

  /** Highest index whose entry is durable locally (and part of this log). */
  stableIndex(): number {
    return this._offset - 1;
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the log. */
  maybeTerm(index: number): number | undefined {
    if (index >= this._offset) {
      const e = this._unstable[index - this._offset];
      return e === undefined ? undefined : e.term;
    }
    if (this._snapshot !== null) {
      return index === this._snapshot.index ? this._snapshot.term : undefined;
    }
    if (index < this.reader.firstIndex() - 1 || index > this.reader.lastIndex()) return undefined;
    return index === 0 ? 0 : this.reader.term(index);
  }

  /** Term of the entry at `index`; the index must be held (or be firstIndex - 1). */
  term(index: number): number {
    const t = this.maybeTerm(index);
    assert(t !== undefined, "log.term: index is held", `index ${index}, log [${this.firstIndex()}, ${this.lastIndex()}]`);
    return t;
  }

  /** Term of the last entry. */
  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** True when the entry at `index` has `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.maybeTerm(index) === term;
  }

  /** §5.4.1: a log ending at (index, term) is at least as up-to-date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const t = this.lastTerm();
    return lastTerm > t || (lastTerm === t && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi), at least one if lo < hi, stopping before `maxBytes` of data is passed. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, "log.entries: range held", `[${lo}, ${hi}) of [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    if (lo >= hi) return [];
    let out: Entry[];
    let bytes = 0;
    if (lo < this._offset) {
      out = this.reader.entries(lo, Math.min(hi, this._offset), maxBytes);
      for (const e of out) bytes += e.data.length;
      if (lo + out.length < Math.min(hi, this._offset)) return out;
      if (hi <= this._offset) return out;
    } else {
      out = [];
    }
    for (let i = Math.max(lo, this._offset); i < hi; i++) {
      const e = this._unstable[i - this._offset] as Entry;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Appends entries, replacing any conflicting suffix (the caller checked
   * the conflict point is above the commit index).
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const after = (entries[0] as Entry).index;
    assert(after > this.committed, "never truncate committed entries", `append at ${after}, committed ${this.committed}`);
    assert(after <= this.lastIndex() + 1, "log.append: no gap", `append at ${after}, last ${this.lastIndex()}`);
    const end = this._offset + this._unstable.length;
    if (after === end) {
      for (const e of entries) this._unstable.push(e);
      return;
    }
    if (after <= this._offset) {
      // Replaces part of the durable log (or all of the unstable tail).
      this._offset = after;
      this._unstable = entries.slice();
    } else {
      this._unstable = this._unstable.slice(0, after - this._offset);
      for (const e of entries) this._unstable.push(e);
    }
    this._inProgress = Math.min(this._inProgress, after - 1);
  }

  /**
   * The first index where `entries` disagree with the log (or run past its
   * end), or 0 when every one of them is already held.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * First index in [max(firstIndex, lo), index] whose term is `term`, given
   * the entry at `index` has it (terms never decrease along a log: binary search).
   */
  firstIndexOfTerm(term: number, index: number): number {
    let lo = this.firstIndex();
    let hi = index;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.term(mid) < term) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Last index <= `index` whose term is `term`, or 0 if the log holds no
   * such entry (as far as it still knows: compacted entries are unknown).
   */
  lastIndexOfTerm(term: number, index: number): number {
    let lo = this.firstIndex() - 1;
    let hi = Math.min(index, this.lastIndex());
    if (hi < lo) return 0;
    // Largest i in [lo, hi] with term(i) <= term.
    if (this.term(lo) > term) return 0;
    while (lo < hi) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      if (this.term(mid) <= term) lo = mid;
      else hi = mid - 1;
    }
    return this.term(lo) === term && lo >= this.firstIndex() ? lo : 0;
  }

  /** Raises the commit index (never lowers it). */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), "commit within the log", `commit ${index}, last ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Unstable entries not yet handed out; marks them handed out. */
  takeUnstableEntries(): Entry[] {
    const from = this._inProgress + 1;
    const end = this._offset + this._unstable.length;
    if (from >= end) return [];
    const out = this._unstable.slice(from - this._offset);
    this._inProgress = end - 1;
    return out;
  }

  /** True when unstable entries wait to be handed out. */
  hasUnstableEntries(): boolean {
    return this._inProgress + 1 < this._offset + this._unstable.length;
  }

  /** The pending snapshot if not handed out yet; marks it handed out. */
  takeSnapshot(): SnapshotMeta | null {
    if (this._snapshot === null || this._snapshotInProgress) return null;
    this._snapshotInProgress = true;
    return this._snapshot;
  }

  /** The received snapshot not yet reported durable (handed out or not), or null. */
  unstableSnapshot(): SnapshotMeta | null {
    return this._snapshot;
  }

  /** True when a snapshot waits to be handed out. */
  hasPendingSnapshot(): boolean {
    return this._snapshot !== null && !this._snapshotInProgress;
  }

  /**
   * The driver made entries up to (index, term) durable. Ignored when the
   * entry there was replaced meanwhile (a later Ready carries the new one).
   */
  stableTo(index: number, term: number): void {
    if (index < this._offset) return;
    const e = this._unstable[index - this._offset];
    if (e === undefined || e.term !== term) return;
    this._unstable = this._unstable.slice(index + 1 - this._offset);
    this._offset = index + 1;
    this._inProgress = Math.max(this._inProgress, index);
  }

  /** The driver installed the snapshot at `index`. */
  stableSnapTo(index: number): void {
    if (this._snapshot !== null && this._snapshot.index === index) {
      this._snapshot = null;
      this._snapshotInProgress = false;
    }
  }

  /** Replaces the whole log by a snapshot (not yet durable). */
  restore(snapshot: SnapshotMeta): void {
    assert(snapshot.index > this.committed, "restore only past the commit index", `snapshot ${snapshot.index}, committed ${this.committed}`);
    this._snapshot = snapshot;
    this._snapshotInProgress = false;
    this._unstable = [];
    this._offset = snapshot.index + 1;
    this._inProgress = snapshot.index;
    this.committed = snapshot.index;
  }

  /**
   * Committed entries that are durable locally and not yet handed out, up
   * to `maxBytes`; marks them handed out.
   */
  takeCommittedEntries(maxBytes: number): Entry[] {
    if (this._snapshot !== null) return [];
    const hi = Math.min(this.committed, this.stableIndex());
    if (this.applying >= hi) return [];
    const out = this.entries(this.applying + 1, hi + 1, maxBytes);
    this.applying += out.length;
    return out;
  }

  /** True when committed, durable entries wait to be handed out. */
  hasCommittedEntries(): boolean {
    return this._snapshot === null && this.applying < Math.min(this.committed, this.stableIndex());
  }

  /** The state machine holds everything up to `index`. */
  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.applying, "applied <= applying", `${index} > ${this.applying}`);
    this.applied = index;
  }

  /** A snapshot was handed out: the state machine will be reset to it. */
  applyingSnapshot(index: number): void {
    this.applying = Math.max(this.applying, index);
  }
}
