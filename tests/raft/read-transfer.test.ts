/**
 * ReadIndex (dissertation §6.4) and leadership transfer (§3.10).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NotLeaderError, ProposalDroppedError } from "../../src/errors.ts";
import { eventsOf, Net } from "./net.ts";

describe("ReadIndex", () => {
  it("confirms leadership with one heartbeat round shared by all queued reads", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.propose("n1", "a");
    net.stabilize();
    const commit = net.raft("n1").status().commitIndex;
    net.delivered = [];
    for (const id of [1, 2, 3]) net.raft("n1").readIndex(id);
    net.stabilize();
    assert.deepEqual(net.node("n1").readStates, [1, 2, 3].map((requestId) => ({ requestId, index: commit })));
    const rounds = net.delivered.filter((m) => m.type === "MsgHeartbeat" && m.readContext > 0);
    assert.equal(rounds.length, 2, "one heartbeat per follower for the three reads");
  });

  it("waits for an entry of the leader's term to commit", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.raft("n1").campaign();
    net.filter = (m) => m.type !== "MsgAppResp";
    net.stabilize();
    net.raft("n1").readIndex(9);
    net.stabilize();
    assert.deepEqual(net.node("n1").readStates, []);
    net.filter = null;
    net.tick(2);
    assert.deepEqual(net.node("n1").readStates, [{ requestId: 9, index: 1 }]);
  });

  it("a single voter confirms at once; a non-leader refuses with the leader's address", () => {
    const one = new Net(["n1"]);
    one.elect("n1");
    one.raft("n1").readIndex(5);
    one.stabilize();
    assert.deepEqual(one.node("n1").readStates, [{ requestId: 5, index: 1 }]);
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    assert.throws(() => net.raft("n2").readIndex(1), (e: unknown) => e instanceof NotLeaderError && e.leaderId === "n1" && e.leaderUrl === "http://n1");
  });

  it("fails the reads when leadership is lost before confirmation", () => {
    const net = new Net(["n1", "n2", "n3"], { checkQuorum: true });
    net.elect("n1");
    net.isolate("n1");
    net.raft("n1").readIndex(42);
    net.tick(25, ["n1"]);
    assert.equal(net.raft("n1").status().role, "follower");
    assert.deepEqual(net.node("n1").readStates, []);
    assert.deepEqual(eventsOf(net.node("n1"), "read-failed").map((e) => e.requestId), [42]);
  });
});

describe("leadership transfer", () => {
  it("hands over to an up-to-date voter", () => {
    const net = new Net(["n1", "n2", "n3"], { checkQuorum: true, preVote: true });
    net.elect("n1");
    const term = net.raft("n1").status().term;
    net.raft("n1").transferLeadership("n2");
    net.stabilize();
    assert.equal(net.leader(), "n2");
    assert.equal(net.raft("n2").status().term, term + 1);
    assert.equal(net.raft("n1").status().leaderId, "n2");
  });

  it("brings a lagging target up to date first", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.isolate("n3");
    net.propose("n1", "a", "b", "c");
    net.stabilize();
    net.heal();
    net.raft("n1").transferLeadership("n3");
    assert.throws(() => net.propose("n1", "refused"), (e: unknown) => e instanceof ProposalDroppedError && e.outcome === "not-applied");
    net.tick(3);
    assert.equal(net.leader(), "n3");
    assert.equal(net.raft("n3").status().lastIndex, 5);
  });

  it("is aborted after an election timeout when the target does not take over", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.node("n3").crash();
    net.raft("n1").transferLeadership("n3");
    assert.equal(net.raft("n1").status().transferee, "n3");
    net.tick(10);
    const aborted = eventsOf(net.node("n1"), "transfer-aborted");
    assert.equal(aborted.length, 1);
    assert.equal(aborted[0]?.to, "n3");
    assert.equal(net.raft("n1").status().transferee, null);
    net.propose("n1", "ok again");
    net.stabilize();
    assert.equal(net.leader(), "n1");
  });
});
