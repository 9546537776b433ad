/**
 * Proposals on their way into the log: buffered until the next turn of the
 * Ready loop (so a burst becomes one append), or, while no leader is known
 * (an election), held until one is: proposed here if this member won,
 * redirected (NotLeaderError) if another did, refused as not applied if
 * none is elected within the propose timeout. hashicorp/raft's `Apply`
 * takes a timeout the same way; failing at once while a leader is being
 * elected only moves the retry loop into every caller.
 *
 * @module
 */
import { NotLeaderError, ProposalDroppedError } from "../errors.ts";
import type { Raft } from "../raft/raft.ts";
import type { NodeCounters } from "./metrics.ts";
import type { PendingTable } from "./pending.ts";

/** A proposal not yet in the log. */
interface _Buffered {
  readonly data: Uint8Array;
  readonly tag: number | null;
  readonly startMs: number;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
}

/** The proposals not yet in the log (see the module comment). */
export class ProposalIntake {
  readonly #counters: NodeCounters;
  /** For the next turn. */
  #buffer: _Buffered[] = [];
  /** Arrived while no leader was known. */
  #awaitingLeader: _Buffered[] = [];

  constructor(counters: NodeCounters) {
    this.#counters = counters;
  }

  /** Proposals waiting for a leader to be known. */
  get awaitingLeader(): number {
    return this.#awaitingLeader.length;
  }

  /** Queues a proposal; returns whether it opened a new batch (the loop must be kicked). */
  add(data: Uint8Array, tag: number | null, startMs: number, resolve: (v: unknown) => void, reject: (e: Error) => void): boolean {
    this.#buffer.push({ data, tag, startMs, resolve, reject });
    this.#counters.proposals++;
    return this.#buffer.length === 1;
  }

  /**
   * Hands the buffered proposals to `raft` (one append) and records them in
   * `pending`, or keeps them while no leader is known; `notLeader` is the
   * error for a member that knows another leader.
   */
  flush(raft: Raft, pending: PendingTable, notLeader: () => NotLeaderError, stage?: (name: string, index: number) => void): void {
    if (this.#awaitingLeader.length > 0 && raft.status().leaderId !== null) {
      // A leader is known again: the waiting proposals go in (here) or are redirected (there).
      this.#buffer = this.#awaitingLeader.concat(this.#buffer);
      this.#awaitingLeader = [];
    }
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    const st = raft.status();
    if (st.role !== "leader" && st.leaderId === null) {
      for (const p of batch) this.#awaitingLeader.push(p);
      return;
    }
    try {
      const first = raft.proposeBatch(batch.map((p) => p.data));
      const term = raft.status().term;
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!;
        pending.addProposal(first + i, { term, startMs: p.startMs, tag: p.tag, resolve: p.resolve, reject: p.reject });
      }
      if (stage !== undefined) for (let i = 0; i < batch.length; i++) stage("propose", first + i);
    } catch (err) {
      const e = err instanceof NotLeaderError ? notLeader() : err as Error;
      for (const p of batch) p.reject(e);
      this.#counters.proposalsFailed += batch.length;
    }
  }

  /** Refuses, as not applied, proposals that waited for a leader longer than `timeoutMs`. */
  expire(nowMs: number, timeoutMs: number): void {
    if (this.#awaitingLeader.length === 0) return;
    const still: _Buffered[] = [];
    for (const p of this.#awaitingLeader) {
      if (nowMs - p.startMs < timeoutMs) {
        still.push(p);
        continue;
      }
      this.#counters.proposalsFailed++;
      p.reject(new ProposalDroppedError(`No leader was elected within ${timeoutMs} ms; the proposal was not appended`, "not-applied"));
    }
    this.#awaitingLeader = still;
  }

  /** Fails everything not yet in the log (the node stops). */
  failAll(err: Error): void {
    for (const p of this.#buffer) p.reject(err);
    for (const p of this.#awaitingLeader) p.reject(err);
    this.#buffer = [];
    this.#awaitingLeader = [];
  }
}
