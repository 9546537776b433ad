/**
 * The leader's view of one follower (etcd's tracker/progress.go), with the
 * three flow-control states:
 *  - probe: the leader does not know where the follower's log matches; it
 *    sends one AppendEntries and waits for the reply before the next;
 *  - replicate: the match point is known; AppendEntries are pipelined,
 *    bounded by `Inflights`;
 *  - snapshot: the follower needs entries the leader has compacted; a
 *    snapshot is on its way and nothing else is sent until it is done.
 *
 * @module
 */
import { assert } from "./assert.ts";
import { Inflights } from "./inflights.ts";
import type { ProgressState } from "./types.ts";

/** Replication progress of one follower. */
export class Progress {
  /** Highest index known to be durably replicated on the follower. Invariant: match < next. */
  match = 0;
  /** Next index to send. Invariant: match < next. */
  next: number;
  /** Flow-control state. */
  state: ProgressState = "probe";
  /** Probe state: a message was sent and no reply arrived yet; send no more. */
  msgAppFlowPaused = false;
  /** Snapshot state: index of the snapshot in flight (0 otherwise). */
  pendingSnapshot = 0;
  /** Heard from within the current election timeout (CheckQuorum, §6.2). */
  recentActive = false;
  /** Highest commit index sent to it, to avoid redundant empty AppendEntries. */
  sentCommit = 0;
  /** Messages in flight in replicate state. */
  readonly inflights: Inflights;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  /** Asserts the field invariants. */
  check(): void {
    assert(this.match < this.next, "progress: match < next", `match ${this.match}, next ${this.next}`);
  }

  /** True while nothing more may be sent. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.msgAppFlowPaused;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** Back to probing from match + 1 (or past the snapshot that was sent). */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = "probe";
    this.pendingSnapshot = 0;
    this.msgAppFlowPaused = false;
    this.inflights.reset();
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  /** The match point is known: pipeline from match + 1. */
  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.msgAppFlowPaused = false;
    this.inflights.reset();
  }

  /** A snapshot at `index` is on its way. */
  becomeSnapshot(index: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = index;
    this.msgAppFlowPaused = false;
    this.inflights.reset();
  }

  /**
   * Records a successful acknowledgement up to `index`.
   * @returns true when the match index moved forward
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * Records an AppendEntries carrying entries up to `lastIndex` (`bytes` of
   * payload); `lastIndex` = next - 1 for an empty one.
   */
  sentEntries(lastIndex: number, entryCount: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      this.msgAppFlowPaused = true;
    }
  }

  /**
   * Handles a rejection of the AppendEntries whose prevLogIndex was
   * `rejected`; `hintNext` is where the follower's hint says to resume.
   * @returns false when the rejection is stale (ignored)
   */
  maybeDecrTo(rejected: number, hintNext: number): boolean {
    if (this.state === "replicate") {
      // Stale: the rejected probe point is already known to match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe (or snapshot): only the reply to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hintNext), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }
}
