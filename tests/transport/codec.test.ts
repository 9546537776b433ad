/**
 * Tests of the peer message codec: random round trips of every message
 * type, and refusal of every truncation, garbage, bad integers, terms at
 * the limit, ids that are not member ids, counts past the limits and
 * violated AppendEntries invariants with `CodecError`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BODY_ENTRIES_MAX, BODY_MESSAGES_MAX, CodecError, decodeMessages, encodedSize, encodeMessages } from "../../src/transport/codec.ts";
import { MSG_APP_ENTRIES_MAX } from "../../src/raft/limits.ts";
import type { Message, MsgApp } from "../../src/raft/types.ts";
import { appendMessage, MESSAGE_TYPES, randomMessage, Rng } from "./_messages.ts";

/** Runs `fn`, prefixing any failure with what reproduces it. */
function reproducible(context: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof Error) e.message = `[reproduce: ${context}] ${e.message}`;
    throw e;
  }
}

function assertCodecError(fn: () => unknown, context: string): void {
  let threw: unknown = null;
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    threw = e;
  }
  assert.ok(threw instanceof CodecError, `${context}: expected CodecError, got ${threw === null ? `a result ${JSON.stringify(result, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}` : String(threw)}`);
}

/** One valid message of every type, as fixed fixtures. */
function oneOfEach(seed: number): Message[] {
  const rng = new Rng(seed);
  return MESSAGE_TYPES.map((t) => randomMessage(rng, t));
}

describe("codec", () => {
  it("round-trips 10,000 random batches of every message type", () => {
    const seed = 0xc0dec;
    const rng = new Rng(seed);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const n = 1 + rng.int(5);
      const msgs: Message[] = [];
      for (let j = 0; j < n; j++) msgs.push(randomMessage(rng));
      for (const m of msgs) seen.add(m.type);
      reproducible(`seed=${seed} case=${i}`, () => {
        const body = encodeMessages(msgs);
        assert.equal(body.length, encodedSize(msgs));
        assert.deepStrictEqual(decodeMessages(body), msgs);
      });
    }
    assert.equal(seen.size, MESSAGE_TYPES.length);
  });

  it("decodes entry data as views into the body, without copying", () => {
    const body = encodeMessages([appendMessage("n1", "n2", 10, 3, 16)]);
    const m = decodeMessages(body)[0] as MsgApp;
    assert.equal(m.entries.length, 3);
    for (const e of m.entries) assert.equal(e.data.buffer, body.buffer);
    assert.deepStrictEqual(m.entries.map((e) => e.index), [11, 12, 13]);
  });

  it("refuses every truncation of a valid body", () => {
    for (let seed = 1; seed <= 3; seed++) {
      const msgs = oneOfEach(seed);
      const bodies = [encodeMessages(msgs), ...msgs.map((m) => encodeMessages([m]))];
      for (const body of bodies) {
        for (let len = 0; len < body.length; len++) {
          assertCodecError(() => decodeMessages(body.subarray(0, len)), `seed=${seed} ${decodeMessages(body)[0]!.type} truncated to ${len}/${body.length}`);
        }
      }
    }
  });

  it("refuses trailing bytes, bad magic and empty batches", () => {
    const body = encodeMessages(oneOfEach(7));
    const longer = new Uint8Array(body.length + 1);
    longer.set(body);
    assertCodecError(() => decodeMessages(longer), "one trailing byte");
    const badMagic = body.slice();
    badMagic[3] = 2;
    assertCodecError(() => decodeMessages(badMagic), "version 2");
    const empty = body.slice(0, 8);
    new DataView(empty.buffer).setUint32(4, 0, true);
    assertCodecError(() => decodeMessages(empty), "empty batch");
    assert.throws(() => encodeMessages([]), CodecError);
  });

  it("refuses random garbage", () => {
    const seed = 0x9a7ba9e;
    const rng = new Rng(seed);
    for (let i = 0; i < 2_000; i++) {
      const junk = rng.bytes(rng.int(200));
      // Half of the cases get a valid header so the garbage reaches the message parser.
      if (i % 2 === 0 && junk.length >= 8) {
        junk.set([0x52, 0x46, 0x54, 0x01, 1 + rng.int(3), 0, 0, 0]);
      }
      reproducible(`seed=${seed} case=${i}`, () => {
        let msgs: Message[] | null = null;
        try {
          msgs = decodeMessages(junk);
        } catch (e) {
          assert.ok(e instanceof CodecError, `not a CodecError: ${String(e)}`);
        }
        // Anything accepted must be the one canonical encoding of what it decoded to.
        if (msgs !== null) assert.deepStrictEqual(encodeMessages(msgs), junk);
      });
    }
  });

  it("either refuses a mutated body or decodes it to messages that re-encode to the same bytes", () => {
    const seed = 0x5eed;
    const rng = new Rng(seed);
    let refused = 0;
    for (let i = 0; i < 5_000; i++) {
      const msgs = [randomMessage(rng), randomMessage(rng)];
      const body = encodeMessages(msgs);
      const pos = rng.int(body.length);
      body[pos] = body[pos]! ^ (1 << rng.int(8));
      reproducible(`seed=${seed} case=${i} flipped byte ${pos}`, () => {
        try {
          const decoded = decodeMessages(body);
          assert.deepStrictEqual(encodeMessages(decoded), body);
        } catch (e) {
          assert.ok(e instanceof CodecError, `not a CodecError: ${String(e)}`);
          refused++;
        }
      });
    }
    assert.ok(refused > 0);
  });

  describe("refuses bad fields", () => {
    const heartbeat: Message = { type: "MsgHeartbeat", from: "n1", to: "n2", term: 3, leaderCommit: 4, readContext: 0 };
    /** Header 8 + kind 1 + "n1" 4 + "n2" 4: the term starts at byte 17. */
    const TERM_AT = 17;

    it("a u64 above Number.MAX_SAFE_INTEGER, and a term at or above 2^52", () => {
      const body = encodeMessages([heartbeat]);
      new DataView(body.buffer).setUint32(TERM_AT + 4, 0x20_0000, true);
      assertCodecError(() => decodeMessages(body), "term high half 0x200000");
      // Number.MAX_SAFE_INTEGER is a valid u64 but not a term: the next election would overflow.
      new DataView(body.buffer).setUint32(TERM_AT + 4, 0x1f_ffff, true);
      new DataView(body.buffer).setUint32(TERM_AT, 0xffff_ffff, true);
      assertCodecError(() => decodeMessages(body), "term Number.MAX_SAFE_INTEGER");
      new DataView(body.buffer).setUint32(TERM_AT + 4, 0x10_0000, true);
      new DataView(body.buffer).setUint32(TERM_AT, 0, true);
      assertCodecError(() => decodeMessages(body), "term 2^52");
      new DataView(body.buffer).setUint32(TERM_AT + 4, 0x0f_ffff, true);
      new DataView(body.buffer).setUint32(TERM_AT, 0xffff_ffff, true);
      assert.equal(decodeMessages(body)[0]!.term, 2 ** 52 - 1);
      // The same limit on every term field, not only the message's.
      const vote = encodeMessages([{ type: "MsgVote", from: "n1", to: "n2", term: 3, lastLogIndex: 1, lastLogTerm: 2, transfer: false }]);
      new DataView(vote.buffer).setUint32(TERM_AT + 8 + 8 + 4, 0x10_0000, true);
      assertCodecError(() => decodeMessages(vote), "lastLogTerm 2^52");
      // The leaderCommit of a heartbeat is an index, not a term: any safe integer.
      const hb = encodeMessages([{ ...heartbeat, leaderCommit: Number.MAX_SAFE_INTEGER }]);
      assert.equal((decodeMessages(hb)[0] as { leaderCommit: number }).leaderCommit, Number.MAX_SAFE_INTEGER);
    });

    it("ids that are not member ids (a path, a newline, non-ASCII)", () => {
      for (const bad of ["x/../../../escaped", "n1\nforged log line", "nœud", "a".repeat(65), "-n1"]) {
        const body = encodeMessages([{ ...heartbeat, from: bad }]);
        assertCodecError(() => decodeMessages(body), `from ${JSON.stringify(bad)}`);
        const snap: Message = { type: "MsgSnap", from: "n1", to: "n2", term: 2, snapshot: { index: 5, term: 2, membership: [{ id: bad, url: "", voter: true }] } };
        assertCodecError(() => decodeMessages(encodeMessages([snap])), `member ${JSON.stringify(bad)}`);
      }
    });

    it("more entries in a message, or messages and entries in a body, than the limits", () => {
      const big = appendMessage("n1", "n2", 0, MSG_APP_ENTRIES_MAX, 0) as MsgApp;
      assert.equal(decodeMessages(encodeMessages([big])).length, 1);
      // One entry more: refused to encode, and refused to decode when forged.
      const more = appendMessage("n1", "n2", 0, MSG_APP_ENTRIES_MAX + 1, 0) as MsgApp;
      assert.throws(() => encodeMessages([more]), CodecError);
      const forged = encodeMessages([{ ...more, entries: more.entries.slice(0, MSG_APP_ENTRIES_MAX) }]);
      const countAt = 8 + 1 + 4 + 4 + 8 + 24;
      const grown = new Uint8Array(forged.length + 13);
      grown.set(forged);
      new DataView(grown.buffer).setUint32(countAt, MSG_APP_ENTRIES_MAX + 1, true);
      new DataView(grown.buffer).setUint32(forged.length, 5, true); // the extra entry: term 5, normal, no data
      assertCodecError(() => decodeMessages(grown), "MSG_APP_ENTRIES_MAX + 1 entries");
      // Entries across a body: 9 full messages pass BODY_ENTRIES_MAX.
      const many = Array.from({ length: Math.ceil(BODY_ENTRIES_MAX / MSG_APP_ENTRIES_MAX) + 1 }, (_, i) => appendMessage("n1", "n2", i * MSG_APP_ENTRIES_MAX, MSG_APP_ENTRIES_MAX, 0));
      assert.throws(() => encodeMessages(many), CodecError);
      const hbs = Array.from({ length: BODY_MESSAGES_MAX + 1 }, () => heartbeat);
      assert.throws(() => encodeMessages(hbs), CodecError);
      const ok = encodeMessages(hbs.slice(1));
      const forgedCount = new Uint8Array(ok.length + (ok.length - 8) / BODY_MESSAGES_MAX);
      forgedCount.set(ok);
      forgedCount.set(ok.subarray(8, 8 + (ok.length - 8) / BODY_MESSAGES_MAX), ok.length);
      new DataView(forgedCount.buffer).setUint32(4, BODY_MESSAGES_MAX + 1, true);
      assertCodecError(() => decodeMessages(forgedCount), "BODY_MESSAGES_MAX + 1 messages");
    });

    it("an unknown message kind, boolean or entry type", () => {
      const body = encodeMessages([heartbeat]);
      body[8] = 0;
      assertCodecError(() => decodeMessages(body), "kind 0");
      body[8] = 11;
      assertCodecError(() => decodeMessages(body), "kind 11");
      const vote = encodeMessages([{ type: "MsgVoteResp", from: "n1", to: "n2", term: 1, granted: true }]);
      vote[vote.length - 1] = 2;
      assertCodecError(() => decodeMessages(vote), "boolean 2");
      const app = encodeMessages([appendMessage("n1", "n2", 0, 1, 4)]);
      app[app.length - 4 - 4 - 1] = 3; // entry type byte before the u32 length and 4 data bytes
      assertCodecError(() => decodeMessages(app), "entry type 3");
    });

    it("counts and lengths the body cannot hold", () => {
      const body = encodeMessages([heartbeat]);
      new DataView(body.buffer).setUint32(4, 0xffff_ffff, true);
      assertCodecError(() => decodeMessages(body), "message count 2^32-1");
      const app = encodeMessages([appendMessage("n1", "n2", 0, 2, 4)]);
      const countAt = 8 + 1 + 4 + 4 + 8 + 24;
      new DataView(app.buffer).setUint32(countAt, 0xffff_ffff, true);
      assertCodecError(() => decodeMessages(app), "entry count 2^32-1");
      const app2 = encodeMessages([appendMessage("n1", "n2", 0, 1, 4)]);
      new DataView(app2.buffer).setUint32(app2.length - 8, 0xffff_ffff, true);
      assertCodecError(() => decodeMessages(app2), "entry data length 2^32-1");
      const str = encodeMessages([heartbeat]);
      new DataView(str.buffer).setUint16(9, 0xffff, true);
      assertCodecError(() => decodeMessages(str), "from length 65535");
    });

    it("empty ids, invalid UTF-8 and duplicate members", () => {
      const empty = encodeMessages([{ ...heartbeat, from: "n1", to: "n2" }]);
      const noFrom = new Uint8Array(empty.length - 2);
      noFrom.set(empty.subarray(0, 9));
      noFrom.set([0, 0], 9);
      noFrom.set(empty.subarray(13), 11);
      assertCodecError(() => decodeMessages(noFrom), "empty from");
      const utf = encodeMessages([heartbeat]);
      utf[11] = 0xff;
      assertCodecError(() => decodeMessages(utf), "invalid UTF-8 in from");
      const snap: Message = {
        type: "MsgSnap", from: "n1", to: "n2", term: 2,
        snapshot: { index: 5, term: 2, membership: [{ id: "a", url: "u", voter: true }, { id: "b", url: "u", voter: true }] },
      };
      const dup = encodeMessages([snap]);
      const bAt = dup.lastIndexOf(0x62); // the id "b"
      dup[bAt] = 0x61;
      assertCodecError(() => decodeMessages(dup), "duplicate member a");
      assertCodecError(() => decodeMessages(encodeMessages([{ ...snap, snapshot: { ...snap.snapshot, membership: [] } }])), "empty membership");
    });

    it("AppendEntries whose entry terms break Log Matching", () => {
      const base = appendMessage("n1", "n2", 10, 3, 2) as MsgApp;
      const withTerms = (terms: number[], prevLogTerm = 1, term = 5): Uint8Array =>
        encodeMessages([{ ...base, term, prevLogTerm, entries: base.entries.map((e, i) => ({ ...e, term: terms[i]! })) }]);
      assert.equal(decodeMessages(withTerms([1, 2, 5])).length, 1);
      assertCodecError(() => decodeMessages(withTerms([2, 1, 5])), "decreasing terms");
      assertCodecError(() => decodeMessages(withTerms([1, 2, 6])), "entry term above the message term");
      assertCodecError(() => decodeMessages(withTerms([0, 2, 5], 0)), "entry term 0");
      assertCodecError(() => decodeMessages(withTerms([2, 2, 5], 3)), "entry term below prevLogTerm");
      // The last entry may sit exactly at MAX_SAFE_INTEGER, not one past it.
      const edge = appendMessage("n1", "n2", Number.MAX_SAFE_INTEGER - 3, 3, 2) as MsgApp;
      const body = encodeMessages([edge]);
      assert.equal((decodeMessages(body)[0] as MsgApp).entries[2]!.index, Number.MAX_SAFE_INTEGER);
      const PREV_INDEX_AT = 8 + 1 + 4 + 4 + 8;
      const view = new DataView(body.buffer);
      view.setUint32(PREV_INDEX_AT, view.getUint32(PREV_INDEX_AT, true) + 1, true);
      assertCodecError(() => decodeMessages(body), "last entry index past MAX_SAFE_INTEGER");
    });
  });

  describe("refuses to encode", () => {
    it("unsafe integers, long strings, empty ids and non-contiguous entries", () => {
      const hb: Message = { type: "MsgHeartbeat", from: "n1", to: "n2", term: 3, leaderCommit: 4, readContext: 0 };
      assert.throws(() => encodeMessages([{ ...hb, term: 2 ** 53 }]), CodecError);
      assert.throws(() => encodeMessages([{ ...hb, term: 2 ** 52 }]), CodecError);
      assert.throws(() => encodeMessages([{ ...hb, term: -1 }]), CodecError);
      assert.throws(() => encodeMessages([{ ...hb, term: 1.5 }]), CodecError);
      assert.throws(() => encodeMessages([{ ...hb, from: "" }]), CodecError);
      assert.throws(() => encodeMessages([{ ...hb, from: "é".repeat(40_000) }]), CodecError);
      const app = appendMessage("n1", "n2", 10, 2, 1) as MsgApp;
      assert.throws(() => encodeMessages([{ ...app, prevLogIndex: 11 }]), CodecError);
    });
  });
});
