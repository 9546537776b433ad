/**
 * Regression scenarios for core bugs found by the seeded simulator
 * (tests/sim/). Each test names the seed that found the bug; the seed
 * replays it with `npm run sim -- --seed N` (on the core before the fix).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeMembership, MemoryLog, Raft } from "../../src/raft/raft.ts";
import type { Entry, HardState, Member, MsgAppResp, RaftConfig } from "../../src/raft/types.ts";
import { Net } from "./net.ts";

const enc = new TextEncoder();
const members3: Member[] = ["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}`, voter: true }));
const config: RaftConfig = {
  id: "n2", electionTicks: 10, heartbeatTicks: 1, randomSeed: 7, preVote: false, checkQuorum: false,
  maxInflightMsgs: 8, maxInflightBytes: 0, maxMsgBytes: 1 << 20, catchUpRoundsMax: 3,
};

/** A durable log holding entries 1..last, all of `term`. */
function logOf(last: number, term: number): MemoryLog {
  const log = new MemoryLog({ index: 0, term: 0, membership: members3 });
  const ents: Entry[] = [];
  for (let i = 1; i <= last; i++) ents.push({ index: i, term, type: "normal", data: enc.encode(`e${i}`) });
  log.append(ents);
  return log;
}

describe("simulator regressions", () => {
  it("a snapshot whose last entry the follower holds keeps the log after it (§7; sim seed 1057)", () => {
    // n2 holds 1..7 of term 2 and acknowledged them to the leader of term 2,
    // which counts them toward commitment. A MsgSnap at 5 sent earlier
    // arrives late: replacing the log would drop 6..7 (the simulator saw the
    // leader's progress stuck at a match the follower no longer had).
    const log = logOf(7, 2);
    const hardState: HardState = { term: 2, votedFor: null, commitIndex: 3 };
    const raft = new Raft({ config, log, hardState, snapshot: log.snapshot, configs: [], applied: 3 });
    raft.step({ type: "MsgSnap", from: "n1", to: "n2", term: 2, snapshot: { index: 5, term: 2, membership: members3 } });
    const rd = raft.ready();
    assert.equal(rd.snapshot, null, "no log reset");
    assert.equal(rd.hardState?.commitIndex, 5, "the commit index moves to the snapshot");
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [4, 5], "entries up to the snapshot are applied from the log");
    const resp = rd.persistedMessages.find((m): m is MsgAppResp => m.type === "MsgAppResp");
    assert.ok(resp !== undefined && resp.success && resp.matchIndex >= 5);
    raft.advance(rd);
    assert.equal(raft.status().lastIndex, 7, "acknowledged entries 6..7 are kept");
    assert.equal(log.lastIndex(), 7);
  });

  it("a restart with a persisted state machine ahead of the durable commit index raises the commit index (sim seed 426)", () => {
    // The state machine applied (and flushed) 1..5; the HardState holding
    // commitIndex 5 was not yet durable when the node crashed. Clamping
    // applied to 3 made the core, once leader, send a MsgSnap at 3: a state
    // the state machine, already at 5, could not produce.
    const log = logOf(5, 1);
    const raft = new Raft({ config, log, hardState: { term: 1, votedFor: null, commitIndex: 3 }, snapshot: log.snapshot, configs: [], applied: 5 });
    const st = raft.status();
    assert.equal(st.appliedIndex, 5);
    assert.equal(st.commitIndex, 5);
    assert.equal(raft.compactionFloor(), 6);
    if (raft.hasReady()) {
      const rd = raft.ready();
      assert.deepEqual(rd.committedEntries, [], "nothing is handed out twice");
      raft.advance(rd);
    }
  });

  it("a member removed only by an uncommitted config may still ask for votes (sim seed 221526)", () => {
    // n2 holds an uncommitted config entry removing n1; n1's log (where that
    // entry was truncated away) holds a later config that needs n2's vote.
    // n2 ignored n1's vote requests as if n1 were a stranger: no leader could
    // ever be elected.
    const log = logOf(1, 1);
    log.append([{ index: 2, term: 1, type: "config", data: encodeMembership(members3.filter((m) => m.id !== "n1")) }]);
    const raft = new Raft({ config, log, hardState: { term: 1, votedFor: null, commitIndex: 1 }, snapshot: log.snapshot, configs: [{ index: 2, members: members3.filter((m) => m.id !== "n1") }] });
    raft.step({ type: "MsgVote", from: "n1", to: "n2", term: 2, lastLogIndex: 5, lastLogTerm: 2, transfer: false });
    const rd = raft.ready();
    const resp = rd.persistedMessages.find((m) => m.type === "MsgVoteResp");
    assert.ok(resp !== undefined && resp.type === "MsgVoteResp" && resp.granted, "n2 answers and grants");
    raft.advance(rd);

    // Once the removal is committed, the removed member cannot disrupt a
    // cluster with a leader (§4.2.3).
    const log2 = logOf(1, 1);
    log2.append([{ index: 2, term: 1, type: "config", data: encodeMembership(members3.filter((m) => m.id !== "n1")) }]);
    const raft2 = new Raft({ config, log: log2, hardState: { term: 1, votedFor: null, commitIndex: 2 }, snapshot: log2.snapshot, configs: [{ index: 2, members: members3.filter((m) => m.id !== "n1") }] });
    raft2.step({ type: "MsgHeartbeat", from: "n3", to: "n2", term: 1, leaderCommit: 2, readContext: 0 });
    raft2.step({ type: "MsgVote", from: "n1", to: "n2", term: 2, lastLogIndex: 5, lastLogTerm: 2, transfer: false });
    assert.equal(raft2.status().term, 1, "ignored: no term change");
    assert.ok(raft2.ready().persistedMessages.every((m) => m.type !== "MsgVoteResp"));
  });

  it("a member that does not know a voter yet answers it when there is no leader (sim seed 403722)", () => {
    // n2 lagged far behind: n6 was added (and n1 removed, uncommitted) in
    // entries n2 never got. n6 needed n2's vote for the configuration
    // {n2, n6}; n2 ignored it as a stranger, and n1 (whose log was behind
    // n6's) could not win either: no leader, ever.
    const log = logOf(3, 1);
    const raft = new Raft({ config, log, hardState: { term: 5, votedFor: null, commitIndex: 1 }, snapshot: log.snapshot, configs: [] });
    raft.step({ type: "MsgVote", from: "n6", to: "n2", term: 6, lastLogIndex: 68, lastLogTerm: 6, transfer: false });
    const rd = raft.ready();
    const resp = rd.persistedMessages.find((m) => m.type === "MsgVoteResp");
    assert.ok(resp !== undefined && resp.type === "MsgVoteResp" && resp.granted, "answered and granted");
    raft.advance(rd);
    // The same request while a leader is heard from is ignored.
    const log2 = logOf(3, 1);
    const raft2 = new Raft({ config, log: log2, hardState: { term: 5, votedFor: null, commitIndex: 1 }, snapshot: log2.snapshot, configs: [] });
    raft2.step({ type: "MsgHeartbeat", from: "n1", to: "n2", term: 5, leaderCommit: 1, readContext: 0 });
    raft2.step({ type: "MsgVote", from: "n6", to: "n2", term: 6, lastLogIndex: 68, lastLogTerm: 6, transfer: false });
    assert.equal(raft2.status().term, 5);
  });

  it("a candidate elected by the others becomes leader only once its own term is durable (sim seed 319131)", () => {
    // n3's term-4 HardState was still being written when n1 and n2 (a
    // majority without n3's own vote) elected it. It led, appended entries
    // of term 4, crashed before the write finished, restarted in term 3,
    // was elected in term 4 again by the same voters and appended different
    // entries at the same indexes of term 4: two entries at (24, term 4).
    const net = new Net(["n1", "n2", "n3"]);
    const n3 = net.node("n3");
    n3.autoPersist = false;
    net.raft("n3").campaign();
    net.stabilize();
    assert.equal(net.raft("n3").status().role, "candidate", "won, but waits for its own vote to be durable");
    n3.crash();
    n3.restart(false);
    assert.equal(net.raft("n3").status().term, 0, "the term was never durable");
    net.raft("n3").campaign();
    net.stabilize();
    assert.equal(net.raft("n3").status().role, "candidate");
    n3.persist();
    net.stabilize();
    assert.equal(net.raft("n3").status().role, "leader");
    assert.equal(net.raft("n3").status().term, 1);
  });

  it("a snapshot that does not match the log still replaces it", () => {
    const log = logOf(7, 1);
    const raft = new Raft({ config, log, hardState: { term: 2, votedFor: null, commitIndex: 3 }, snapshot: log.snapshot, configs: [] });
    raft.step({ type: "MsgSnap", from: "n1", to: "n2", term: 2, snapshot: { index: 5, term: 2, membership: members3 } });
    const rd = raft.ready();
    assert.deepEqual(rd.snapshot, { index: 5, term: 2, membership: members3 });
    raft.advance(rd);
    assert.equal(raft.status().lastIndex, 5);
  });
});
