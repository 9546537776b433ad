/**
 * The simulator's safety checker: it watches every Ready, durable write,
 * message sent, entry applied and read served, and throws a
 * {@link SimViolation} the moment one of Raft's guarantees breaks (Raft
 * paper Figure 3; dissertation §3.6.3 and §6.4):
 *
 *  - Election Safety: at most one leader per term (also inferred from who
 *    sends leader-only messages in a term), and a node leads a term at most
 *    once across restarts (a second time it could reuse (index, term) pairs);
 *  - Leader Append-Only: a leader never overwrites or deletes its entries;
 *  - Log Matching: an (index, term) pair names one content and one
 *    predecessor term everywhere, which by induction makes logs equal up to it;
 *  - Leader Completeness: a new leader holds every entry known committed;
 *  - committed entries never change: a node's entries up to its commit index
 *    match the cluster-wide committed log and are never rewritten, and the
 *    commit index never goes back;
 *  - a follower keeps the entries it acknowledged in a term (the leader
 *    counted them) until its term moves on;
 *  - State Machine Safety: every replica applies index i+1 right after i,
 *    exactly once per restart from its snapshot, and all replicas agree on the
 *    state after each index;
 *  - durable terms never decrease and a node grants its vote in a term to
 *    one candidate only, and only once that vote is durable (across restarts);
 *  - reads: a read barrier that resolves leaves the state machine at or
 *    past every write acknowledged (applied anywhere) before the read began;
 *  - a node never acknowledges an entry it does not durably hold, and a
 *    restart in the same term still holds every entry it acknowledged;
 *  - durable terms and votes never go back across restarts (the disk may
 *    keep more than was reported durable, never less);
 *  - membership (dissertation §4.1, §4.3): the configuration in force is the
 *    last one in the log, a leader changes one voter at a time, only with no
 *    change pending and after committing in its term, and a node reports
 *    "removed" only once its removal is committed.
 *
 * Plus the Ready contract of `src/raft/types.ts`: committed entries are
 * durable locally before they are handed out, and status().lastIndex is the
 * end of what the Readys handed out.
 *
 * @module
 */
import type { ConfigState, Entry, HardState, Member, Message, NodeId, Ready, Role } from "../../src/raft/types.ts";
import { decodeMembership } from "../../src/raft/membership-codec.ts";
import { type LogMirror, membersKey } from "./log-mirror.ts";
import { decodeProposalId, entryId, type SmState } from "./state-machine.ts";

/** The part of `Raft.status()` the checker reads (structural, so it does not depend on the core's module). */
export interface RaftStatusLike {
  readonly role: Role;
  readonly term: number;
  readonly commitIndex: number;
  readonly lastIndex: number;
  readonly config: ConfigState;
}

/** A broken invariant. Its message says what, where and when. */
export class SimViolation extends Error {
  override name = "SimViolation";
}

/** What the checker needs to see of a node host. */
export interface HostView {
  readonly id: NodeId;
  readonly incarnation: number;
  readonly mirror: LogMirror;
  /** The durable HardState (what a restart would read). */
  durableHardState(): HardState;
  /** The durable log's last index and term lookup (what survived). */
  durableLastIndex(): number;
  durableTerm(index: number): number | undefined;
  /** The durable log's compaction point: entries at or below it live in its snapshot. */
  durableSnapshotIndex(): number;
}

/** Per-node state of the checker; survives the node's restarts. */
interface NodeTrack {
  /** Role and term seen at the last observation of this incarnation. */
  role: string;
  term: number;
  /** Highest commit index whose entries were checked against the committed log (this incarnation). */
  checkedCommit: number;
  /** The last HardState the core emitted in this incarnation. */
  emitted: HardState;
  /** The last durable HardState (across incarnations). */
  durable: HardState;
  /** The last term in which this node was checked as a new leader. */
  leaderCheckedTerm: number;
  /** The incarnation in which it led `leaderCheckedTerm`. */
  leaderIncarnation: number;
  /**
   * The highest matchIndex this node acknowledged (MsgAppResp success) in
   * `ackTerm`: the leader counts it toward commitment, so until the node's
   * term moves on it must keep those entries (a crash does not lose them:
   * the ack left only once they were durable).
   */
  ackTerm: number;
  ackIndex: number;
  /** The last ConfigState object checked against the log (checked again only when it changes). */
  configSeen: ConfigState | null;
  configSeenMirror: readonly Member[] | null;
}

/** Counters for the run summary. */
export interface CheckStats {
  elections: number;
  applied: number;
  committedMax: number;
  writesAcked: number;
  readsBegun: number;
  readsServed: number;
}

const _termKeyMax = 1_000_000;

/** Cluster-wide invariant checker. One per run. */
export class Checker {
  readonly stats: CheckStats = { elections: 0, applied: 0, committedMax: 0, writesAcked: 0, readsBegun: 0, readsServed: 0 };
  /** The world's clock, for messages. */
  now = 0;

  private readonly leaders = new Map<number, NodeId>();
  /** `${voter} ${term}` -> the candidate it granted its vote to. */
  private readonly votes = new Map<string, NodeId>();
  /** The committed log: term and content identity by index (sparse below snapshots nobody applied). */
  private readonly committedTerm: number[] = [];
  private readonly committedId: number[] = [];
  /** State-machine hash after each index, as first seen. */
  private readonly smHash: number[] = [];
  /** (index * 1e6 + term) -> content identity / predecessor's term (Log Matching). */
  private readonly pairId = new Map<number, number>();
  private readonly pairPrevTerm = new Map<number, number>();
  /** proposal id -> index it committed at. */
  private readonly proposalIndex = new Map<number, number>();
  /** Highest index of a write that some replica has applied (= acknowledged). */
  private ackedIndexMax = 0;
  private readonly nodes = new Map<NodeId, NodeTrack>();
  /** The newest configuration some replica applied (so: committed). */
  private committedConfig: ConfigState | null = null;
  /** Every id that was a member of some committed configuration. */
  private readonly everMember = new Set<NodeId>();

  /** The newest committed configuration seen applied, or null before any. */
  latestCommittedConfig(): ConfigState | null {
    return this.committedConfig;
  }

  /** Whether `id` was ever a member of a committed configuration (bootstrap included). */
  wasMember(id: NodeId): boolean {
    return this.everMember.has(id);
  }

  /** The bootstrap configuration counts as committed. */
  noteBootstrap(config: ConfigState): void {
    this.committedConfig = config;
    for (const m of config.members) this.everMember.add(m.id);
  }

  /** The highest index known committed anywhere. */
  committedMax(): number {
    return this.stats.committedMax;
  }

  /** The committed term at `index`, if known. */
  committedTermAt(index: number): number | undefined {
    return this.committedTerm[index];
  }

  /** Throws a {@link SimViolation} naming the tick and the node. */
  fail(node: NodeId | null, what: string): never {
    throw new SimViolation(`tick ${this.now}${node === null ? "" : ` node ${node}`}: ${what}`);
  }

  private track(id: NodeId): NodeTrack {
    const t = this.nodes.get(id);
    if (t === undefined) throw new Error(`checker: unknown node ${id}`);
    return t;
  }

  /** A node (re)started from its durable state. */
  onStart(host: HostView, status: RaftStatusLike): void {
    const hs = host.durableHardState();
    const prev = this.nodes.get(host.id);
    if (prev === undefined) {
      this.nodes.set(host.id, { role: status.role, term: status.term, checkedCommit: host.mirror.snapIndex, emitted: hs, durable: hs, leaderCheckedTerm: 0, leaderIncarnation: 0, ackTerm: 0, ackIndex: 0, configSeen: null, configSeenMirror: null });
    } else {
      prev.role = status.role;
      prev.term = status.term;
      prev.checkedCommit = host.mirror.snapIndex;
      prev.emitted = hs;
      prev.configSeen = null;
      prev.configSeenMirror = null;
      // The disk may have kept more than was reported durable (an unsynced write that survived), never less.
      const d = prev.durable;
      if (hs.term < d.term || (hs.term === d.term && d.votedFor !== null && hs.votedFor !== d.votedFor)) {
        this.fail(host.id, `restarted with term ${hs.term} vote ${hs.votedFor ?? "-"}, but term ${d.term} vote ${d.votedFor ?? "-"} was durable`);
      }
      prev.durable = hs;
      // Entries it acknowledged in its current term were counted by that term's leader: a crash must not lose them.
      if (prev.ackTerm === status.term && host.durableLastIndex() < prev.ackIndex) {
        this.fail(host.id, `restarted in term ${status.term} holding entries up to ${host.durableLastIndex()}, but it acknowledged ${prev.ackIndex} in that term before the crash`);
      }
    }
    if (status.term < hs.term) this.fail(host.id, `restarted at term ${status.term} below its durable term ${hs.term}`);
    if (hs.commitIndex > host.durableLastIndex()) {
      this.fail(host.id, `durable commitIndex ${hs.commitIndex} is past the durable log's last index ${host.durableLastIndex()}`);
    }
    this.observe(host, status);
  }

  /** Records that `id` is leader of `term` (from its status or from a leader-only message it sent). */
  private recordLeader(id: NodeId, term: number, how: string): void {
    const cur = this.leaders.get(term);
    if (cur === undefined) {
      this.leaders.set(term, id);
      return;
    }
    if (cur !== id) this.fail(id, `Election Safety: ${cur} and ${id} are both leader of term ${term} (${how})`);
  }

  /**
   * Called with every Ready before the host acts on it. `status` is the
   * core's status right after producing it.
   */
  onReady(host: HostView, rd: Ready, status: RaftStatusLike): void {
    const t = this.track(host.id);
    const id = host.id;
    const m = host.mirror;
    const wasLeaderSameTerm = t.role === "leader" && status.role === "leader" && t.term === status.term;
    if (status.role === "leader") {
      this.recordLeader(id, status.term, "status");
      if (t.leaderCheckedTerm === status.term && t.leaderIncarnation !== host.incarnation) {
        this.fail(id, `led term ${status.term} again after a restart: its entries of that term may differ from the first time (Log Matching)`);
      }
      if (t.leaderCheckedTerm !== status.term) {
        t.leaderCheckedTerm = status.term;
        t.leaderIncarnation = host.incarnation;
        this.checkLeaderCompleteness(host, status.term);
      }
    }
    if (status.term < t.term) this.fail(id, `term went back from ${t.term} to ${status.term}`);

    if (rd.hardState !== null) {
      const prev = t.emitted;
      const next = rd.hardState;
      this.checkHardStateStep(id, prev, next, "emitted");
      if (next.term > status.term) this.fail(id, `emitted HardState term ${next.term} above the core's term ${status.term}`);
      t.emitted = next;
    }

    let base = m.lastIndex();
    const ackHeld = t.ackTerm === status.term ? t.ackIndex : 0;
    if (rd.snapshot !== null) {
      const s = rd.snapshot;
      if (s.index < ackHeld) {
        this.fail(id, `replaced its log by a snapshot at ${s.index}, dropping entries up to ${ackHeld} it had acknowledged to the leader of term ${status.term}`);
      }
      if (wasLeaderSameTerm) this.fail(id, `Leader Append-Only: the leader of term ${status.term} installed a snapshot at ${s.index}`);
      if (s.index <= t.checkedCommit && m.term(s.index) !== undefined && m.term(s.index) !== s.term) {
        this.fail(id, `snapshot at ${s.index} term ${s.term} contradicts its own committed entry (term ${m.term(s.index)})`);
      }
      this.checkCommittedPair(id, s.index, s.term, "snapshot");
      base = s.index;
    }

    const first = rd.entries[0];
    if (first !== undefined) {
      const snapIndex = rd.snapshot !== null ? rd.snapshot.index : m.snapIndex;
      const snapTerm = rd.snapshot !== null ? rd.snapshot.term : m.snapTerm;
      if (first.index <= snapIndex || first.index > base + 1) {
        this.fail(id, `Ready.entries start at ${first.index}, outside (${snapIndex}, ${base + 1}]`);
      }
      for (const e of rd.entries) {
        if (e.index > ackHeld || e.index > base) break;
        if (m.id(e.index) !== entryId(e) || m.term(e.index) !== e.term) {
          this.fail(id, `rewrote entry ${e.index}, at or below the ${ackHeld} it had acknowledged to the leader of term ${status.term}`);
        }
      }
      if (wasLeaderSameTerm && first.index <= base) {
        this.fail(id, `Leader Append-Only: the leader of term ${status.term} rewrote its log from ${first.index} (last was ${base})`);
      }
      if (status.role === "leader" && rd.snapshot === null) this.checkLeaderConfigChanges(host, rd.entries, status);
      let prevTerm = rd.snapshot !== null && first.index === snapIndex + 1 ? snapTerm : (m.term(first.index - 1) as number);
      let expect = first.index;
      for (const e of rd.entries) {
        if (e.index !== expect) this.fail(id, `Ready.entries not contiguous: ${e.index} after ${expect - 1}`);
        if (e.term < prevTerm) this.fail(id, `entry ${e.index} has term ${e.term} below its predecessor's ${prevTerm}`);
        if (e.term > status.term) this.fail(id, `entry ${e.index} has term ${e.term} above the node's term ${status.term}`);
        const eid = entryId(e);
        if (rd.snapshot === null && e.index <= t.checkedCommit && e.index <= base) {
          const old = m.id(e.index);
          if (old !== undefined && (old !== eid || m.term(e.index) !== e.term)) {
            this.fail(id, `committed entry ${e.index} (term ${m.term(e.index)}) overwritten by term ${e.term}`);
          }
        }
        this.checkPair(id, e.index, e.term, eid, prevTerm);
        prevTerm = e.term;
        expect++;
      }
    }
    t.role = status.role;
    t.term = status.term;
  }

  /**
   * Single-server membership changes (dissertation §4.1, §4.3): a leader
   * appends a config entry only when every earlier one is committed and it
   * has committed an entry of its own term (the fix to the bug Ongaro
   * reported on raft-dev in 2015), and each change adds or removes at most
   * one voter.
   */
  private checkLeaderConfigChanges(host: HostView, entries: readonly Entry[], status: RaftStatusLike): void {
    const m = host.mirror;
    let prev = m.configMembers();
    let pendingAt = m.lastConfigIndex();
    for (const e of entries) {
      if (e.type !== "config" || e.term !== status.term) continue;
      if (pendingAt > status.commitIndex) {
        this.fail(host.id, `leader of term ${status.term} appended config entry ${e.index} while config entry ${pendingAt} is uncommitted (commit ${status.commitIndex})`);
      }
      const commitTerm = status.commitIndex === e.index ? undefined : m.term(status.commitIndex);
      if (commitTerm !== undefined && commitTerm !== status.term) {
        this.fail(host.id, `leader of term ${status.term} appended config entry ${e.index} before committing an entry of its term (commit ${status.commitIndex} is of term ${commitTerm})`);
      }
      const next = decodeMembership(e.data);
      const before = new Set(prev.filter((x) => x.voter).map((x) => x.id));
      const after = new Set(next.filter((x) => x.voter).map((x) => x.id));
      let diff = 0;
      for (const v of before) if (!after.has(v)) diff++;
      for (const v of after) if (!before.has(v)) diff++;
      if (diff > 1) this.fail(host.id, `config entry ${e.index} changes ${diff} voters at once: ${membersKey(prev)} -> ${membersKey(next)}`);
      prev = next;
      pendingAt = e.index;
    }
  }

  /** Log Matching: one content and one predecessor term per (index, term). */
  private checkPair(id: NodeId, index: number, term: number, eid: number, prevTerm: number): void {
    if (term >= _termKeyMax) throw new Error(`term ${term} too large for the checker's keys`);
    const key = index * _termKeyMax + term;
    const seen = this.pairId.get(key);
    if (seen === undefined) {
      this.pairId.set(key, eid);
      this.pairPrevTerm.set(key, prevTerm);
      return;
    }
    if (seen !== eid) this.fail(id, `Log Matching: two different entries at index ${index} term ${term}`);
    const seenPrev = this.pairPrevTerm.get(key);
    if (seenPrev !== prevTerm) {
      this.fail(id, `Log Matching: entry ${index} term ${term} follows term ${prevTerm} here but term ${seenPrev} elsewhere`);
    }
    const ct = this.committedTerm[index];
    if (ct !== undefined && ct === term && this.committedId[index] !== eid) {
      this.fail(id, `committed entry ${index} changed content`);
    }
  }

  /** A snapshot or compaction point must agree with the committed log. */
  private checkCommittedPair(id: NodeId, index: number, term: number, what: string): void {
    const ct = this.committedTerm[index];
    if (ct !== undefined && ct !== term) this.fail(id, `${what} at ${index} has term ${term}, but the committed entry there has term ${ct}`);
  }

  /** Term and vote rules between two successive HardStates of one node. */
  private checkHardStateStep(id: NodeId, prev: HardState, next: HardState, what: string): void {
    if (next.term < prev.term) this.fail(id, `${what} term went back from ${prev.term} to ${next.term}`);
    if (next.term === prev.term && prev.votedFor !== null && next.votedFor !== prev.votedFor) {
      this.fail(id, `${what} vote in term ${next.term} changed from ${prev.votedFor} to ${next.votedFor ?? "nobody"}`);
    }
  }

  /** A HardState became durable. */
  onDurableHardState(host: HostView, next: HardState): void {
    const t = this.track(host.id);
    this.checkHardStateStep(host.id, t.durable, next, "durable");
    t.durable = next;
  }

  /** A message is leaving `host` (to the network or the snapshot stream). */
  onSend(host: HostView, msg: Message): void {
    if (msg.from !== host.id) this.fail(host.id, `sent a message claiming to be from ${msg.from}`);
    switch (msg.type) {
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
      case "MsgTimeoutNow":
        this.recordLeader(host.id, msg.term, `sent ${msg.type}`);
        break;
      case "MsgAppResp": {
        if (!msg.success) break;
        const t = this.track(host.id);
        // An acknowledgement promises entries that are durable here.
        const held = host.durableLastIndex();
        if (held >= 0 && msg.matchIndex > held) {
          this.fail(host.id, `acknowledged index ${msg.matchIndex} to ${msg.to} in term ${msg.term}, but its durable log ends at ${held}`);
        }
        if (t.ackTerm !== msg.term) {
          t.ackTerm = msg.term;
          t.ackIndex = 0;
        }
        if (msg.matchIndex > t.ackIndex) t.ackIndex = msg.matchIndex;
        break;
      }
      case "MsgVoteResp": {
        if (!msg.granted) break;
        // Durable as this vote, or a later term durable (group commit writes only the newest hard state):
        // either way no restart can vote again in this term.
        const hs = host.durableHardState();
        if (hs.term < msg.term || (hs.term === msg.term && hs.votedFor !== msg.to)) {
          this.fail(host.id, `granted its term-${msg.term} vote to ${msg.to} before it was durable (durable term ${hs.term}, votedFor ${hs.votedFor ?? "nobody"})`);
        }
        const key = `${host.id} ${msg.term}`;
        const prev = this.votes.get(key);
        if (prev !== undefined && prev !== msg.to) this.fail(host.id, `voted for both ${prev} and ${msg.to} in term ${msg.term}`);
        this.votes.set(key, msg.to);
        break;
      }
      default:
        break;
    }
  }

  /** After every burst of work on a node: its status. */
  observe(host: HostView, status: RaftStatusLike): void {
    const t = this.track(host.id);
    const id = host.id;
    const m = host.mirror;
    if (status.term < t.term) this.fail(id, `term went back from ${t.term} to ${status.term}`);
    if (status.role === "leader") {
      this.recordLeader(id, status.term, "status");
      if (t.leaderCheckedTerm === status.term && t.leaderIncarnation !== host.incarnation) {
        this.fail(id, `led term ${status.term} again after a restart: its entries of that term may differ from the first time (Log Matching)`);
      }
      if (t.leaderCheckedTerm !== status.term) {
        t.leaderCheckedTerm = status.term;
        t.leaderIncarnation = host.incarnation;
        this.checkLeaderCompleteness(host, status.term);
      }
    }
    if (status.lastIndex !== m.lastIndex()) {
      this.fail(id, `status().lastIndex ${status.lastIndex} but the Readys handed out end at ${m.lastIndex()}`);
    }
    if (status.commitIndex > m.lastIndex()) this.fail(id, `commitIndex ${status.commitIndex} past its last index ${m.lastIndex()}`);
    if (status.config !== t.configSeen || m.configMembers() !== t.configSeenMirror) {
      t.configSeen = status.config;
      t.configSeenMirror = m.configMembers();
      const want = membersKey(m.configMembers());
      const got = membersKey(status.config.members);
      if (got !== want) this.fail(id, `configuration in force is ${got}, but its log says ${want} (config entries take effect when appended, §4.1)`);
    }
    if (status.commitIndex < t.checkedCommit) this.fail(id, `commitIndex went back from ${t.checkedCommit} to ${status.commitIndex}`);
    if (status.commitIndex > t.checkedCommit) {
      for (let i = Math.max(t.checkedCommit, m.snapIndex) + 1; i <= status.commitIndex; i++) {
        this.noteCommitted(id, i, m.term(i) as number, m.id(i) as number);
      }
      t.checkedCommit = status.commitIndex;
    }
    t.role = status.role;
    t.term = status.term;
  }

  /** Entry `index` with (term, id) is committed according to node `id`. */
  private noteCommitted(id: NodeId, index: number, term: number, eid: number): void {
    const ct = this.committedTerm[index];
    if (ct === undefined) {
      this.committedTerm[index] = term;
      this.committedId[index] = eid;
      if (index > this.stats.committedMax) this.stats.committedMax = index;
      return;
    }
    if (ct !== term || this.committedId[index] !== eid) {
      this.fail(id, `committed entry ${index} differs: term ${term} here, term ${ct} committed elsewhere`);
    }
  }

  /** Leader Completeness (§5.4): a new leader holds every entry known committed. */
  private checkLeaderCompleteness(host: HostView, term: number): void {
    this.stats.elections++;
    const m = host.mirror;
    const max = this.stats.committedMax;
    if (m.lastIndex() < max) this.fail(host.id, `Leader Completeness: new leader of term ${term} ends at ${m.lastIndex()}, but ${max} is committed`);
    this.checkCommittedPair(host.id, m.snapIndex, m.snapTerm, "new leader's snapshot");
    for (let i = m.snapIndex + 1; i <= max; i++) {
      const ct = this.committedTerm[i];
      if (ct === undefined) continue;
      if (m.term(i) !== ct || m.id(i) !== this.committedId[i]) {
        this.fail(host.id, `Leader Completeness: new leader of term ${term} has term ${m.term(i)} at ${i}, committed term is ${ct}`);
      }
    }
  }

  /** The node handed out committed entries: they must be durable locally. */
  checkApplyDurable(host: HostView, e: Entry): void {
    // Handed out before a later snapshot replaced the log under it (the apply
    // chain runs behind the log): the entry is durable in that snapshot, whose
    // restore the apply chain runs after this entry. State machine safety checks
    // the entry itself.
    if (e.index <= host.durableSnapshotIndex()) return;
    if (host.durableLastIndex() < e.index || host.durableTerm(e.index) !== e.term) {
      this.fail(host.id, `committed entry ${e.index} term ${e.term} handed out before it was durable locally (durable last ${host.durableLastIndex()}, term there ${host.durableTerm(e.index)})`);
    }
  }

  /** A replica applied `e`, reaching state `after`. The host checked the order. */
  onApply(host: HostView, e: Entry, after: SmState): void {
    this.stats.applied++;
    this.noteCommitted(host.id, e.index, e.term, entryId(e));
    this.checkSmState(host.id, after, "applied");
    if (e.type === "config" && (this.committedConfig === null || e.index > this.committedConfig.index)) {
      this.committedConfig = { index: e.index, members: decodeMembership(e.data) };
      for (const m of this.committedConfig.members) this.everMember.add(m.id);
    }
    if (e.type === "normal") {
      const pid = decodeProposalId(e.data);
      const at = this.proposalIndex.get(pid);
      if (at === undefined) {
        this.proposalIndex.set(pid, e.index);
        this.stats.writesAcked++;
        if (e.index > this.ackedIndexMax) this.ackedIndexMax = e.index;
      } else if (at !== e.index) {
        this.fail(host.id, `proposal ${pid} committed twice, at ${at} and ${e.index}`);
      }
    }
  }

  /** A persisted state machine skipped an entry it had applied before a restart. */
  onReapplySkipped(host: HostView, e: Entry): void {
    this.noteCommitted(host.id, e.index, e.term, entryId(e));
  }

  /** All replicas agree on the state after each index. */
  checkSmState(id: NodeId, s: SmState, what: string): void {
    const h = this.smHash[s.index];
    if (h === undefined) {
      this.smHash[s.index] = s.hash;
      return;
    }
    if (h !== s.hash) this.fail(id, `State Machine Safety: state after ${s.index} (${what}) differs from another replica's`);
  }


  /** Whether the write with this proposal id has been applied somewhere. */
  proposalCommitted(proposalId: number): boolean {
    return this.proposalIndex.has(proposalId);
  }

  /** A client read (a read barrier, then the local state) began at `nodeId`: the writes it must see. */
  beginClientRead(): number {
    this.stats.readsBegun++;
    return this.ackedIndexMax;
  }

  /** A client read was served from a state machine at `smIndex`; it must reflect every write acknowledged before it began. */
  clientReadServed(nodeId: NodeId, ackedAtBegin: number, smIndex: number): void {
    this.stats.readsServed++;
    if (smIndex < ackedAtBegin) this.fail(nodeId, `a read barrier resolved with the state machine at ${smIndex}, but a write at ${ackedAtBegin} was acknowledged before the read began`);
  }

  /** A client's propose() resolved: the write at `index` is acknowledged. */
  onWriteAcked(index: number): void {
    if (index > this.ackedIndexMax) this.ackedIndexMax = index;
  }



  /**
   * The core reported its own removal: a configuration committed since it
   * was last seen must leave it out (a removal takes effect for the removed
   * member only once committed; an uncommitted one may still be truncated
   * away).
   */
  onRemovedEvent(host: HostView, status: RaftStatusLike): void {
    // Committed between the last status seen and this one (the same Ready may commit its removal and a re-add).
    const lo = Math.max(this.track(host.id).checkedCommit, host.mirror.snapIndex);
    const cfgs = host.mirror.configMembersBetween(lo, status.commitIndex);
    if (cfgs.every((c) => c.some((m) => m.id === host.id))) {
      this.fail(host.id, `reported "removed", but every configuration committed through its commit index ${status.commitIndex} holds it (${cfgs.map(membersKey).join(" / ")})`);
    }
  }






  /** The end-of-run check: the surviving leader holds the whole committed log. */
  checkFinalLeader(host: HostView, status: RaftStatusLike): void {
    if (status.commitIndex < this.stats.committedMax) {
      this.fail(host.id, `final leader's commitIndex ${status.commitIndex} is below the committed ${this.stats.committedMax}`);
    }
    this.checkLeaderCompleteness(host, status.term);
    this.stats.elections--;
  }
}
