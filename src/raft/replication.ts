/**
 * Log replication, both sides (§5.3, §7; etcd's `sendAppend`,
 * `handleAppendEntries`, `handleSnapshot`, `maybeCommit`):
 *
 * Leader: AppendEntries paced by each follower's flow-control state (probe,
 * replicate with bounded pipelining, snapshot); fast backtracking on
 * rejection from the follower's (conflictTerm, conflictIndex) hint; the
 * commit index moves by counting durable replicas, and only for an entry of
 * the current term (§5.4.2, Figure 8).
 *
 * Follower: the consistency check, truncation of a conflicting suffix,
 * commit up to min(leaderCommit, last new entry), and acknowledgements that
 * leave only once the entries are durable.
 *
 * @module
 */
import { assert } from "./assert.ts";
import { MSG_APP_ENTRIES_MAX } from "./limits.ts";
import { decodeMembership } from "./membership-codec.ts";
import { committedIndex } from "./quorum.ts";
import { RaftState } from "./raft-state.ts";
import type { Progress } from "./progress.ts";
import type { Entry, Member, MsgApp, MsgAppResp, MsgHeartbeat, MsgHeartbeatResp, MsgSnap, NodeId } from "./types.ts";

/** True when `v` is a safe, non-negative integer (indexes and terms from peers). */
export function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Validates the shape of a member list from a peer. */
function isMemberList(v: unknown): v is readonly Member[] {
  if (!Array.isArray(v)) return false;
  const seen = new Set<string>();
  for (const m of v as unknown[]) {
    if (typeof m !== "object" || m === null) return false;
    const r = m as Record<string, unknown>;
    if (typeof r["id"] !== "string" || r["id"] === "" || typeof r["url"] !== "string" || typeof r["voter"] !== "boolean") return false;
    if (seen.has(r["id"])) return false;
    seen.add(r["id"]);
  }
  return true;
}

/** Replication on top of the core state. */
export abstract class RaftReplication extends RaftState {
  // ---- leader side ----

  /** Sends AppendEntries to `to` if flow control allows (an empty one to probe or carry the commit index). */
  protected sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends one AppendEntries (or a snapshot) to `to` unless flow control
   * forbids it or (`sendIfEmpty` false) there is nothing new.
   * @returns true when a message went out
   */
  protected maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.maybeTerm(prevLogIndex);
    // The entries it needs were compacted: only a snapshot can help (§7).
    if (prevLogTerm === undefined) return this.maybeSendSnapshot(to, pr);
    const last = this.log.lastIndex();
    const commit = this.log.committed;
    let entries: Entry[] = [];
    if (pr.next <= last) entries = this.log.entries(pr.next, Math.min(last + 1, pr.next + MSG_APP_ENTRIES_MAX), this.cfg.maxMsgBytes);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += e.data.length;
    this.send({ type: "MsgApp", from: this.id, to, term: this.term, prevLogIndex, prevLogTerm, entries, leaderCommit: commit });
    pr.sentEntries(prevLogIndex + entries.length, entries.length, bytes);
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(commit, prevLogIndex + entries.length));
    pr.check();
    return true;
  }

  /**
   * Sends a snapshot's metadata: the applied state (the driver snapshots
   * the state machine there) with the membership in force at it. Only to a
   * follower heard from recently, so an absent one does not cost a stream.
   */
  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const index = Math.max(this.log.applied, this.log.firstIndex() - 1);
    const term = this.log.maybeTerm(index);
    if (term === undefined) return false;
    const membership = this.configs.configAt(index).members;
    this.send({ type: "MsgSnap", from: this.id, to, term: this.term, snapshot: { index, term, membership } });
    pr.becomeSnapshot(index);
    return true;
  }

  /** Sends AppendEntries to every follower (new entries, or the new commit index). */
  protected bcastAppend(): void {
    const last = this.log.lastIndex();
    const commit = this.log.committed;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Nothing new and the commit index already went out: stay quiet.
      if (pr.state === "replicate" && pr.next > last && pr.sentCommit >= commit) continue;
      this.sendAppend(id);
    }
  }

  /** Sends new entries, where flow control allows, without empty messages. */
  protected bcastNewEntries(): void {
    for (const id of this.prs.keys()) {
      if (id !== this.id) this.maybeSendAppend(id, false);
    }
  }

  /**
   * Heartbeats carry min(commit, the follower's match): never past what the
   * follower is known to hold. `readContext` ties them to a ReadIndex round.
   */
  protected bcastHeartbeat(readContext: number): void {
    const commit = this.log.committed;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send({ type: "MsgHeartbeat", from: this.id, to: id, term: this.term, leaderCommit: Math.min(commit, pr.match), readContext });
    }
  }

  /**
   * Moves the commit index to what a majority of voters durably hold, if
   * that entry is of the current term (§5.4.2: entries of earlier terms
   * commit only indirectly). @returns true when it moved
   */
  protected maybeCommit(): boolean {
    const mci = committedIndex(this.configs.voters(), (id) => this.prs.get(id)?.match ?? 0);
    if (mci <= this.log.committed || this.log.maybeTerm(mci) !== this.term) return false;
    this.log.commitTo(mci);
    this.onCommitAdvanced();
    return true;
  }

  /** Leader: an AppendEntries reply (§5.3). */
  protected handleAppendResponse(m: MsgAppResp): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    if (!isIndex(m.matchIndex) || m.matchIndex > this.log.lastIndex()) return;
    pr.recentActive = true;
    if (!m.success) {
      if (!isIndex(m.conflictTerm) || !isIndex(m.conflictIndex)) return;
      // Fast backtracking: resume after the leader's last entry of the
      // follower's conflicting term, or at the follower's first entry of it.
      let hintNext = m.conflictIndex;
      if (m.conflictTerm > 0) {
        const i = this.log.lastIndexOfTerm(m.conflictTerm, m.matchIndex);
        if (i > 0) hintNext = i + 1;
      }
      if (pr.maybeDecrTo(m.matchIndex, Math.max(hintNext, 1))) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.matchIndex) && !(pr.match === m.matchIndex && pr.state === "probe")) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      // The follower installed a snapshot (or caught up otherwise): the log can serve it again.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.matchIndex);
    }
    pr.check();
    // A new commit index is not a message of its own: it rides on the next
    // AppendEntries or heartbeat (hashicorp/raft does the same). An empty
    // AppendEntries per commit doubles the traffic of every write and costs
    // each follower a Ready and an acknowledgement.
    this.maybeCommit();
    if (wasPaused) this.sendAppend(m.from);
    // Pipeline: fill the window.
    while (this.maybeSendAppend(m.from, false)) { /* keep sending */ }
    if (this.leaving.has(m.from)) this.syncProgress();
    this.onFollowerProgress(m.from);
  }

  /** Leader: a heartbeat reply. */
  protected handleHeartbeatResponse(m: MsgHeartbeatResp): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.state === "replicate" && pr.inflights.full()) {
      // Every message of a full window (or its reply) may have been lost:
      // an empty AppendEntries at next - 1 gets a reply that frees the
      // window, or a rejection that drops back to probing.
      const prevLogTerm = this.log.maybeTerm(pr.next - 1);
      if (prevLogTerm === undefined) {
        // Compacted meanwhile (the driver compacts while messages are in
        // flight): this follower can only be caught up with a snapshot now.
        pr.becomeProbe();
        this.sendAppend(m.from);
      } else {
        this.send({
          type: "MsgApp", from: this.id, to: m.from, term: this.term, prevLogIndex: pr.next - 1,
          prevLogTerm, entries: [], leaderCommit: Math.min(this.log.committed, pr.next - 1),
        });
      }
    } else if (pr.match < this.log.lastIndex() || pr.sentCommit < this.log.committed) {
      this.sendAppend(m.from);
    }
    if (isIndex(m.readContext) && m.readContext > 0) {
      for (const rs of this.readOnly.recvAck(m.readContext, m.from, this.configs.voters())) this.readStates.push(rs);
    }
  }

  /** A follower's match index moved (catch-up rounds, leadership transfer). */
  protected abstract onFollowerProgress(id: NodeId): void;

  // ---- follower side ----

  private appendResp(to: NodeId, success: boolean, matchIndex: number, conflictTerm: number, conflictIndex: number): void {
    this.sendPersisted({
      type: "MsgAppResp", from: this.id, to, term: this.term, success, matchIndex, conflictTerm, conflictIndex,
      lastLogIndex: this.log.lastIndex(),
    });
  }

  /** Checks that the entries of an AppendEntries are well formed (peer input is never trusted blindly). */
  private validEntries(m: MsgApp): boolean {
    if (!Array.isArray(m.entries) || m.entries.length > MSG_APP_ENTRIES_MAX) return false;
    let index = m.prevLogIndex;
    for (const e of m.entries) {
      index++;
      if (e.index !== index || !isIndex(e.term) || e.term < 1 || e.term > m.term || !(e.data instanceof Uint8Array)) return false;
      if (e.type === "config") {
        try {
          decodeMembership(e.data);
        } catch {
          return false;
        }
      } else if (e.type !== "normal" && e.type !== "noop") {
        return false;
      }
    }
    return Number.isSafeInteger(index);
  }

  /** Follower: AppendEntries (Figure 2's receiver implementation). */
  protected handleAppendEntries(m: MsgApp): void {
    if (!isIndex(m.prevLogIndex) || !isIndex(m.prevLogTerm) || !isIndex(m.leaderCommit) || !this.validEntries(m)) return;
    const committed = this.log.committed;
    if (m.prevLogIndex < committed) {
      // Everything up to the commit index is known to match the leader.
      this.appendResp(m.from, true, committed, 0, 0);
      return;
    }
    if (!this.log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const t = this.log.maybeTerm(m.prevLogIndex);
      if (t === undefined) {
        this.appendResp(m.from, false, m.prevLogIndex, 0, this.log.lastIndex() + 1);
      } else {
        const first = Math.max(this.log.firstIndexOfTerm(t, m.prevLogIndex), committed + 1);
        this.appendResp(m.from, false, m.prevLogIndex, t, first);
      }
      return;
    }
    const lastNew = m.prevLogIndex + m.entries.length;
    const conflict = this.log.findConflict(m.entries);
    if (conflict !== 0) {
      assert(conflict > committed, "a leader never overwrites committed entries", `conflict at ${conflict}, committed ${committed}`);
      this.appendToLog(m.entries.slice(conflict - m.prevLogIndex - 1));
    }
    // Figure 2: commit up to min(leaderCommit, index of last new entry):
    // entries past it may be a stale tail this leader has not vouched for.
    const c = Math.min(m.leaderCommit, lastNew);
    if (c > this.log.committed) {
      this.log.commitTo(c);
      this.onCommitAdvanced();
    }
    this.appendResp(m.from, true, lastNew, 0, 0);
  }

  /** Follower: a heartbeat; its commit index is at most what this follower holds. */
  protected handleHeartbeat(m: MsgHeartbeat): void {
    if (!isIndex(m.leaderCommit)) return;
    const c = Math.min(m.leaderCommit, this.log.lastIndex());
    if (c > this.log.committed) {
      this.log.commitTo(c);
      this.onCommitAdvanced();
    }
    this.send({ type: "MsgHeartbeatResp", from: this.id, to: m.from, term: this.term, readContext: isIndex(m.readContext) ? m.readContext : 0 });
  }

  /**
   * Follower: an installed snapshot (§7). One past the commit index
   * replaces the whole log (the Ready carries it; the driver resets its
   * log), unless the log holds the snapshot's last entry: then, as §7 says,
   * the entries following it are retained and only the commit index moves.
   * Either way the reply acknowledges what is now known to match.
   */
  protected handleSnapshot(m: MsgSnap): void {
    const s = m.snapshot;
    if (typeof s !== "object" || s === null || !isIndex(s.index) || !isIndex(s.term) || s.term > m.term || !isMemberList(s.membership)) return;
    if (s.index <= this.log.committed) {
      this.appendResp(m.from, true, this.log.committed, 0, 0);
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // The log already holds the snapshot's last entry, hence (Log Matching)
      // everything up to it: fast-forward the commit index and keep the log.
      // Resetting it would drop entries past s.index that this member may
      // have acknowledged, which the leader counted toward commitment.
      this.log.commitTo(s.index);
      this.onCommitAdvanced();
      this.appendResp(m.from, true, s.index, 0, 0);
      return;
    }
    this.log.restore({ index: s.index, term: s.term, membership: s.membership });
    this.configs.reset({ index: s.index, members: s.membership });
    this.onConfigChanged();
    this.onCommitAdvanced();
    this.appendResp(m.from, true, s.index, 0, 0);
  }
}
