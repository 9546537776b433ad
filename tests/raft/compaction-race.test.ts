/**
 * The driver compacts the log while messages are in flight: whatever a
 * follower's progress says, the core must catch it up (with a snapshot
 * when its entries are gone) and never throw for peer input (issue "The
 * production driver under the simulator", defect 3: a heartbeat reply to a
 * leader whose window to that follower was full read log.term(next - 1)
 * after the entries there were compacted, and threw on every heartbeat).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Net } from "./net.ts";

describe("compaction racing replication", () => {
  it("a heartbeat reply from a follower whose window is full, after the leader compacted past it, sends a snapshot instead of throwing", () => {
    const net = new Net(["n1", "n2", "n3"], { maxInflightMsgs: 2 });
    net.elect("n1");
    net.propose("n1", "a");
    net.stabilize();
    assert.equal(net.raft("n1").status().progress.find((p) => p.id === "n2")?.state, "replicate");
    // Appends to n2 are lost: its window fills.
    net.filter = (m) => !(m.type === "MsgApp" && m.to === "n2");
    for (let i = 0; i < 6; i++) net.propose("n1", `b${i}`);
    net.stabilize();
    const pr = net.raft("n1").status().progress.find((p) => p.id === "n2")!;
    assert.equal(pr.state, "replicate");
    assert.equal(pr.inflight, 2, "the window to n2 is full");
    // The driver compacts everything applied (the floor it read counted n2 as caught up).
    const n1 = net.node("n1");
    n1.log.compact(n1.log.lastIndex());
    net.filter = null;
    const term = net.raft("n1").status().term;
    net.enqueue({ type: "MsgHeartbeatResp", from: "n2", to: "n1", term, readContext: 0 });
    assert.doesNotThrow(() => net.deliver());
    net.stabilize();
    assert.ok(net.delivered.some((m) => m.type === "MsgSnap" && m.to === "n2"), "n2 is sent a snapshot");
    net.tick(3);
    assert.equal(net.raft("n2").status().commitIndex, net.raft("n1").status().commitIndex, "and catches up");
  });
});
