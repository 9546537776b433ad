/**
 * Which members are in force, and since when. A configuration takes effect
 * as soon as its entry is appended, committed or not (dissertation §4.1), so
 * a truncated suffix can take a configuration back: the history of config
 * entries after the compaction point is kept for that, and for
 * `configAt(index)` (the membership a snapshot at `index` must carry).
 *
 * @module
 */
import { assert } from "./assert.ts";
import type { ConfigState, Member, NodeId } from "./types.ts";

/** Ids of the voting members, in list order. */
export function votersOf(members: readonly Member[]): NodeId[] {
  const out: NodeId[] = [];
  for (const m of members) if (m.voter) out.push(m.id);
  return out;
}

/** The member with `id`, or undefined. */
export function findMember(members: readonly Member[], id: NodeId): Member | undefined {
  for (const m of members) if (m.id === id) return m;
  return undefined;
}

/**
 * The configurations in force over the retained log, ascending by index.
 * Invariant: never empty; indexes strictly ascend; the last one is in force.
 */
export class ConfigHistory {
  private _history: ConfigState[];
  /** Voter ids of the configuration in force (cached: read on every commit check). */
  private _voters: NodeId[];

  /** @param base the configuration at the compaction point (or the bootstrap one, index 0) */
  constructor(base: ConfigState) {
    this._history = [base];
    this._voters = votersOf(base.members);
  }

  /** The configuration in force. */
  current(): ConfigState {
    return this._history[this._history.length - 1] as ConfigState;
  }

  /** Voters of the configuration in force. */
  voters(): readonly NodeId[] {
    return this._voters;
  }

  /** Every retained configuration, ascending. */
  all(): readonly ConfigState[] {
    return this._history;
  }

  /** The configuration in force at log position `index` (the last one set at or before it). */
  configAt(index: number): ConfigState {
    const h = this._history;
    for (let i = h.length - 1; i > 0; i--) {
      const c = h[i] as ConfigState;
      if (c.index <= index) return c;
    }
    return h[0] as ConfigState;
  }

  /** A config entry at `cs.index` was appended: it is in force from now on. */
  push(cs: ConfigState): void {
    assert(cs.index > this.current().index, "config history indexes ascend", `${cs.index} after ${this.current().index}`);
    this._history.push(cs);
    this._voters = votersOf(cs.members);
  }

  /**
   * The log was truncated from `index` on: configurations set there are
   * undone. @returns true when the configuration in force changed
   */
  truncateFrom(index: number): boolean {
    let changed = false;
    while (this._history.length > 1 && (this._history[this._history.length - 1] as ConfigState).index >= index) {
      this._history.pop();
      changed = true;
    }
    if (changed) this._voters = votersOf(this.current().members);
    return changed;
  }

  /** A snapshot replaced the log: `base` is all there is. */
  reset(base: ConfigState): void {
    this._history = [base];
    this._voters = votersOf(base.members);
  }

  /** Forgets configurations superseded at or before `index` (the log's compaction point). */
  prune(index: number): void {
    let drop = 0;
    while (drop + 1 < this._history.length && (this._history[drop + 1] as ConfigState).index <= index) drop++;
    if (drop > 0) this._history = this._history.slice(drop);
  }
}
