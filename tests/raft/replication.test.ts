/**
 * Log replication scenarios: the paper's Figure 7 and Figure 8, fast
 * backtracking, flow control, the commit rule for a follower with a stale
 * tail, durability of committed entries, and snapshots to a follower
 * behind the leader's first index.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryLog, Raft } from "../../src/raft/raft.ts";
import type { Entry, MsgApp, MsgAppResp, RaftConfig } from "../../src/raft/types.ts";
import { appliedData, DEFAULTS, members, Net, type TestNode } from "./net.ts";

const enc = new TextEncoder();

/** Replaces a node's durable log by entries of the given terms, at `term`, and restarts it. */
function preload(node: TestNode, terms: readonly number[], term: number): void {
  node.log.truncateFrom(1);
  node.log.append(terms.map((t, i) => ({ index: i + 1, term: t, type: "normal" as const, data: enc.encode(`t${t}i${i + 1}`) })));
  node.hardState = { term, votedFor: null, commitIndex: 0 };
  node.raft = node.makeRaft();
}

function termsOf(node: TestNode): number[] {
  const out: number[] = [];
  for (let i = node.log.firstIndex(); i <= node.log.lastIndex(); i++) out.push(node.log.term(i));
  return out;
}

describe("replication", () => {
  it("Figure 7: the leader brings followers a-f to its log", () => {
    const ids = ["L", "a", "b", "c", "d", "e", "f"];
    const net = new Net(ids);
    const logs: Record<string, number[]> = {
      L: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const id of ids) preload(net.node(id), logs[id] as number[], 7);
    // c and d hold longer or newer logs and refuse; a, b, e, f elect L for term 8.
    net.elect("L");
    net.settle();
    assert.equal(net.leader(), "L");
    assert.equal(net.raft("L").status().term, 8);
    const want = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8];
    for (const id of ids) assert.deepEqual(termsOf(net.node(id)), want, `log of ${id}`);
    for (const id of ids) assert.equal(net.raft(id).status().commitIndex, 11, `commit of ${id}`);
  });

  it("Figure 8: an entry of an earlier term on a majority is not committed by counting, and may be overwritten", () => {
    const ids = ["s1", "s2", "s3", "s4", "s5"];
    const tun = { maxMsgBytes: 1 }; // one entry per AppendEntries
    const net = new Net(ids, tun);
    preload(net.node("s1"), [1, 2], 3);
    preload(net.node("s2"), [1, 2], 3);
    preload(net.node("s3"), [1], 3);
    preload(net.node("s4"), [1], 3);
    preload(net.node("s5"), [1, 3], 3);
    // (c) s1 leads term 4 (votes s2, s3, s4); its term-4 no-op at index 3 never leaves it.
    net.rewrite = (m) => (m.type === "MsgApp" ? { ...m, entries: m.entries.filter((e) => e.index < 3) } : m);
    net.cut("s1", "s5");
    net.elect("s1");
    assert.equal(net.leader(), "s1");
    assert.equal(net.raft("s1").status().term, 4);
    const onMajority = ["s1", "s2", "s3", "s4"].filter((id) => net.node(id).log.lastIndex() >= 2 && net.node(id).log.term(2) === 2);
    assert.ok(onMajority.length >= 3, `index 2 (term 2) is on a majority: ${onMajority}`);
    assert.equal(net.raft("s1").status().commitIndex, 0, "§5.4.2: not committed by counting replicas");
    // (d) s1 crashes; s5 (last term 3) is elected and overwrites index 2.
    net.node("s1").crash();
    net.rewrite = null;
    net.heal();
    net.elect("s5"); // term 4: the others already voted for s1 in it
    net.elect("s5"); // term 5
    assert.equal(net.leader(), "s5");
    for (const id of ["s2", "s3", "s4", "s5"]) {
      assert.deepEqual(termsOf(net.node(id)).slice(0, 2), [1, 3], `index 2 of ${id} was overwritten`);
    }
    net.checkSafety();
  });

  it("Figure 8 (e): once an entry of the leader's term is on a majority, both commit and the stale candidate cannot win", () => {
    const ids = ["s1", "s2", "s3", "s4", "s5"];
    const net = new Net(ids, { maxMsgBytes: 1 });
    preload(net.node("s1"), [1, 2], 3);
    preload(net.node("s2"), [1, 2], 3);
    preload(net.node("s3"), [1], 3);
    preload(net.node("s4"), [1], 3);
    preload(net.node("s5"), [1, 3], 3);
    net.cut("s1", "s5");
    net.elect("s1");
    assert.equal(net.raft("s1").status().commitIndex, 3);
    net.node("s1").crash();
    net.heal();
    net.raft("s5").campaign();
    net.stabilize();
    assert.notEqual(net.leader(), "s5", "s5's log (last term 3) is behind a majority");
    net.tick(60, ["s2", "s3", "s4", "s5"]);
    const leader = net.leader();
    assert.ok(leader !== null && leader !== "s5");
    for (const id of ["s2", "s3", "s4", "s5"]) assert.deepEqual(termsOf(net.node(id)).slice(0, 3), [1, 2, 4]);
  });

  it("fast backtracking skips a whole conflicting term per round trip", () => {
    const net = new Net(["n1", "n2", "n3"]);
    const stale = Array.from({ length: 100 }, (_, i) => (i < 10 ? 1 : 2));
    const good = Array.from({ length: 60 }, (_, i) => (i < 10 ? 1 : 3));
    preload(net.node("n1"), good, 3);
    preload(net.node("n2"), good, 3);
    preload(net.node("n3"), stale, 3);
    net.elect("n1");
    const rejections = net.delivered.filter((m): m is MsgAppResp => m.type === "MsgAppResp" && m.from === "n3" && !m.success);
    assert.ok(rejections.length <= 2, `at most two rejections, got ${rejections.length}`);
    assert.deepEqual(termsOf(net.node("n3")), [...good, 4]);
  });

  it("a follower with a stale tail commits only up to the last entry the leader vouched for", () => {
    const log = new MemoryLog({ index: 0, term: 0, membership: members(3) });
    const stale: Entry[] = [1, 1, 2, 2].map((t, i) => ({ index: i + 1, term: t, type: "normal", data: new Uint8Array(1) }));
    log.append(stale);
    const config: RaftConfig = { ...DEFAULTS, id: "n2" };
    const r = new Raft({ config, log, hardState: { term: 2, votedFor: null, commitIndex: 0 }, snapshot: log.snapshot, configs: [] });
    // The term-3 leader's log is [1, 1, 3, 3, 3]; it probes at index 2 with no entries and commit 5.
    const probe: MsgApp = { type: "MsgApp", from: "n1", to: "n2", term: 3, prevLogIndex: 2, prevLogTerm: 1, entries: [], leaderCommit: 5 };
    r.step(probe);
    assert.equal(r.status().commitIndex, 2, "min(leaderCommit, index of last new entry): the stale tail is not committed");
    const rd = r.ready();
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2]);
    const ack = rd.persistedMessages[0] as MsgAppResp;
    assert.equal(ack.type, "MsgAppResp");
    assert.equal(ack.matchIndex, 2);
    assert.equal(rd.messages.length, 0, "the acknowledgement waits for durability");
    r.advance(rd);
    // Now the leader sends its entries 3..5: the stale tail is replaced, and commit reaches 5.
    const ents: Entry[] = [3, 4, 5].map((i) => ({ index: i, term: 3, type: "normal", data: new Uint8Array(1) }));
    r.step({ ...probe, entries: ents });
    assert.equal(r.status().commitIndex, 5);
    const rd2 = r.ready();
    assert.deepEqual(rd2.entries.map((e) => [e.index, e.term]), [[3, 3], [4, 3], [5, 3]]);
    assert.deepEqual(rd2.committedEntries, [], "committed entries are handed out only once durable locally");
    log.append(rd2.entries);
    r.advance(rd2);
    const rd3 = r.ready();
    assert.deepEqual(rd3.committedEntries.map((e) => [e.index, e.term]), [[3, 3], [4, 3], [5, 3]]);
  });

  it("the leader counts itself toward commitment only for durable entries", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    const n1 = net.node("n1");
    n1.autoPersist = false;
    net.isolate("n2");
    net.propose("n1", "x");
    net.stabilize();
    // n3 acked; n1's own copy is not durable; n2 is cut off: one durable copy of two needed.
    assert.equal(n1.raft.status().commitIndex, 1);
    n1.persist();
    net.stabilize();
    assert.equal(n1.raft.status().commitIndex, 2);
  });

  it("flow control: probe sends one message until a reply; replicate is bounded by maxInflightMsgs and maxInflightBytes", () => {
    const net = new Net(["n1", "n2"], { maxInflightMsgs: 3, maxMsgBytes: 10 });
    net.elect("n1");
    net.cutOneWay("n2", "n1"); // n2's replies are lost
    for (let i = 0; i < 10; i++) net.propose("n1", "0123456789");
    net.stabilize();
    const sent = net.delivered.filter((m): m is MsgApp => m.type === "MsgApp" && m.entries.some((e) => e.type === "normal"));
    assert.equal(sent.length, 3, "at most maxInflightMsgs in flight");
    assert.ok(sent.every((m) => m.entries.reduce((s, e) => s + e.data.length, 0) <= 10), "maxMsgBytes per message");
    const pr = net.raft("n1").status().progress.find((p) => p.id === "n2");
    assert.equal(pr?.state, "replicate");
    assert.equal(pr?.inflight, 3);

    // Probe: after a reported unreachable, one message until a reply.
    net.raft("n1").reportUnreachable("n2");
    assert.equal(net.raft("n1").status().progress.find((p) => p.id === "n2")?.state, "probe");
    net.delivered = [];
    net.tick(3, ["n1"]);
    net.propose("n1", "more");
    net.stabilize();
    const probes = net.delivered.filter((m) => m.type === "MsgApp");
    assert.equal(probes.length, 1, "probe state: one AppendEntries until the follower answers");

    // Bytes: a byte cap of 15 allows two 10-byte messages.
    const net2 = new Net(["n1", "n2"], { maxInflightMsgs: 100, maxInflightBytes: 15, maxMsgBytes: 10 });
    net2.elect("n1");
    net2.cutOneWay("n2", "n1");
    for (let i = 0; i < 10; i++) net2.propose("n1", "0123456789");
    net2.stabilize();
    assert.equal(net2.delivered.filter((m) => m.type === "MsgApp" && m.entries.some((e) => e.type === "normal")).length, 2);
    net2.heal();
    net2.tick(2);
    assert.equal(net2.raft("n2").status().commitIndex, 11, "replication resumes once replies flow");
  });

  it("a follower behind the leader's first index gets a snapshot", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.isolate("n3");
    for (let i = 0; i < 20; i++) net.propose("n1", `v${i}`);
    net.stabilize();
    const n1 = net.node("n1");
    const applied = n1.raft.status().appliedIndex;
    assert.equal(applied, 21);
    n1.raft.reportUnreachable("n3"); // the driver's sends to n3 failed
    assert.ok(n1.raft.compactionFloor() > 15, "a follower in probe state does not hold back compaction");
    n1.log.compact(15, n1.log.term(15), n1.raft.configAt(15).members);
    net.heal();
    net.tick(3);
    const snaps = net.delivered.filter((m) => m.type === "MsgSnap");
    assert.equal(snaps.length, 1);
    const snap = snaps[0];
    assert.ok(snap !== undefined && snap.type === "MsgSnap");
    assert.equal(snap.snapshot.index, 21, "at the leader's applied index");
    assert.deepEqual(snap.snapshot.membership, members(3));
    const n3 = net.node("n3");
    assert.equal(n3.appliedBase, 21, "the follower's state machine was reset to the snapshot");
    assert.equal(n3.log.firstIndex(), 22);
    net.propose("n1", "after");
    net.settle();
    assert.deepEqual(appliedData(n3), ["after"]);
    assert.equal(net.raft("n1").status().progress.find((p) => p.id === "n3")?.state, "replicate");
  });

  it("a snapshot in flight holds back compaction; a failed one is retried", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.isolate("n3");
    for (let i = 0; i < 5; i++) net.propose("n1", `v${i}`);
    net.stabilize();
    const n1 = net.node("n1");
    n1.log.compact(5);
    net.heal();
    net.filter = (m) => m.type !== "MsgSnap"; // the stream fails
    net.tick(2);
    const pr = () => net.raft("n1").status().progress.find((p) => p.id === "n3");
    assert.equal(pr()?.state, "snapshot");
    assert.equal(net.raft("n1").compactionFloor(), 7, "entries after the snapshot in flight are kept");
    net.raft("n1").reportSnapshot("n3", false);
    assert.equal(pr()?.state, "probe");
    net.filter = null;
    net.tick(3);
    assert.equal(pr()?.state, "replicate");
    assert.equal(net.raft("n3").status().commitIndex, 6);
  });
});
