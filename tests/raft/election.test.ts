/**
 * Elections: randomized timeouts, votes that leave only once durable,
 * PreVote (dissertation §9.6), CheckQuorum and the leader lease, and the
 * PreVote + CheckQuorum corner cases (etcd issues 8243 and 9586).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appliedData, eventsOf, Net } from "./net.ts";

describe("elections", () => {
  it("a three-member cluster elects one leader by timeout and replicates", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.tick(40);
    const leader = net.leader();
    assert.ok(leader !== null, "a leader was elected");
    const followers = [...net.nodes.keys()].filter((id) => id !== leader);
    for (const id of followers) assert.equal(net.raft(id).status().leaderId, leader);
    net.propose(leader, "a", "b");
    net.settle();
    for (const n of net.nodes.values()) assert.deepEqual(appliedData(n), ["a", "b"]);
    assert.deepEqual(eventsOf(net.node(leader), "role").at(-1)?.role, "leader");
  });

  it("a single voter elects itself once its vote is durable", () => {
    const net = new Net(["n1"]);
    const node = net.node("n1");
    node.autoPersist = false;
    node.raft.campaign();
    node.handleReady();
    assert.equal(node.raft.status().role, "candidate", "the self-vote does not count before it is durable");
    node.persist();
    assert.equal(node.raft.status().role, "leader");
    node.autoPersist = true;
    net.stabilize();
    assert.equal(node.raft.status().commitIndex, 1, "the no-op commits");
  });

  it("votes at most once per term", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.cut("n1", "n3");
    net.elect("n1");
    assert.equal(net.raft("n1").status().role, "leader");
    const term = net.raft("n1").status().term;
    // n3 campaigns at the same term n1 won: n2 already voted for n1 in it.
    net.heal();
    net.isolate("n1");
    const n3 = net.raft("n3");
    n3.campaign();
    assert.equal(n3.status().term, term, "n3 campaigns in the term n2 already voted in");
    net.stabilize();
    assert.notEqual(n3.status().role, "leader");
    const grants = net.delivered.filter((m) => m.type === "MsgVoteResp" && m.from === "n2" && m.term === term && m.granted);
    assert.equal(grants.length, 1, "n2 granted exactly one vote in the term");
  });

  it("a vote not yet durable at a crash is not sent, and is not lost either way", () => {
    const net = new Net(["n1", "n2", "n3"]);
    const n2 = net.node("n2");
    n2.autoPersist = false;
    net.cut("n1", "n3");
    net.raft("n1").campaign();
    net.stabilize(); // n2 steps the request; its grant waits for the write
    assert.equal(net.raft("n1").status().role, "candidate");
    assert.ok(!net.delivered.some((m) => m.type === "MsgVoteResp" && m.from === "n2"), "no grant before the vote is durable");
    n2.crash();
    n2.restart();
    assert.equal(n2.raft.status().term, 0, "the term was never durable");
    // Now the write succeeds: n2 votes for n1 again and the grant goes out after it.
    net.tick(1, ["n2"]);
    net.raft("n1").campaign();
    net.stabilize();
    assert.equal(net.leader(), "n1");
    // Restarting after the durable vote keeps it: n3 cannot get n2's vote in that term.
    const term = net.raft("n1").status().term;
    n2.crash();
    n2.restart();
    assert.equal(n2.raft.status().term, term);
    assert.equal(n2.hardState.votedFor, "n1");
  });

  it("restart never lowers the term and remembers the vote", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.propose("n1", "x");
    net.stabilize();
    for (const n of net.nodes.values()) {
      const before = n.raft.status();
      n.crash();
      n.restart();
      const after = n.raft.status();
      assert.equal(after.term, before.term);
      assert.equal(after.role, "follower");
      assert.ok(after.commitIndex <= before.commitIndex);
    }
    net.tick(40);
    assert.ok(net.leader() !== null);
    net.checkSafety();
  });
});

describe("PreVote and CheckQuorum", () => {
  const tun = { preVote: true, checkQuorum: true };

  it("a rejoining partitioned member does not disrupt the leader (PreVote)", () => {
    const net = new Net(["n1", "n2", "n3"], tun);
    net.elect("n1");
    const term = net.raft("n1").status().term;
    net.isolate("n3");
    net.tick(100, ["n3"]);
    assert.equal(net.raft("n3").status().term, term, "pre-votes fail, so the isolated member's term stays");
    net.heal();
    net.tick(30);
    assert.equal(net.leader(), "n1");
    assert.equal(net.raft("n1").status().term, term, "no disruption");
  });

  it("a follower within its leader lease ignores vote requests", () => {
    const net = new Net(["n1", "n2", "n3"], { checkQuorum: true });
    net.elect("n1");
    const term = net.raft("n1").status().term;
    net.cut("n1", "n3");
    net.raft("n3").campaign(); // no PreVote here: n3 bumps its term
    net.stabilize();
    assert.equal(net.raft("n2").status().term, term, "n2 heard from n1 recently and ignored n3");
    assert.equal(net.raft("n1").status().role, "leader");
  });

  it("an asymmetric partition (leader can send but not receive) steps the leader down; the others elect", () => {
    const net = new Net(["n1", "n2", "n3"], tun);
    net.elect("n1");
    net.cutOneWay("n2", "n1");
    net.cutOneWay("n3", "n1");
    // The followers were heard in the first election timeout of this
    // leadership; by the end of the second one the leader must be gone.
    net.tick(20, ["n1"]);
    assert.equal(net.raft("n1").status().role, "follower", "CheckQuorum deposed the deaf leader");
    net.tick(60);
    const leader = net.leader();
    assert.ok(leader === "n2" || leader === "n3", `a reachable member leads, got ${leader}`);
  });

  it("a member with a higher term but a stale log cannot block elections (etcd 9586/8243)", () => {
    const net = new Net(["n1", "n2", "n3"], tun);
    net.elect("n1");
    // n3 is cut off while the others append entries.
    net.isolate("n3");
    net.propose("n1", "a", "b");
    net.stabilize();
    // Without PreVote n3 would raise its term; simulate a term raised while cut off
    // (e.g. before PreVote was enabled) by restarting it with a higher durable term.
    const n3 = net.node("n3");
    n3.crash();
    n3.hardState = { ...n3.hardState, term: n3.hardState.term + 5 };
    n3.restart();
    net.heal();
    net.tick(80);
    const leader = net.leader();
    assert.ok(leader !== null, "a leader exists");
    assert.notEqual(leader, "n3", "the stale log cannot win");
    assert.ok(net.raft(leader).status().term > net.raft("n3").status().term - 1, "the cluster learned the higher term");
    net.propose(leader, "c");
    net.settle();
    assert.deepEqual(appliedData(net.node("n3")), ["a", "b", "c"]);
  });

  it("split pre-votes after the leader dies still elect a leader (etcd 9586)", () => {
    const net = new Net(["n1", "n2", "n3"], tun);
    net.elect("n1");
    net.isolate("n1");
    // Both remaining members become pre-candidates at the same moment.
    net.raft("n2").campaign();
    net.raft("n3").campaign();
    net.stabilize();
    net.tick(60, ["n2", "n3"]);
    const leader = net.leader();
    assert.ok(leader === "n2" || leader === "n3", `n2 or n3 leads, got ${leader}`);
  });

  it("a leader lease does not block a member that lost its leader (leader crash)", () => {
    const net = new Net(["n1", "n2", "n3"], tun);
    net.elect("n1");
    net.node("n1").crash();
    net.tick(60, ["n2", "n3"]);
    assert.ok(["n2", "n3"].includes(net.leader() ?? ""));
  });
});
