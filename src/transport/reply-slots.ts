/**
 * Replies that ride back in the HTTP response of the request they answer.
 *
 * A leader's AppendEntries, heartbeats and a candidate's votes are posted
 * with `x-raft-reply: <ms>`. The receiver then holds the response open
 * (`hold`) for at most that long; when its driver sends messages back to
 * the sender, the replies among them (MsgAppResp, MsgHeartbeatResp,
 * MsgVoteResp, MsgPreVoteResp) go into the oldest held response (`take`)
 * instead of a request of their own. Without a held response, or for any
 * other message, they travel as before, as a request the other way.
 *
 * Why: a round trip was two requests (the append, answered 204, and the
 * reply, answered 204); now it is one. And a member's replies no longer
 * need a connection into the sender's server: under a client flood on a
 * leader's port, its followers' acknowledgements and heartbeat replies no
 * longer wait in its accept queue behind the flood (issue 11's first-flood
 * leadership loss on Node).
 *
 * Replies are not matched to the request that caused them: the core may
 * answer two appends in one Ready, and any reply from the member is as good
 * as any other (Raft tolerates reordering). A held response that gets
 * nothing before its deadline is answered 204, and what it would have
 * carried goes out the old way.
 *
 * @module
 */
import type { Message, NodeId } from "../raft/types.ts";

/** Request header: the sender accepts replies in the response and waits this many ms for them. */
export const HEADER_REPLY_WAIT = "x-raft-reply";
/** Longest a receiver holds a response, whatever the sender asks. */
export const REPLY_WAIT_MS_MAX = 1000;
/** Held responses per sender at once; more are answered 204 at once (a sender keeps 8 requests in flight). */
export const REPLY_HOLDS_PER_SENDER_MAX = 32;
/** Messages in one reply body (replies are a few dozen bytes each). */
export const REPLY_MESSAGES_MAX = 1024;

/** Whether a message may ride in a response: only the replies of the core. */
export function isReplyMessage(m: Message): boolean {
  switch (m.type) {
    case "MsgAppResp":
    case "MsgHeartbeatResp":
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return true;
    default:
      return false;
  }
}

/** Whether a batch expects replies, so its request is worth holding open for them. */
export function expectsReply(msgs: readonly Message[]): boolean {
  for (const m of msgs) {
    if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgVote" || m.type === "MsgPreVote") return true;
  }
  return false;
}

/** Parses `x-raft-reply`: the wait in ms, clamped to `REPLY_WAIT_MS_MAX`, or null if absent or malformed. */
export function parseReplyWait(raw: string | null | undefined): number | null {
  if (raw === null || raw === undefined || !/^[0-9]{1,7}$/.test(raw)) return null;
  return Math.min(Number(raw), REPLY_WAIT_MS_MAX);
}

interface _Hold {
  readonly resolve: (msgs: Message[]) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

/** Timers seam (tests pass fakes); production uses the global ones. */
export interface ReplyTimers {
  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>;
  clearTimeout(t: ReturnType<typeof setTimeout>): void;
}

/**
 * The held responses of one member, by sender.
 *
 * Invariant: every hold in `#holds` is unresolved, and at most
 * `REPLY_HOLDS_PER_SENDER_MAX` are held per sender.
 *
 * @example
 * ```ts
 * const slots = new ReplySlots();
 * const replies = slots.hold("n1", 200); // in the route, before stepping the request's messages
 * const rest = slots.take("n1", outgoing); // in the transport: what is left goes as a request
 * ```
 */
export class ReplySlots {
  readonly #holds = new Map<NodeId, _Hold[]>();
  readonly #timers: ReplyTimers;
  #closed = false;

  constructor(timers: ReplyTimers = globalThis) {
    this.#timers = timers;
  }

  /**
   * Holds a response for `from`: resolves with the replies `take` hands it,
   * or with none after `waitMs`, at `close()`, or at once when `from`
   * already has too many held.
   */
  hold(from: NodeId, waitMs: number): Promise<Message[]> {
    let list = this.#holds.get(from);
    if (this.#closed || waitMs <= 0 || (list !== undefined && list.length >= REPLY_HOLDS_PER_SENDER_MAX)) return Promise.resolve([]);
    if (list === undefined) this.#holds.set(from, (list = []));
    const held = list;
    return new Promise<Message[]>((resolve) => {
      const h: _Hold = { resolve, timer: null };
      h.timer = this.#timers.setTimeout(() => {
        h.timer = null;
        const i = held.indexOf(h);
        if (i >= 0) held.splice(i, 1);
        if (held.length === 0 && this.#holds.get(from) === held) this.#holds.delete(from);
        resolve([]);
      }, waitMs);
      held.push(h);
    });
  }

  /**
   * Puts the replies among `msgs` (all addressed to `to`) into the oldest
   * response held for `to`, up to `REPLY_MESSAGES_MAX`.
   *
   * @returns The messages that still have to be sent as a request (all of
   * them when nothing is held for `to`), in their original order.
   */
  take(to: NodeId, msgs: readonly Message[]): readonly Message[] {
    const list = this.#holds.get(to);
    if (list === undefined || list.length === 0) return msgs;
    const carried: Message[] = [];
    const rest: Message[] = [];
    for (const m of msgs) {
      if (m.to !== to) throw new Error(`Assertion failed: a message to ${m.to} offered to the held responses of ${to}`);
      if (carried.length < REPLY_MESSAGES_MAX && isReplyMessage(m)) carried.push(m);
      else rest.push(m);
    }
    if (carried.length === 0) return msgs;
    const h = list.shift()!;
    if (list.length === 0) this.#holds.delete(to);
    if (h.timer !== null) this.#timers.clearTimeout(h.timer);
    h.timer = null;
    h.resolve(carried);
    return rest;
  }

  /** How many responses are held for `from` now. */
  held(from: NodeId): number {
    return this.#holds.get(from)?.length ?? 0;
  }

  /** Answers every held response with no replies; later holds resolve at once. */
  close(): void {
    this.#closed = true;
    for (const list of this.#holds.values()) {
      for (const h of list) {
        if (h.timer !== null) this.#timers.clearTimeout(h.timer);
        h.timer = null;
        h.resolve([]);
      }
    }
    this.#holds.clear();
  }
}
