/**
 * The dashboard's timeline: what one member saw happen (elections, leader
 * changes, membership changes, catch-up rounds, snapshots, members that stop
 * or start answering), in words, for the last hour.
 *
 * @module
 */
import type { NodeEvent } from "../../node/types.ts";
import type { Member, NodeId } from "../../raft/types.ts";

/** What an entry is about (the page colours and filters by it). */
export type TimelineKind = "election" | "leader" | "membership" | "catch-up" | "snapshot" | "member";

/** One line of the timeline. */
export interface TimelineEntry {
  /** Increasing per member: tells new entries from ones already sent. */
  readonly seq: number;
  /** When (wall clock, ms since the epoch). */
  readonly atMs: number;
  readonly kind: TimelineKind;
  /** The member it is about, if one. */
  readonly about: NodeId | null;
  readonly text: string;
}

function _describeMembers(ms: readonly Member[]): string {
  return ms.map((m) => (m.voter ? m.id : `${m.id} (learner)`)).join(", ");
}

/** The timeline of one member, bounded in age and length. */
export class Timeline {
  readonly #self: NodeId;
  readonly #keepMs: number;
  readonly #entriesMax: number;
  readonly #entries: TimelineEntry[] = [];
  #seq = 0;
  #leader: NodeId | null = null;
  #role: string | null = null;
  #members: readonly Member[] | null = null;

  constructor(self: NodeId, keepMs = 3_600_000, entriesMax = 2000) {
    this.#self = self;
    this.#keepMs = keepMs;
    this.#entriesMax = entriesMax;
  }

  /** Adds an entry; returns it. */
  add(atMs: number, kind: TimelineKind, about: NodeId | null, text: string): TimelineEntry {
    const e: TimelineEntry = { seq: ++this.#seq, atMs, kind, about, text };
    this.#entries.push(e);
    this.#prune(atMs);
    return e;
  }

  /** Turns a node event into entries (none for events that change nothing worth showing). */
  record(atMs: number, ev: NodeEvent): TimelineEntry[] {
    const self = this.#self;
    const out: TimelineEntry[] = [];
    const add = (kind: TimelineKind, about: NodeId | null, text: string) => out.push(this.add(atMs, kind, about, text));
    switch (ev.type) {
      case "role": {
        const leaderChanged = ev.leader !== this.#leader;
        const roleChanged = ev.role !== this.#role;
        this.#leader = ev.leader;
        this.#role = ev.role;
        if (ev.role === "precandidate" && roleChanged) add("election", self, `${self} heard from no leader and asked for pre-votes (term ${ev.term})`);
        else if (ev.role === "candidate" && roleChanged) add("election", self, `${self} started an election for term ${ev.term}`);
        else if (ev.role === "leader" && roleChanged) add("leader", self, `${self} became leader in term ${ev.term}`);
        else if (leaderChanged && ev.leader !== null) add("leader", ev.leader, `${self} follows leader ${ev.leader} (term ${ev.term})`);
        else if (leaderChanged) add("leader", null, `${self} lost its leader (term ${ev.term})`);
        break;
      }
      case "membership": {
        const before = this.#members;
        this.#members = ev.members;
        if (before === null) {
          add("membership", null, `members: ${_describeMembers(ev.members)}`);
          break;
        }
        for (const m of ev.members) {
          const was = before.find((b) => b.id === m.id);
          if (was === undefined) add("membership", m.id, m.voter ? `${m.id} (${m.url}) was added as a voter` : `${m.id} (${m.url}) was added as a learner, to be caught up`);
          else if (!was.voter && m.voter) add("membership", m.id, `${m.id} was promoted to voter`);
          else if (was.voter && !m.voter) add("membership", m.id, `${m.id} became a learner`);
        }
        for (const b of before) if (!ev.members.some((m) => m.id === b.id)) add("membership", b.id, `${b.id} was removed from the cluster`);
        break;
      }
      case "catch-up":
        add("catch-up", ev.id, `catching up ${ev.id}: round ${ev.round} ended ${ev.lag} entries behind`);
        break;
      case "catch-up-failed":
        add("catch-up", ev.id, `gave up catching up ${ev.id}: ${ev.reason}`);
        break;
      case "snapshot":
        if (ev.what === "taken") add("snapshot", self, `${self} took a snapshot at index ${ev.index}`);
        else if (ev.what === "sent") add("snapshot", ev.peer ?? null, `${self} sent a snapshot (index ${ev.index})${ev.peer === undefined ? "" : ` to ${ev.peer}`}`);
        else add("snapshot", self, `${self} installed a snapshot at index ${ev.index}`);
        break;
      case "removed":
        add("membership", self, `${self} was removed from the cluster`);
        break;
      case "closing":
        add("member", self, `${self} is stopping`);
        break;
      case "stopped":
        add("member", self, ev.error === null ? `${self} stopped` : `${self} stopped: ${ev.error.message}`);
        break;
    }
    return out;
  }

  /** The entries of the last hour (as of `nowMs`), oldest first. */
  entries(nowMs: number): readonly TimelineEntry[] {
    this.#prune(nowMs);
    return this.#entries.slice();
  }

  #prune(nowMs: number): void {
    let drop = 0;
    while (drop < this.#entries.length && (this.#entries.length - drop > this.#entriesMax || this.#entries[drop]!.atMs < nowMs - this.#keepMs)) drop++;
    if (drop > 0) this.#entries.splice(0, drop);
  }
}
