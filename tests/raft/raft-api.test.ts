/**
 * The `Raft` API on a single core driven by hand: argument checks,
 * Ready/advance ordering, installing a snapshot, restart from durable
 * state, and that peer input never throws.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError, NotLeaderError } from "../../src/errors.ts";
import { MemoryLog, Raft } from "../../src/raft/raft.ts";
import type { Message, MsgAppResp, RaftConfig } from "../../src/raft/types.ts";
import { DEFAULTS, members } from "./net.ts";

function core(id = "n2", log = new MemoryLog({ index: 0, term: 0, membership: members(3) }), extra: Partial<RaftConfig> = {}): Raft {
  return new Raft({ config: { ...DEFAULTS, ...extra, id }, log, hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: log.snapshot, configs: [] });
}

describe("Raft API", () => {
  it("validates its configuration", () => {
    assert.throws(() => core("n1", undefined, { heartbeatTicks: 10 }), InvalidArgumentError);
    assert.throws(() => core("n1", undefined, { maxInflightMsgs: 0 }), InvalidArgumentError);
    assert.throws(() => core(""), InvalidArgumentError);
  });

  it("leader-only calls throw NotLeaderError on a follower", () => {
    const r = core();
    assert.throws(() => r.propose(new Uint8Array(1)), NotLeaderError);
    assert.throws(() => r.readIndex(1), NotLeaderError);
    assert.throws(() => r.addMember("x", "u"), NotLeaderError);
    assert.throws(() => r.transferLeadership("n1"), NotLeaderError);
  });

  it("Readys must be advanced in order", () => {
    const r = core("n1");
    r.campaign();
    const a = r.ready();
    r.tick();
    r.campaign();
    const b = r.ready();
    assert.throws(() => r.advance(b), /advanced in the order/);
    r.advance(a);
    r.advance(b);
  });

  it("a MsgSnap past the commit index puts the snapshot in the Ready and acknowledges it after persistence", () => {
    const log = new MemoryLog({ index: 0, term: 0, membership: members(3) });
    const r = core("n2", log);
    const membership = members(3);
    r.step({ type: "MsgSnap", from: "n1", to: "n2", term: 3, snapshot: { index: 50, term: 2, membership } });
    const rd = r.ready();
    assert.deepEqual(rd.snapshot, { index: 50, term: 2, membership });
    assert.deepEqual(rd.config, { index: 50, members: membership });
    const ack = rd.persistedMessages[0] as MsgAppResp;
    assert.equal(ack.type, "MsgAppResp");
    assert.equal(ack.success, true);
    assert.equal(ack.matchIndex, 50);
    log.reset(rd.snapshot as NonNullable<typeof rd.snapshot>);
    r.advance(rd);
    const st = r.status();
    assert.equal(st.commitIndex, 50);
    assert.equal(st.appliedIndex, 50);
    assert.equal(r.configAt(50).index, 50);
    // An older snapshot is only acknowledged.
    r.step({ type: "MsgSnap", from: "n1", to: "n2", term: 3, snapshot: { index: 40, term: 2, membership } });
    assert.equal(r.ready().snapshot, null);
  });

  it("never throws for malformed or stale peer input", () => {
    const r = core();
    const junk: unknown[] = [
      null, {}, { type: "MsgApp", from: "n1", to: "n2", term: -1 },
      { type: "MsgApp", from: "n1", to: "n2", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 5, term: 1, type: "normal", data: new Uint8Array() }], leaderCommit: 0 },
      { type: "MsgApp", from: "n1", to: "n2", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 1, type: "config", data: new Uint8Array([9, 9]) }], leaderCommit: 0 },
      { type: "MsgApp", from: "n1", to: "n2", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: "x", leaderCommit: 0 },
      { type: "MsgSnap", from: "n1", to: "n2", term: 1, snapshot: { index: 5, term: 1, membership: [{ id: 3 }] } },
      { type: "MsgVote", from: "stranger", to: "n2", term: 9, lastLogIndex: 0, lastLogTerm: 0, transfer: false },
      { type: "MsgAppResp", from: "n1", to: "n2", term: 0, success: true, matchIndex: 99, conflictTerm: 0, conflictIndex: 0, lastLogIndex: 0 },
      { type: "MsgHeartbeat", from: "n1", to: "someone-else", term: 5, leaderCommit: 0, readContext: 0 },
      { type: "Nonsense", from: "n1", to: "n2", term: 0 },
    ];
    for (const m of junk) r.step(m as Message);
    assert.equal(r.status().lastIndex, 0);
    assert.equal(r.status().term, 1, "only the well-formed term-1 messages moved the term");
  });

  it("restarts from durable state: raised term from the log, commit clamped to the log", () => {
    const log = new MemoryLog({ index: 0, term: 0, membership: members(3) });
    log.append([{ index: 1, term: 4, type: "noop", data: new Uint8Array() }]);
    const r = new Raft({ config: { ...DEFAULTS, id: "n1" }, log, hardState: { term: 3, votedFor: "n2", commitIndex: 9 }, snapshot: log.snapshot, configs: [] });
    const st = r.status();
    assert.equal(st.term, 4);
    assert.equal(st.commitIndex, 1);
    const rd = r.ready();
    assert.deepEqual(rd.hardState, { term: 4, votedFor: null, commitIndex: 1 });
  });
});
