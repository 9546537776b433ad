/**
 * An in-memory durable log for tests, the simulator and benchmarks: the
 * `LogReader` the core reads, plus the writes a driver makes when it
 * persists a `Ready` (append with truncation, reset to a snapshot,
 * compaction).
 *
 * Index arithmetic: `_entries[i]` has log position `i + _snapshot.index + 1`.
 *
 * @module
 */
import { assert } from "./assert.ts";
import type { Entry, LogReader, Member, SnapshotMeta } from "./types.ts";

/** A log held in memory. */
export class MemoryLog implements LogReader {
  /** Entries after the compaction point, contiguous. */
  private _entries: Entry[] = [];
  /** The compaction point (index 0, term 0 when never compacted). */
  private _snapshot: SnapshotMeta;

  /** @param snapshot where the log starts (default: empty, never compacted) */
  constructor(snapshot: SnapshotMeta = { index: 0, term: 0, membership: [] }) {
    this._snapshot = snapshot;
  }

  /** The compaction point: every entry up to it is gone. */
  get snapshot(): SnapshotMeta {
    return this._snapshot;
  }

  firstIndex(): number {
    return this._snapshot.index + 1;
  }

  lastIndex(): number {
    return this._snapshot.index + this._entries.length;
  }

  term(index: number): number {
    if (index === this._snapshot.index) return this._snapshot.term;
    const e = this._entries[index - this._snapshot.index - 1];
    assert(e !== undefined, "MemoryLog.term: index within [firstIndex - 1, lastIndex]", `index ${index}, range [${this._snapshot.index}, ${this.lastIndex()}]`);
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, "MemoryLog.entries: range within the log", `[${lo}, ${hi}) of [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    const base = this._snapshot.index + 1;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this._entries[i - base] as Entry;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Appends `entries` (contiguous); the first one may start at or below the
   * last index, in which case everything from there on is replaced.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = (entries[0] as Entry).index;
    assert(first > this._snapshot.index && first <= this.lastIndex() + 1, "MemoryLog.append: no gap and not below the compaction point", `first ${first}, log [${this.firstIndex()}, ${this.lastIndex()}]`);
    const keep = first - this._snapshot.index - 1;
    if (keep < this._entries.length) this._entries.length = keep;
    for (const e of entries) this._entries.push(e);
  }

  /** Drops every entry at or after `index`. */
  truncateFrom(index: number): void {
    assert(index > this._snapshot.index, "MemoryLog.truncateFrom: above the compaction point");
    const keep = index - this._snapshot.index - 1;
    if (keep < this._entries.length) this._entries.length = keep;
  }

  /**
   * Discards entries up to and including `index` (the state machine holds
   * them now). `term` and `membership` describe the new compaction point.
   */
  compact(index: number, term: number = this.term(index), membership: readonly Member[] = this._snapshot.membership): void {
    if (index <= this._snapshot.index) return;
    assert(index <= this.lastIndex(), "MemoryLog.compact: index <= lastIndex", `${index} > ${this.lastIndex()}`);
    assert(this.term(index) === term, "MemoryLog.compact: term matches the entry", `index ${index}: ${this.term(index)} vs ${term}`);
    this._entries = this._entries.slice(index - this._snapshot.index);
    this._snapshot = { index, term, membership };
  }

  /** Replaces the whole log by a snapshot (installing a MsgSnap). */
  reset(snapshot: SnapshotMeta): void {
    this._entries = [];
    this._snapshot = snapshot;
  }
}
