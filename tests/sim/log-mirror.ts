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
import { decodeMembership } from "../../src/raft/membership-codec.ts";
import type { Entry, Member } from "../../src/raft/types.ts";
import { entryId } from "./state-machine.ts";

/** A membership as a canonical string: sorted ids, learners marked with "~". */
export function membersKey(members: readonly Member[]): string {
  return members.map((m) => (m.voter ? m.id : `${m.id}~`)).sort().join(",");
}

/** A core's log as positions: entry at index i has term terms[i - snapIndex - 1]. */
export class LogMirror {
  /** Everything up to and including snapIndex is folded into a snapshot. */
  snapIndex = 0;
  snapTerm = 0;
  /** Invariant: terms.length === ids.length; terms are non-decreasing and >= snapTerm. */
  private terms: number[] = [];
  private ids: number[] = [];
  /** The membership at snapIndex (the snapshot's). */
  snapMembers: readonly Member[] = [];
  /** Config entries after snapIndex, ascending by index. */
  private cfgIndex: number[] = [];
  private cfgMembers: (readonly Member[])[] = [];

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
    while (this.cfgIndex.length > 0 && (this.cfgIndex[this.cfgIndex.length - 1] as number) >= first.index) {
      this.cfgIndex.pop();
      this.cfgMembers.pop();
    }
    for (const e of entries) {
      this.terms.push(e.term);
      this.ids.push(entryId(e));
      if (e.type === "config") {
        this.cfgIndex.push(e.index);
        this.cfgMembers.push(decodeMembership(e.data));
      }
    }
  }

  /** The membership in force at the end of the log (config entries take effect when appended). */
  configMembers(): readonly Member[] {
    const n = this.cfgMembers.length;
    return n === 0 ? this.snapMembers : (this.cfgMembers[n - 1] as readonly Member[]);
  }

  /** Index of the last config entry after snapIndex, or 0 if none. */
  lastConfigIndex(): number {
    const n = this.cfgIndex.length;
    return n === 0 ? 0 : (this.cfgIndex[n - 1] as number);
  }

  /** The membership in force at `index` (>= snapIndex). */
  configMembersAt(index: number): readonly Member[] {
    for (let i = this.cfgIndex.length - 1; i >= 0; i--) {
      if ((this.cfgIndex[i] as number) <= index) return this.cfgMembers[i] as readonly Member[];
    }
    return this.snapMembers;
  }

  /** Every membership in force at some index in [lo, hi] (lo >= snapIndex). */
  configMembersBetween(lo: number, hi: number): (readonly Member[])[] {
    const out = [this.configMembersAt(lo)];
    for (let i = 0; i < this.cfgIndex.length; i++) {
      const at = this.cfgIndex[i] as number;
      if (at > lo && at <= hi) out.push(this.cfgMembers[i] as readonly Member[]);
    }
    return out;
  }

  /** Replaces the whole log with a snapshot at (index, term) whose membership is `members`. */
  reset(index: number, term: number, members: readonly Member[]): void {
    this.snapIndex = index;
    this.snapTerm = term;
    this.snapMembers = members;
    this.terms = [];
    this.ids = [];
    this.cfgIndex = [];
    this.cfgMembers = [];
  }

  /** Drops entries up to and including `index` (which must be held). */
  compact(index: number): void {
    if (index <= this.snapIndex) return;
    const term = this.term(index);
    if (term === undefined) throw new Error(`LogMirror.compact(${index}): not held (last ${this.lastIndex()})`);
    const drop = index - this.snapIndex;
    this.snapMembers = this.configMembersAt(index);
    let cfgDrop = 0;
    while (cfgDrop < this.cfgIndex.length && (this.cfgIndex[cfgDrop] as number) <= index) cfgDrop++;
    this.cfgIndex = this.cfgIndex.slice(cfgDrop);
    this.cfgMembers = this.cfgMembers.slice(cfgDrop);
    this.terms = this.terms.slice(drop);
    this.ids = this.ids.slice(drop);
    this.snapIndex = index;
    this.snapTerm = term;
  }
}
