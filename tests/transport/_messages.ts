/**
 * Test helpers for the transport tests: a seeded PRNG and a generator of
 * random, valid Raft messages covering every message type and the edges of
 * the wire format (u64 extremes, terms just below the limit, the longest
 * member ids, empty and large entries).
 *
 * @module
 */
import type { Entry, EntryType, Member, Message, MessageType } from "../../src/raft/types.ts";

/** A small deterministic PRNG (mulberry32): the same seed gives the same run. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform in [0, 2^32). */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }
  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** A u64 field value: mostly small, sometimes at the edges of the safe range. */
  u64(): number {
    switch (this.int(6)) {
      case 0:
        return 0;
      case 1:
        return Number.MAX_SAFE_INTEGER - this.int(3);
      case 2:
        return 0xffff_ffff + this.int(3) - 1;
      case 3:
        return this.int(2 ** 21) * 2 ** 32 + this.u32();
      default:
        return this.int(1000);
    }
  }
  /** A term: mostly small, sometimes just below TERM_MAX (2^52). */
  term(): number {
    switch (this.int(5)) {
      case 0:
        return 0;
      case 1:
        return 2 ** 52 - 1 - this.int(3);
      case 2:
        return 0xffff_ffff + this.int(3) - 1;
      default:
        return this.int(1000);
    }
  }
}

const _ID_CHARS = ["n1", "n2", "node-3", "N.4_x", "a".repeat(60), "x"];
/** A valid member id, sometimes of the longest length allowed. */
export function randomId(rng: Rng): string {
  let s = rng.pick(_ID_CHARS);
  if (rng.int(4) === 0) s += String(rng.int(100));
  return s;
}

export const MESSAGE_TYPES: readonly MessageType[] = [
  "MsgApp", "MsgAppResp", "MsgVote", "MsgPreVote", "MsgVoteResp", "MsgPreVoteResp",
  "MsgHeartbeat", "MsgHeartbeatResp", "MsgSnap", "MsgTimeoutNow",
];

const _ENTRY_TYPES: readonly EntryType[] = ["normal", "noop", "config"];

/** A random valid message of `type` (random type if omitted). */
export function randomMessage(rng: Rng, type: MessageType = rng.pick(MESSAGE_TYPES)): Message {
  const from = randomId(rng);
  const to = randomId(rng);
  const term = rng.term();
  switch (type) {
    case "MsgApp": {
      const n = rng.int(4) === 0 ? 0 : rng.int(12);
      const prevLogIndex = Math.max(0, Math.min(rng.u64(), Number.MAX_SAFE_INTEGER - n));
      // Entry terms are non-decreasing, >= 1, <= term; prevLogTerm <= first entry's term.
      const hi = Math.max(1, term);
      const termMsg = n > 0 ? hi : term;
      let t = 1 + rng.int(Math.min(hi, 1000));
      const prevLogTerm = n > 0 ? rng.int(t + 1) : rng.term();
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) {
        if (rng.int(3) === 0) t = Math.min(hi, t + rng.int(3));
        if (rng.int(20) === 0) t = hi;
        const len = rng.int(10) === 0 ? 0 : rng.int(200);
        entries.push({ index: prevLogIndex + 1 + i, term: t, type: rng.pick(_ENTRY_TYPES), data: rng.bytes(len) });
      }
      return { type, from, to, term: termMsg, prevLogIndex, prevLogTerm, entries, leaderCommit: rng.u64() };
    }
    case "MsgAppResp":
      return { type, from, to, term, success: rng.bool(), matchIndex: rng.u64(), conflictTerm: rng.term(), conflictIndex: rng.u64(), lastLogIndex: rng.u64() };
    case "MsgVote":
    case "MsgPreVote":
      return { type, from, to, term, lastLogIndex: rng.u64(), lastLogTerm: rng.term(), transfer: rng.bool() };
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return { type, from, to, term, granted: rng.bool() };
    case "MsgHeartbeat":
      return { type, from, to, term, leaderCommit: rng.u64(), readContext: rng.u64() };
    case "MsgHeartbeatResp":
      return { type, from, to, term, readContext: rng.u64() };
    case "MsgSnap": {
      const n = 1 + rng.int(5);
      const membership: Member[] = [];
      for (let i = 0; i < n; i++) {
        membership.push({ id: `${randomId(rng).slice(0, 60)}-${i}`, url: rng.int(5) === 0 ? "" : `http://127.0.0.1:${7000 + i}`, voter: rng.bool() });
      }
      return { type, from, to, term, snapshot: { index: rng.u64(), term: rng.term(), membership } };
    }
    case "MsgTimeoutNow":
      return { type, from, to, term };
  }
}

/** An AppendEntries with `n` entries of `bytes` bytes each (for benchmarks and load tests). */
export function appendMessage(from: string, to: string, prevLogIndex: number, n: number, bytes: number): Message {
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push({ index: prevLogIndex + 1 + i, term: 5, type: "normal", data: new Uint8Array(bytes).fill(i & 0xff) });
  return { type: "MsgApp", from, to, term: 5, prevLogIndex, prevLogTerm: 5, entries, leaderCommit: prevLogIndex };
}
