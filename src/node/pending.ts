/**
 * Everything a driver's callers wait on, in one table: proposals appended
 * to the log and waiting for their entry to be applied, read barriers
 * waiting for a leadership confirmation and then for the state machine to
 * catch up, and calls waiting for a condition (a promotion, a removal, a new
 * leader). Each settles exactly once: resolved, rejected as certainly not
 * applied, or rejected with an unknown outcome, and never later than its
 * timeout.
 *
 * Proposals are keyed by log index and carry the term they were appended
 * in: a leader re-elected later can append a new proposal at an index whose
 * old proposal was never applied (its entry was replaced); the old one is
 * then settled as not applied instead of being overwritten and left to hang.
 *
 * @module
 */
import { NotLeaderError, ProposalDroppedError, TimeoutError } from "../errors.ts";
import { assert } from "../raft/assert.ts";
import type { Entry, RaftEvent } from "../raft/types.ts";
import type { NodeCounters } from "./metrics.ts";

/** A call waiting for its entry to be applied. */
export interface Proposal {
  /** The term of the entry it was appended as. */
  readonly term: number;
  readonly startMs: number;
  /**
   * Set when the proposal was made on another thread (worker mode): the id
   * of the call there, which settles it itself when it applies the entry.
   */
  readonly tag: number | null;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
}

/** A call waiting for a condition on the node's state. */
interface _Waiter {
  readonly check: () => boolean;
  /** An event that makes the wait fail, as an error; null otherwise. */
  readonly failOn: (ev: RaftEvent) => Error | null;
  readonly deadlineMs: number;
  readonly what: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

interface _Settle {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** The driver's table of waiting calls (see the module comment). */
export class PendingTable {
  readonly #counters: NodeCounters;
  /** Appended proposals by index. Invariant: insertion order is index order within one leadership. */
  readonly #proposals = new Map<number, Proposal>();
  /** Read barriers asked since the last turn: they share one ReadIndex round. */
  #readBatch: _Settle[] = [];
  #readRequestId = 0;
  /** ReadIndex rounds in flight, by request id. */
  readonly #readsInFlight = new Map<number, { readonly startMs: number; readonly waiters: readonly _Settle[] }>();
  /** Reads (and replays) waiting for the state machine to apply `index`. */
  #appliedWaiters: { readonly index: number; readonly settle: _Settle }[] = [];
  readonly #waiters = new Set<_Waiter>();

  constructor(counters: NodeCounters) {
    this.#counters = counters;
  }

  /** Proposals appended and not settled. */
  get proposalCount(): number {
    return this.#proposals.size;
  }

  // ---- proposals ----

  /** Records a proposal appended at `index`; an older, unsettled one there was never applied. */
  addProposal(index: number, p: Proposal): void {
    const old = this.#proposals.get(index);
    if (old !== undefined) {
      assert(old.term < p.term, "a term appends an index once");
      this.#proposals.delete(index);
      this.#fail(old, new ProposalDroppedError(`The entry at index ${index} was replaced by a new leader's`, "not-applied"));
    }
    this.#proposals.set(index, p);
  }

  /**
   * Takes the proposals waiting on `entries` (about to be applied): one slot
   * per entry, null where none waits. A proposal whose index now holds
   * another term's entry, or an internal entry, was replaced: it is
   * rejected as not applied.
   */
  takeForEntries(entries: readonly Entry[]): (Proposal | null)[] {
    const out = new Array<Proposal | null>(entries.length).fill(null);
    if (this.#proposals.size === 0) return out;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const p = this.#proposals.get(e.index);
      if (p === undefined) continue;
      this.#proposals.delete(e.index);
      if (p.term !== e.term || e.type !== "normal") {
        this.#fail(p, new ProposalDroppedError(`The entry at index ${e.index} was replaced by a new leader`, "not-applied"));
        continue;
      }
      out[i] = p;
    }
    return out;
  }

  /** Settles a proposal taken by `takeForEntries` with what `apply` returned or threw. */
  settle(p: Proposal, nowMs: number, result: unknown, failed: Error | null): void {
    this.#counters.commitLatency.observe(nowMs - p.startMs);
    if (failed !== null) p.reject(failed);
    else p.resolve(result);
  }

  /** Proposals at or below `index` were folded into a snapshot from the leader: whether theirs was applied cannot be told. */
  dropUpTo(index: number): void {
    for (const [i, p] of this.#proposals) {
      if (i > index) continue;
      this.#proposals.delete(i);
      this.#fail(p, new ProposalDroppedError(`Proposal at index ${i} was folded into a snapshot from the leader`, "unknown"));
    }
  }

  // ---- read barriers ----

  /** Queues a read barrier for the next ReadIndex round; returns whether it opened a new batch. */
  addRead(settle: _Settle): boolean {
    this.#readBatch.push(settle);
    return this.#readBatch.length === 1;
  }

  /** Takes the queued reads as one round: its request id, or null if none queued. */
  takeReadBatch(nowMs: number): number | null {
    if (this.#readBatch.length === 0) return null;
    const id = ++this.#readRequestId;
    this.#readsInFlight.set(id, { startMs: nowMs, waiters: this.#readBatch });
    this.#readBatch = [];
    return id;
  }

  /** The round `requestId` could not start: fail its reads. */
  failReadRound(requestId: number, err: Error): void {
    const r = this.#readsInFlight.get(requestId);
    if (r === undefined) return;
    this.#readsInFlight.delete(requestId);
    for (const w of r.waiters) w.reject(err);
  }

  /** A ReadIndex round was confirmed at `index`: its reads wait for the state machine to apply it. */
  confirmRead(requestId: number, index: number): void {
    const r = this.#readsInFlight.get(requestId);
    if (r === undefined) return;
    this.#readsInFlight.delete(requestId);
    for (const settle of r.waiters) this.#appliedWaiters.push({ index, settle });
  }

  /** Leadership was lost: rounds in flight will never be confirmed here. */
  failReadsInFlight(err: () => Error): void {
    for (const id of [...this.#readsInFlight.keys()]) this.failReadRound(id, err());
  }

  /** Waits until the state machine has applied `index`. */
  waitApplied(index: number, settle: _Settle): void {
    this.#appliedWaiters.push({ index, settle });
  }

  /** The state machine has applied everything up to `applied`. */
  onApplied(applied: number): void {
    if (this.#appliedWaiters.length === 0) return;
    const still: { index: number; settle: _Settle }[] = [];
    for (const w of this.#appliedWaiters) {
      if (w.index <= applied) w.settle.resolve();
      else still.push(w);
    }
    this.#appliedWaiters = still;
  }

  // ---- condition waiters ----

  /** Resolves once `check()` holds; rejects on an event `failOn` names, or after `timeoutMs`. */
  waitFor(what: string, check: () => boolean, failOn: (ev: RaftEvent) => Error | null, nowMs: number, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.add({ check, failOn, deadlineMs: nowMs + timeoutMs, what, resolve, reject });
    });
  }

  /** Lets every condition waiter see `ev`. */
  onEvent(ev: RaftEvent): void {
    for (const w of [...this.#waiters]) {
      const e = w.failOn(ev);
      if (e !== null) {
        this.#waiters.delete(w);
        w.reject(e);
      }
    }
  }

  /** Re-checks the waiters' conditions. */
  checkWaiters(nowMs: number): void {
    if (this.#waiters.size === 0) return;
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        this.#waiters.delete(w);
        w.resolve();
      } else if (nowMs > w.deadlineMs) {
        this.#waiters.delete(w);
        w.reject(new TimeoutError(`Timed out waiting for ${w.what}`));
      }
    }
  }

  // ---- time and the end ----

  /**
   * Settles what waited too long: a proposal not applied within
   * `timeoutMs` has an unknown outcome (its entry may still commit), a read
   * round not confirmed is a timeout.
   */
  expire(nowMs: number, timeoutMs: number): void {
    for (const [index, p] of this.#proposals) {
      if (nowMs - p.startMs < timeoutMs) continue;
      this.#proposals.delete(index);
      this.#fail(p, new ProposalDroppedError(`Proposal at index ${index} was not applied within ${timeoutMs} ms`, "unknown"));
    }
    for (const [id, r] of this.#readsInFlight) {
      if (nowMs - r.startMs < timeoutMs) continue;
      this.failReadRound(id, new TimeoutError(`Read barrier not confirmed within ${timeoutMs} ms (is a quorum reachable?)`));
    }
    this.checkWaiters(nowMs);
  }

  /**
   * Fails everything (the node stops). Appended proposals may still commit
   * on the other members: their outcome is unknown.
   */
  failAll(err: Error): void {
    for (const [index, p] of this.#proposals) this.#fail(p, new ProposalDroppedError(`${err.message} before the proposal at index ${index} was applied`, "unknown"));
    this.#proposals.clear();
    for (const w of this.#readBatch) w.reject(err);
    this.#readBatch = [];
    for (const r of this.#readsInFlight.values()) for (const w of r.waiters) w.reject(err);
    this.#readsInFlight.clear();
    for (const w of this.#appliedWaiters) w.settle.reject(err);
    this.#appliedWaiters = [];
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
  }

  #fail(p: Proposal, err: Error): void {
    this.#counters.proposalsFailed++;
    p.reject(err);
  }
}

/** The error a read or write gets on a member that is not the leader. */
export type NotLeaderFactory = () => NotLeaderError;
