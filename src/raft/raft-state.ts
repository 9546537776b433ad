/**
 * The state of one Raft core and its role transitions (etcd's raft.go
 * `becomeFollower` / `becomePreCandidate` / `becomeCandidate` /
 * `becomeLeader`), shared by the layers that build `Raft`:
 *
 *   RaftState (this file)  fields, role changes, log appends, configuration effects
 *   RaftReplication        AppendEntries / InstallSnapshot, both sides; commitment
 *   RaftStep               message dispatch, timers, elections, CheckQuorum
 *   RaftMembership         membership changes with learner catch-up, leadership transfer
 *   Raft                   the public API: proposals, ReadIndex, Ready / advance, status
 *
 * The class is split along these concerns to keep each file readable; only
 * `Raft` is meant to be used.
 *
 * @module
 */
import { InvalidArgumentError, NotLeaderError } from "../errors.ts";
import { MSG_APP_ENTRIES_MAX } from "./limits.ts";
import { assert } from "./assert.ts";
import { RaftLog } from "./log.ts";
import { ConfigHistory, findMember } from "./membership.ts";
import { decodeMembership } from "./membership-codec.ts";
import { Prng } from "./prng.ts";
import { Progress } from "./progress.ts";
import { ReadOnly } from "./read-only.ts";
import type {
  ConfigState,
  Entry,
  HardState,
  Member,
  Message,
  NodeId,
  RaftConfig,
  RaftEvent,
  RaftInit,
  ReadState,
  Ready,
  Role,
} from "./types.ts";

/** A learner being caught up before its promotion (dissertation §4.2.1). */
export interface CatchUp {
  readonly id: NodeId;
  /** Current round, from 1. */
  round: number;
  /** Leader tick count when the round started. */
  roundStart: number;
  /** The round ends when the learner's match reaches this index (leader's last index at round start). */
  target: number;
  /** Decided: append the promotion, or remove the learner, once no other change is pending. */
  outcome: "promote" | "remove" | null;
}

/** Validates tunables. @throws InvalidArgumentError */
function checkConfig(c: RaftConfig): void {
  const positive = (v: number, name: string): void => {
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`Raft config ${name} must be a positive integer, got ${v}`);
  };
  if (typeof c.id !== "string" || c.id.length === 0) throw new InvalidArgumentError("Raft config id must be a non-empty string");
  positive(c.electionTicks, "electionTicks");
  positive(c.heartbeatTicks, "heartbeatTicks");
  positive(c.maxInflightMsgs, "maxInflightMsgs");
  positive(c.maxMsgBytes, "maxMsgBytes");
  positive(c.catchUpRoundsMax, "catchUpRoundsMax");
  if (!Number.isSafeInteger(c.maxInflightBytes) || c.maxInflightBytes < 0) {
    throw new InvalidArgumentError(`Raft config maxInflightBytes must be >= 0 (0 = no limit), got ${c.maxInflightBytes}`);
  }
  if (c.heartbeatTicks >= c.electionTicks) {
    throw new InvalidArgumentError(`Raft config heartbeatTicks (${c.heartbeatTicks}) must be below electionTicks (${c.electionTicks})`);
  }
}

/** Fields and role transitions of the core. */
export abstract class RaftState {
  /** This member's id. */
  readonly id: NodeId;
  protected readonly cfg: RaftConfig;
  protected readonly log: RaftLog;
  protected readonly configs: ConfigHistory;
  protected readonly prng: Prng;

  /** Current term (Figure 2). Invariant: never decreases. */
  protected term: number;
  /** Candidate voted for in `term`. Invariant: set at most once per term (reset only with a new term). */
  protected votedFor: NodeId | null;
  protected role: Role = "follower";
  /** The leader of `term` as far as known. */
  protected leaderId: NodeId | null = null;

  /** Ticks since the last election timeout reset (followers: since the leader was heard from). */
  protected electionElapsed = 0;
  protected heartbeatElapsed = 0;
  /** In [electionTicks, 2 * electionTicks), drawn anew at each reset (§5.2). */
  protected randomizedElectionTimeout = 0;
  /** Ticks since creation (catch-up rounds are timed with it). */
  protected tickCount = 0;

  /** Leader: replication progress of every member (itself included) and of members leaving by an uncommitted config. */
  protected readonly prs = new Map<NodeId, Progress>();
  /** (Pre)candidate: votes received in this election. */
  protected readonly votes = new Map<NodeId, boolean>();
  /** Leader: members whose removal committed, still replicated to, with the tick count it committed at. */
  protected readonly leaving = new Map<NodeId, number>();
  /** Leader: ReadIndex requests. */
  protected readonly readOnly = new ReadOnly();
  /** Leader: target of a leadership transfer in progress (§3.10). */
  protected transferee: NodeId | null = null;
  /** Leader: index of the last config entry it appended (or its last index at election). */
  protected pendingConfigIndex = 0;
  /** Leader: learner being caught up. */
  protected catchUp: CatchUp | null = null;

  /** Output collected for the next Ready. */
  protected msgs: Message[] = [];
  protected persistedMsgs: Message[] = [];
  protected readStates: ReadState[] = [];
  protected events: RaftEvent[] = [];
  /** The configuration in force changed since the last Ready. */
  protected configChanged = false;
  /** Hard state last handed out in a Ready (or loaded). */
  protected prevHardState: HardState;
  /** Hard state the driver reported durable. */
  protected durableHardState: HardState;
  /** Readys handed out and not yet advanced, oldest first. */
  protected readonly outstanding: Ready[] = [];
  /** Role, term and leader last reported in a "role" event. */
  protected reportedRole: { role: Role; term: number; leaderId: NodeId | null };
  /** Some configuration in force ever included this member (to recognise its removal). */
  protected wasMember = false;
  /** The "removed" event was emitted for the current removal. */
  protected removedEmitted = false;

  constructor(init: RaftInit) {
    checkConfig(init.config);
    this.cfg = init.config;
    this.id = init.config.id;
    this.prng = new Prng(init.config.randomSeed, init.config.id);
    const snap = init.snapshot;
    const reader = init.log;
    const last = reader.lastIndex();
    assert(reader.firstIndex() === snap.index + 1, "init: log starts right after the snapshot", `firstIndex ${reader.firstIndex()}, snapshot ${snap.index}`);
    const lastTerm = last === 0 ? 0 : reader.term(last);
    const hs = init.hardState;
    // A term found in the log but missing from the hard state (an unsynced
    // hard state write) is taken up; the vote of that term is then unknown
    // and stays empty, which is safe since no grant of it was ever sent.
    this.term = Math.max(hs.term, lastTerm);
    this.votedFor = hs.term === this.term ? hs.votedFor : null;
    // A persisted state machine may be ahead of the durable commit index
    // (commitIndex is persisted lazily): what it applied was committed, and
    // committed entries are durable locally before they are handed out, so
    // the commit index is at least there. Clamping `applied` down to the
    // commit index instead would make this core name snapshots (MsgSnap at
    // its applied index) that the state machine can no longer produce.
    const applied = Math.min(Math.max(init.applied ?? snap.index, snap.index), last);
    const committed = Math.min(Math.max(hs.commitIndex, applied), last);
    this.log = new RaftLog(reader, committed, applied);

    this.configs = new ConfigHistory({ index: snap.index, members: snap.membership });
    for (const c of init.configs) {
      if (c.index > last) continue; // its entry never became durable
      if (c.index === snap.index) this.configs.reset(c);
      else if (c.index > snap.index) this.configs.push(c);
    }
    for (const c of this.configs.all()) if (findMember(c.members, this.id) !== undefined) this.wasMember = true;

    this.prevHardState = { term: this.term, votedFor: this.votedFor, commitIndex: committed };
    this.durableHardState = hs;
    if (hs.term !== this.term) this.prevHardState = hs; // makes the raised term go out in the first Ready
    this.reportedRole = { role: "follower", term: this.term, leaderId: null };
    this.resetTimers();
  }

  // ---- small helpers ----

  /** The configuration in force. */
  protected currentConfig(): ConfigState {
    return this.configs.current();
  }

  /** The member record of `id` in the configuration in force. */
  protected member(id: NodeId): Member | undefined {
    return findMember(this.configs.current().members, id);
  }

  /** A member of the configuration in force, or a member the leader still replicates to. */
  protected isKnown(id: NodeId): boolean {
    return this.member(id) !== undefined || this.prs.has(id);
  }

  /**
   * May campaign: a voter in the configuration in force, or one removed
   * only by a config not yet committed (dissertation §4.2.2: it may still
   * be needed to elect a leader until that entry commits, though its own
   * vote does not count), and not installing a snapshot.
   */
  protected promotable(): boolean {
    if (this.log.hasPendingSnapshot()) return false;
    if (this.member(this.id)?.voter === true) return true;
    return findMember(this.configs.configAt(this.log.committed).members, this.id)?.voter === true;
  }

  /** The error for a leader-only call on a non-leader. */
  protected notLeader(): NotLeaderError {
    const url = this.leaderId === null ? null : (this.member(this.leaderId)?.url ?? null);
    return new NotLeaderError(this.leaderId, url);
  }

  /** Sends a message that does not wait for this Ready's writes. */
  protected send(m: Message): void {
    assert(m.to !== this.id, "never send to self");
    this.msgs.push(m);
  }

  /** Sends a message only after this Ready's writes are durable (votes, AppendEntries acks). */
  protected sendPersisted(m: Message): void {
    assert(m.to !== this.id, "never send to self");
    this.persistedMsgs.push(m);
  }

  /** Reports an event to the driver. */
  protected emit(e: RaftEvent): void {
    this.events.push(e);
  }

  private setTerm(term: number): void {
    assert(term >= this.term, "term never decreases", `${this.term} -> ${term}`);
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
    }
  }

  /** Restarts the election and heartbeat timers, with a fresh random timeout. */
  protected resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.prng.intBetween(this.cfg.electionTicks, 2 * this.cfg.electionTicks);
  }

  /** Leaving the leader role (or a new term): drops leader-only state, failing what waits on it. */
  private dropLeaderState(reason: string): void {
    for (const requestId of this.readOnly.failAll()) this.emit({ type: "read-failed", requestId, reason });
    // A learner being caught up is not given up on: the next leader resumes its catch-up.
    this.catchUp = null;
    this.transferee = null;
    this.pendingConfigIndex = 0;
    this.prs.clear();
    this.leaving.clear();
  }

  // ---- role transitions ----

  /** Becomes a follower of `leaderId` (null if unknown) in `term` (>= the current term). */
  protected becomeFollower(term: number, leaderId: NodeId | null): void {
    if (this.role === "leader") this.dropLeaderState(`${this.id} is no longer the leader`);
    this.setTerm(term);
    this.role = "follower";
    this.leaderId = leaderId;
    this.votes.clear();
    this.resetTimers();
  }

  /**
   * Starts a PreVote (dissertation §9.6): asks whether an election at
   * term + 1 could be won, without changing the term or the vote. The
   * leader is forgotten so that this member's lease no longer blocks other
   * pre-candidates (etcd issue 9586).
   */
  protected becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader never becomes a pre-candidate");
    this.role = "precandidate";
    this.leaderId = null;
    this.votes.clear();
    this.resetTimers();
  }

  /** Starts an election (§5.2): new term, votes for itself (counted once durable). */
  protected becomeCandidate(): void {
    assert(this.role !== "leader", "a leader never becomes a candidate");
    this.setTerm(this.term + 1);
    this.votedFor = this.id;
    this.role = "candidate";
    this.leaderId = null;
    this.votes.clear();
    this.resetTimers();
  }

  /**
   * Won the election: resets every follower's progress and appends a no-op
   * of the new term (§8: it lets the leader learn and advance the commit
   * index, since entries of earlier terms never commit by counting, §5.4.2).
   */
  protected becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.role = "leader";
    this.leaderId = this.id;
    this.votes.clear();
    this.resetTimers();
    this.prs.clear();
    this.leaving.clear();
    this.syncProgress();
    // CheckQuorum counts only followers heard from during this leadership.
    for (const pr of this.prs.values()) pr.recentActive = false;
    const self = this.prs.get(this.id);
    if (self !== undefined) {
      self.maybeUpdate(this.log.stableIndex());
      self.becomeReplicate();
      self.recentActive = true;
    }
    // No membership change until everything before this term has committed.
    this.pendingConfigIndex = this.log.lastIndex();
    this.appendEntries([{ type: "noop", data: new Uint8Array(0) }]);
    this.bcastAppend();
    this.resumeCatchUp();
  }

  // ---- log appends and their configuration effects ----

  /**
   * Leader: appends new entries of the current term.
   * @returns the index of the first one
   */
  protected appendEntries(items: readonly { type: Entry["type"]; data: Uint8Array }[]): number {
    assert(this.role === "leader", "only the leader appends new entries");
    const first = this.log.lastIndex() + 1;
    const ents = new Array<Entry>(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as { type: Entry["type"]; data: Uint8Array };
      ents[i] = { index: first + i, term: this.term, type: it.type, data: it.data };
    }
    this.appendToLog(ents);
    const self = this.prs.get(this.id);
    if (self !== undefined) self.next = this.log.lastIndex() + 1;
    return first;
  }

  /**
   * Appends entries (replacing a conflicting suffix) and applies their
   * configuration effects at once: a config entry is in force as soon as it
   * is in the log (dissertation §4.1), and one truncated away stops being so.
   * Config entries must already be validated.
   */
  protected appendToLog(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = (ents[0] as Entry).index;
    let changed = false;
    if (first <= this.log.lastIndex()) changed = this.configs.truncateFrom(first);
    this.log.append(ents);
    for (const e of ents) {
      if (e.type !== "config") continue;
      this.configs.push({ index: e.index, members: decodeMembership(e.data) });
      changed = true;
    }
    if (changed) this.onConfigChanged();
  }

  /** The configuration in force changed (appended, truncated, or installed from a snapshot). */
  protected onConfigChanged(): void {
    this.configChanged = true;
    const cur = this.configs.current();
    if (findMember(cur.members, this.id) !== undefined) {
      this.wasMember = true;
      this.removedEmitted = false;
    }
    this.emit({ type: "membership", config: cur });
    if (this.role === "leader") this.syncProgress();
    if (this.role !== "leader" && !this.promotable() && this.role !== "follower") {
      // A (pre)candidate whose vote right was taken away stops campaigning.
      this.becomeFollower(this.term, null);
    }
  }

  /**
   * Leader: the last message to a member whose removal committed: the
   * entries from its match up to the commit index with the commit index,
   * so it can commit its removal even if it never acked them; a heartbeat
   * when those entries were compacted.
   */
  private sendLastWord(id: NodeId, pr: Progress): void {
    const committed = this.log.committed;
    const prev = Math.min(pr.match, committed);
    const prevTerm = this.log.maybeTerm(prev);
    if (prev < committed && prevTerm !== undefined && this.log.maybeTerm(prev + 1) !== undefined) {
      const entries = this.log.entries(prev + 1, Math.min(committed + 1, prev + 1 + MSG_APP_ENTRIES_MAX), this.cfg.maxMsgBytes);
      this.send({ type: "MsgApp", from: this.id, to: id, term: this.term, prevLogIndex: prev, prevLogTerm: prevTerm, entries, leaderCommit: committed });
      return;
    }
    this.send({ type: "MsgHeartbeat", from: this.id, to: id, term: this.term, leaderCommit: prev, readContext: 0 });
  }

  /**
   * Leader: keeps a progress for every member in force, for itself, and
   * for members removed by a not yet committed config (they still get the
   * log, so they learn the commit of their removal).
   */
  protected syncProgress(): void {
    const want = new Set<NodeId>([this.id]);
    for (const m of this.configs.current().members) want.add(m.id);
    for (const m of this.configs.configAt(this.log.committed).members) want.add(m.id);
    for (const [id, pr] of this.prs) {
      if (want.has(id)) {
        this.leaving.delete(id);
        continue;
      }
      if (this.role === "leader") {
        // A member whose removal committed keeps getting the log until it
        // holds the commit index (so it learns it was removed), for at most
        // an election timeout; then one last AppendEntries from its match
        // carries the commit (its acks may never arrive: once the removal
        // committed, the transport refuses the removed sender's messages).
        const since = this.leaving.get(id) ?? this.tickCount;
        this.leaving.set(id, since);
        if (pr.match < this.log.committed && this.tickCount - since < this.cfg.electionTicks) continue;
        this.sendLastWord(id, pr);
      }
      this.prs.delete(id);
      this.leaving.delete(id);
    }
    for (const id of want) {
      if (this.prs.has(id)) continue;
      const pr = new Progress(this.log.lastIndex() + 1, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
      // A member just added counts as active, or CheckQuorum could depose
      // the leader before the newcomer had a chance to answer.
      pr.recentActive = true;
      this.prs.set(id, pr);
    }
    if (this.transferee !== null && this.member(this.transferee)?.voter !== true) {
      this.abortTransfer(`${this.transferee} is no longer a voting member`);
    }
    if (this.catchUp !== null && this.member(this.catchUp.id) === undefined) {
      this.catchUp = null;
      this.resumeCatchUp();
    }
  }

  /** Leader: gives up a leadership transfer. */
  protected abortTransfer(reason: string): void {
    if (this.transferee === null) return;
    this.emit({ type: "transfer-aborted", to: this.transferee, reason });
    this.transferee = null;
  }

  /** The commit index moved forward: settles what waited on it. */
  protected onCommitAdvanced(): void {
    const committed = this.log.committed;
    if (this.role === "leader") {
      // Members removed by a config that just committed stop getting the log.
      const cur = this.configs.current().members;
      const expected = cur.length + (findMember(cur, this.id) === undefined ? 1 : 0);
      if (this.prs.size !== expected) this.syncProgress();
    }
    const inForce = this.configs.configAt(committed);
    if (this.wasMember && !this.removedEmitted && findMember(inForce.members, this.id) === undefined && inForce.index > 0) {
      this.removedEmitted = true;
      this.emit({ type: "removed" });
      if (this.role === "leader") this.stepDownAfterRemoval();
    }
  }

  /** Leader sends AppendEntries to every follower (defined by the replication layer). */
  protected abstract bcastAppend(): void;
  /** Leader: its own removal committed (defined by the membership layer). */
  protected abstract stepDownAfterRemoval(): void;
  /** Leader: catches up a learner no round runs for (defined by the membership layer). */
  protected abstract resumeCatchUp(): void;
}
