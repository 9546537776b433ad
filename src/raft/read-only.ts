/**
 * ReadIndex bookkeeping (dissertation §6.4). A read is served at the commit
 * index the leader had when it last confirmed it was still leader: it
 * records the commit index, sends one heartbeat round, and once a majority
 * answered that round (or a later one) the read may be served once that
 * index is applied. Reads arriving close together share one round
 * (batching): they queue in `pending` until the next round starts.
 *
 * @module
 */
import { hasQuorum } from "./quorum.ts";
import type { NodeId, ReadState } from "./types.ts";

/** One heartbeat round confirming leadership for a batch of reads. */
interface Round {
  /** The round's id, carried in MsgHeartbeat.readContext. Ascending. */
  readonly ctx: number;
  /** Commit index when the round started; the reads are served at it. */
  readonly index: number;
  readonly requestIds: number[];
  /** Voters that answered this round or a later one (the leader included). */
  readonly acks: Set<NodeId>;
}

/** Pending and in-flight ReadIndex requests of a leader. */
export class ReadOnly {
  /** Requests not yet in a round (waiting for the next round, or for a commit in the leader's term). */
  private _pending: number[] = [];
  /** Rounds in flight, ascending by ctx. */
  private _rounds: Round[] = [];
  private _nextCtx = 1;

  /** Queues a request for the next round. */
  enqueue(requestId: number): void {
    this._pending.push(requestId);
  }

  /** True when requests wait for a round. */
  hasPending(): boolean {
    return this._pending.length > 0;
  }

  /** Context of the latest round in flight (0 if none): periodic heartbeats carry it so a lost round still completes. */
  lastCtx(): number {
    const r = this._rounds[this._rounds.length - 1];
    return r === undefined ? 0 : r.ctx;
  }

  /**
   * Moves every pending request into a new round at `commitIndex`.
   * @returns the round's context for the heartbeats
   */
  startRound(commitIndex: number, self: NodeId): number {
    const ctx = this._nextCtx++;
    this._rounds.push({ ctx, index: commitIndex, requestIds: this._pending, acks: new Set([self]) });
    this._pending = [];
    return ctx;
  }

  /**
   * Records that `from` answered round `ctx`: it also vouches for every
   * earlier round (its answer was sent after those rounds started).
   * @returns the reads confirmed now, oldest first
   */
  recvAck(ctx: number, from: NodeId, voters: readonly NodeId[]): ReadState[] {
    const out: ReadState[] = [];
    let confirmed = 0;
    for (let i = 0; i < this._rounds.length; i++) {
      const r = this._rounds[i] as Round;
      if (r.ctx > ctx) break;
      r.acks.add(from);
      // A confirmed later round confirms every earlier one too.
      if (hasQuorum(voters, r.acks)) confirmed = i + 1;
    }
    for (let i = 0; i < confirmed; i++) {
      const r = this._rounds[i] as Round;
      for (const requestId of r.requestIds) out.push({ requestId, index: r.index });
    }
    if (confirmed > 0) this._rounds = this._rounds.slice(confirmed);
    return out;
  }

  /** Confirms the pending requests at once (a single-voter cluster needs no round). */
  confirmPendingNow(commitIndex: number): ReadState[] {
    const out = this._pending.map((requestId) => ({ requestId, index: commitIndex }));
    this._pending = [];
    return out;
  }

  /** Leadership is lost: every request fails. @returns their ids */
  failAll(): number[] {
    const ids: number[] = [];
    for (const r of this._rounds) ids.push(...r.requestIds);
    ids.push(...this._pending);
    this._rounds = [];
    this._pending = [];
    return ids;
  }
}
