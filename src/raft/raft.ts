/**
 * The pure, deterministic Raft core (etcd-io/raft's RawNode design): no
 * I/O, no timers, no randomness but a seeded PRNG. The driver feeds it
 * ticks, peer messages and client requests, and drains its output through
 * `ready()` / `advance()` (see `Ready` in types.ts for what must be durable
 * before what is sent).
 *
 * The class is built in layers, one concern per file (raft-state.ts,
 * replication.ts, raft-step.ts, membership-change.ts); this file holds the
 * client-facing API: proposals, ReadIndex, flow-control reports, the
 * Ready/advance cycle and status.
 *
 * @example
 * ```ts
 * const log = new MemoryLog();
 * const raft = new Raft({ config, log, hardState, snapshot, configs: [] });
 * raft.tick();
 * if (raft.hasReady()) {
 *   const rd = raft.ready();
 *   // persist rd.snapshot / rd.entries / rd.hardState, send rd.messages,
 *   // then rd.persistedMessages, apply rd.committedEntries...
 *   raft.advance(rd);
 * }
 * ```
 *
 * @module
 */
import { InvalidArgumentError, ProposalDroppedError } from "../errors.ts";
import { assert } from "./assert.ts";
import { hasQuorum } from "./quorum.ts";
import { RaftMembership } from "./membership-change.ts";
import type { ConfigState, Entry, HardState, RaftStatus, ProgressStatus, Ready, SnapshotMeta } from "./types.ts";

export { decodeMembership, encodeMembership } from "./membership-codec.ts";
export { MemoryLog } from "./memory-log.ts";

/** Committed entries handed out per Ready, at most (bytes of data; at least one entry). */
const COMMITTED_BYTES_MAX = 64 * 1024 * 1024;

/** The Raft core of one member. See the module doc. */
export class Raft extends RaftMembership {
  /**
   * Appends a normal entry with `data`.
   * @returns the index assigned to it
   * @throws NotLeaderError on a non-leader (with the leader's id and URL when known)
   * @throws ProposalDroppedError ("not-applied") during a leadership transfer
   */
  propose(data: Uint8Array): number {
    this.checkProposalAllowed();
    const index = this.appendEntries([{ type: "normal", data }]);
    this.bcastNewEntries();
    return index;
  }

  /**
   * Appends normal entries in one unstable append (one Ready, one write).
   * @returns the index of the first one
   * @throws as `propose`; InvalidArgumentError for an empty batch
   */
  proposeBatch(data: readonly Uint8Array[]): number {
    if (data.length === 0) throw new InvalidArgumentError("proposeBatch needs at least one entry");
    this.checkProposalAllowed();
    const items = new Array<{ type: "normal"; data: Uint8Array }>(data.length);
    for (let i = 0; i < data.length; i++) items[i] = { type: "normal", data: data[i] as Uint8Array };
    const index = this.appendEntries(items);
    this.bcastNewEntries();
    return index;
  }

  /**
   * Starts an election now, as if the election timeout had fired (PreVote
   * first when enabled). Does nothing on a leader or a member that may not
   * vote. Useful to bootstrap a cluster quickly and in tests.
   */
  campaign(): void {
    if (this.role === "leader") return;
    this.startCampaign(this.cfg.preVote ? "pre" : "election");
  }

  private checkProposalAllowed(): void {
    if (this.role !== "leader") throw this.notLeader();
    if (this.transferee !== null) {
      throw new ProposalDroppedError(`Leadership is being transferred from ${this.id} to ${this.transferee}; retry on the new leader`, "not-applied");
    }
  }

  /**
   * Starts a linearizable read (§6.4): once an entry of this term is
   * committed, the commit index is recorded and leadership confirmed by one
   * heartbeat round shared by all reads queued meanwhile. The result is a
   * `ReadState` in a Ready, or a "read-failed" event if leadership is lost.
   * @throws NotLeaderError on a non-leader
   */
  readIndex(requestId: number): void {
    if (this.role !== "leader") throw this.notLeader();
    this.readOnly.enqueue(requestId);
  }

  /** Starts a read round for the queued reads, if this leader has committed in its term. */
  private maybeStartReadRound(): void {
    if (this.role !== "leader" || !this.readOnly.hasPending()) return;
    const commit = this.log.committed;
    if (this.log.maybeTerm(commit) !== this.term) return;
    if (hasQuorum(this.configs.voters(), new Set([this.id]))) {
      // A single voter is a majority by itself: nothing to confirm.
      for (const rs of this.readOnly.confirmPendingNow(commit)) this.readStates.push(rs);
      return;
    }
    this.bcastHeartbeat(this.readOnly.startRound(commit, this.id));
  }

  private readRoundStartable(): boolean {
    return this.role === "leader" && this.readOnly.hasPending() && this.log.maybeTerm(this.log.committed) === this.term;
  }

  /** A send to `id` failed: stop pipelining to it and probe again. */
  reportUnreachable(id: string): void {
    if (this.role !== "leader") return;
    const pr = this.prs.get(id);
    if (pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  /**
   * The snapshot sent to `id` was installed (`ok`) or failed. Either way the
   * follower is probed again; on success from past the snapshot.
   */
  reportSnapshot(id: string, ok: boolean): void {
    if (this.role !== "leader") return;
    const pr = this.prs.get(id);
    if (pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's reply (or the next heartbeat) before sending more.
    pr.msgAppFlowPaused = true;
  }

  /**
   * Term of the entry at `index` in this core's log (entries not yet
   * durable included), or undefined when it is compacted away or beyond the
   * last index. For checks and diagnostics.
   */
  termAt(index: number): number | undefined {
    return this.log.maybeTerm(index);
  }

  /**
   * The snapshot this core accepted from a leader and has not seen durable
   * yet (in a Ready or waiting for one), or null: the driver keeps the
   * received data of exactly this one for the Ready that installs it.
   */
  acceptedSnapshot(): SnapshotMeta | null {
    return this.log.unstableSnapshot();
  }

  /** The membership in force at log position `index` (for snapshot metadata). */
  configAt(index: number): ConfigState {
    return this.configs.configAt(index);
  }

  /**
   * The lowest index the driver must keep: entries from it on are still
   * needed by followers being replicated to, or after a snapshot in flight.
   * The driver compacts only below it (and never past the applied index).
   */
  compactionFloor(): number {
    let floor = this.log.applied + 1;
    if (this.role !== "leader") return floor;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      if (pr.state === "replicate") floor = Math.min(floor, pr.match + 1);
      else if (pr.state === "snapshot") floor = Math.min(floor, pr.pendingSnapshot + 1);
    }
    return Math.max(floor, this.log.firstIndex());
  }

  /** A picture of this core's state. */
  status(): RaftStatus {
    const progress: ProgressStatus[] = [];
    if (this.role === "leader") {
      for (const [id, pr] of this.prs) {
        progress.push({ id, matchIndex: pr.match, nextIndex: pr.next, state: pr.state, recentActive: pr.recentActive, inflight: pr.inflights.count });
      }
    }
    const me = this.member(this.id);
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leaderId: this.leaderId,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      config: this.currentConfig(),
      isLearner: me !== undefined && !me.voter,
      progress,
      transferee: this.transferee,
      pendingConfigIndex: this.pendingConfigIndex,
    };
  }

  // ---- Ready / advance ----

  private hardStateChanged(): boolean {
    const p = this.prevHardState;
    return p.term !== this.term || p.votedFor !== this.votedFor || p.commitIndex !== this.log.committed;
  }

  /** Emits a "role" event when role, term or leader changed since the last one. */
  private noteRole(): void {
    const r = this.reportedRole;
    if (r.role === this.role && r.term === this.term && r.leaderId === this.leaderId) return;
    this.reportedRole = { role: this.role, term: this.term, leaderId: this.leaderId };
    this.emit({ type: "role", role: this.role, term: this.term, leaderId: this.leaderId });
  }

  /** True when `ready()` has something for the driver. */
  hasReady(): boolean {
    const r = this.reportedRole;
    return this.msgs.length > 0 || this.persistedMsgs.length > 0 || this.events.length > 0 || this.readStates.length > 0 ||
      this.configChanged || this.hardStateChanged() || this.log.hasUnstableEntries() || this.log.hasPendingSnapshot() ||
      this.log.hasCommittedEntries() || this.readRoundStartable() ||
      r.role !== this.role || r.term !== this.term || r.leaderId !== this.leaderId;
  }

  /**
   * Hands out everything pending. Several Readys may be outstanding; they
   * must be advanced in the order they were handed out.
   */
  ready(): Ready {
    this.maybeStartReadRound();
    this.noteRole();
    let hardState: HardState | null = null;
    if (this.hardStateChanged()) {
      hardState = { term: this.term, votedFor: this.votedFor, commitIndex: this.log.committed };
      this.prevHardState = hardState;
    }
    const snapshot = this.log.takeSnapshot();
    if (snapshot !== null) this.log.applyingSnapshot(snapshot.index);
    const entries = this.log.takeUnstableEntries();
    const config = this.configChanged ? this.currentConfig() : null;
    this.configChanged = false;
    const committedEntries = this.log.takeCommittedEntries(COMMITTED_BYTES_MAX);
    const rd: Ready = {
      hardState,
      snapshot,
      entries,
      config,
      messages: this.msgs,
      persistedMessages: this.persistedMsgs,
      committedEntries,
      readStates: this.readStates,
      events: this.events,
    };
    this.msgs = [];
    this.persistedMsgs = [];
    this.readStates = [];
    this.events = [];
    this.outstanding.push(rd);
    this.log.check();
    return rd;
  }

  /**
   * The Ready's writes are durable and its committed entries applied:
   * its entries become stable (a leader counts itself toward commitment
   * only now), and a candidate's self-vote counts.
   * @throws Error when Readys are advanced out of order
   */
  advance(rd: Ready): void {
    assert(this.outstanding[0] === rd, "Readys are advanced in the order they were handed out");
    this.outstanding.shift();
    if (rd.hardState !== null) this.durableHardState = rd.hardState;
    if (rd.snapshot !== null) {
      this.log.stableSnapTo(rd.snapshot.index);
      this.log.appliedTo(rd.snapshot.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1] as Entry;
      this.log.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      this.log.appliedTo((rd.committedEntries[rd.committedEntries.length - 1] as Entry).index);
    }
    this.configs.prune(this.log.firstIndex() - 1);
    if (this.role === "leader") {
      const self = this.prs.get(this.id);
      // The new commit index rides on the next AppendEntries or heartbeat (see handleAppendResponse).
      if (self !== undefined && self.maybeUpdate(this.log.stableIndex())) this.maybeCommit();
    }
    this.maybeCountSelfVote();
    this.log.check();
  }
}
