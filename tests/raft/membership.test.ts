/**
 * Membership changes (dissertation §4.1-§4.2): learners caught up in
 * rounds then promoted or given up on, removal of followers and of the
 * leader, removed members that cannot disrupt, a stale minority leader
 * that cannot commit a change, and the guards on concurrent changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MembershipChangeError, NotLeaderError } from "../../src/errors.ts";
import { appliedData, eventsOf, Net } from "./net.ts";

const ids = (n: { raft: { status(): { config: { members: readonly { id: string; voter: boolean }[] } } } }) =>
  n.raft.status().config.members.map((m) => `${m.id}${m.voter ? "" : "(learner)"}`);

describe("membership changes", () => {
  it("a new member joins as a learner, is caught up and promoted", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    for (let i = 0; i < 5; i++) net.propose("n1", `v${i}`);
    net.stabilize();
    const n4 = net.add("n4");
    net.tick(50, ["n4"]);
    assert.equal(n4.raft.status().term, 0, "a member with an empty membership never campaigns");
    net.raft("n1").addMember("n4", "http://n4");
    assert.deepEqual(ids(net.node("n1")), ["n1", "n2", "n3", "n4(learner)"], "in force once appended");
    assert.throws(() => net.raft("n1").addMember("n5", "http://n5"), MembershipChangeError);
    net.stabilize();
    net.tick(2);
    for (const id of ["n1", "n2", "n3", "n4"]) assert.deepEqual(ids(net.node(id)), ["n1", "n2", "n3", "n4"], `config on ${id}`);
    assert.ok(eventsOf(net.node("n1"), "catch-up").length >= 1);
    assert.deepEqual(appliedData(n4), ["v0", "v1", "v2", "v3", "v4"]);
    // n4 votes now: with n2 and n3 down, n1 + n4 are not a majority of 4.
    net.node("n2").crash();
    net.node("n3").crash();
    const before = net.raft("n1").status().commitIndex;
    net.propose("n1", "x");
    net.stabilize();
    assert.equal(net.raft("n1").status().commitIndex, before);
  });

  it("catch-up gives up after catchUpRoundsMax rounds and removes the learner", () => {
    const net = new Net(["n1", "n2", "n3"], { catchUpRoundsMax: 2 });
    net.elect("n1");
    net.raft("n1").addMember("n4", "http://n4"); // n4 never starts
    net.stabilize();
    net.tick(25, ["n1", "n2", "n3"]);
    const failed = eventsOf(net.node("n1"), "catch-up-failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.id, "n4");
    assert.deepEqual(eventsOf(net.node("n1"), "catch-up").map((e) => e.round), [1, 2]);
    net.stabilize();
    for (const id of ["n1", "n2", "n3"]) assert.deepEqual(ids(net.node(id)), ["n1", "n2", "n3"]);
  });

  it("a learner never campaigns, and a newly elected leader catches it up and promotes it", () => {
    const boot = [...["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}`, voter: true })), { id: "l1", url: "http://l1", voter: false }];
    const net = new Net(["n1", "n2", "n3", "l1"], {}, boot);
    net.tick(60, ["l1"]);
    assert.equal(net.raft("l1").status().role, "follower", "a learner never campaigns");
    assert.equal(net.raft("l1").status().term, 0);
    net.elect("n1");
    net.propose("n1", "a");
    net.stabilize();
    net.tick(2);
    net.stabilize();
    assert.deepEqual(appliedData(net.node("l1")), ["a"]);
    for (const id of ["n1", "n2", "n3", "l1"]) assert.deepEqual(ids(net.node(id)), ["n1", "n2", "n3", "l1"], `l1 promoted, on ${id}`);
  });

  it("a leader elected while a learner is being caught up resumes the catch-up (the join does not stall)", () => {
    const net = new Net(["n1", "n2", "n3"], { catchUpRoundsMax: 10 });
    net.elect("n1");
    net.add("n4");
    net.isolate("n4");
    net.raft("n1").addMember("n4", "http://n4");
    net.stabilize();
    assert.deepEqual(ids(net.node("n2")), ["n1", "n2", "n3", "n4(learner)"], "the learner's config entry is committed");
    assert.equal(net.raft("n1").catchingUp(), "n4");
    // The leader goes away before n4 is caught up; n2 takes over.
    net.node("n1").crash();
    net.elect("n2");
    assert.equal(net.raft("n2").catchingUp(), "n4", "the new leader resumes the catch-up");
    net.heal();
    net.isolate("n1");
    net.stabilize();
    net.tick(3, ["n2", "n3", "n4"]);
    net.stabilize();
    for (const id of ["n2", "n3", "n4"]) assert.deepEqual(ids(net.node(id)), ["n1", "n2", "n3", "n4"], `n4 promoted, on ${id}`);
    assert.equal(eventsOf(net.node("n2"), "catch-up-failed").length, 0);
  });

  it("a caught-up learner is not promoted while a leadership transfer is in progress (§3.10); it is once the transfer ends", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.add("n4");
    net.cut("n1", "n2"); // n2 cannot catch up: the transfer to it stays in progress
    net.propose("n1", "x");
    net.raft("n1").addMember("n4", "http://n4");
    net.raft("n1").transferLeadership("n2");
    net.stabilize();
    assert.equal(net.raft("n1").status().transferee, "n2");
    assert.deepEqual(ids(net.node("n1")), ["n1", "n2", "n3", "n4(learner)"], "no promotion during the transfer");
    net.tick(25, ["n1", "n3", "n4"]); // the transfer times out (an election timeout) and is aborted
    assert.equal(net.raft("n1").status().transferee, null);
    net.stabilize();
    assert.deepEqual(ids(net.node("n1")), ["n1", "n2", "n3", "n4"], "promoted once the transfer ended");
  });

  it("a removed follower whose acks never arrive still learns its removal committed (the last AppendEntries carries the commit)", () => {
    // Once the removal commits, the transport refuses the removed sender (410),
    // so its ack of the removal entry never arrives: n1 alone commits it.
    const net = new Net(["n1", "n2"]);
    net.elect("n1");
    net.propose("n1", "a");
    net.stabilize();
    net.cutOneWay("n2", "n1");
    net.raft("n1").removeMember("n2");
    net.stabilize();
    assert.deepEqual(ids(net.node("n1")), ["n1"]);
    assert.equal(eventsOf(net.node("n2"), "removed").length, 0, "not yet: its commit index is behind");
    net.tick(30);
    net.stabilize();
    assert.equal(eventsOf(net.node("n2"), "removed").length, 1, "n2 learned its removal committed");
    assert.equal(net.raft("n2").status().commitIndex, net.raft("n1").status().commitIndex);
  });

  it("removing a follower: it learns of it and cannot disrupt afterwards", () => {
    const net = new Net(["n1", "n2", "n3"], { checkQuorum: true, preVote: true });
    net.elect("n1");
    net.raft("n1").removeMember("n3");
    net.stabilize();
    net.tick(2);
    assert.equal(eventsOf(net.node("n3"), "removed").length, 1);
    assert.deepEqual(ids(net.node("n1")), ["n1", "n2"]);
    const term = net.raft("n1").status().term;
    net.tick(100, ["n3"]);
    assert.equal(net.raft("n3").status().role, "follower", "a removed member never campaigns");
    // Even one that missed its removal and campaigns is ignored.
    const stale = new Net(["n1", "n2", "n3"]);
    stale.elect("n1");
    stale.isolate("n3");
    stale.raft("n1").removeMember("n3");
    stale.settle(); // n2 learns the removal committed (the commit index rides on a heartbeat)
    stale.heal();
    for (let i = 0; i < 5; i++) stale.elect("n3");
    assert.equal(stale.leader(), "n1");
    assert.equal(stale.raft("n2").status().term, stale.raft("n1").status().term);
    assert.ok(stale.raft("n3").status().term > stale.raft("n1").status().term, "n3 campaigned with higher terms");
    assert.equal(net.raft("n1").status().term, term);
  });

  it("removing the leader: it steps down once the removal commits, and the rest elect", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.elect("n1");
    net.raft("n1").removeMember("n1");
    assert.equal(net.raft("n1").status().role, "leader", "leads until the removal commits");
    net.stabilize();
    assert.equal(net.raft("n1").status().role, "follower");
    assert.equal(eventsOf(net.node("n1"), "removed").length, 1);
    net.tick(30, ["n2", "n3"]);
    const leader = net.leader();
    assert.ok(leader === "n2" || leader === "n3", `got ${leader}`);
    net.propose(leader, "after");
    net.settle();
    assert.deepEqual(appliedData(net.node(leader === "n2" ? "n3" : "n2")), ["after"]);
    assert.throws(() => net.raft("n1").propose(new Uint8Array(1)), NotLeaderError);
  });

  it("a member removed by an uncommitted config still campaigns, so its removal can commit (dissertation §4.2.2)", () => {
    const net = new Net(["n1", "n2"]);
    net.elect("n1");
    net.cut("n1", "n2");
    net.raft("n1").removeMember("n1"); // never reaches n2
    net.stabilize();
    net.node("n1").crash();
    net.node("n1").restart();
    assert.deepEqual(ids(net.node("n1")), ["n2"], "n1's latest config excludes it");
    net.heal();
    // n2 alone cannot win: n1's log is ahead and n1's vote is needed in n2's config.
    net.tick(100);
    assert.deepEqual(ids(net.node("n2")), ["n2"], "the removal reached n2");
    assert.equal(net.leader(), "n2");
    assert.equal(eventsOf(net.node("n1"), "removed").length, 1);
    assert.equal(net.raft("n1").status().role, "follower");
  });

  it("a stale leader on the minority side cannot commit a change; it is undone when it rejoins", () => {
    const net = new Net(["n1", "n2", "n3", "n4", "n5"]);
    net.elect("n1");
    net.partition(["n1", "n2"], ["n3", "n4", "n5"]);
    net.elect("n3");
    assert.equal(net.raft("n3").status().role, "leader");
    assert.equal(net.raft("n1").status().role, "leader", "n1 does not know it was deposed (no CheckQuorum)");
    net.raft("n1").removeMember("n5");
    net.stabilize();
    assert.deepEqual(ids(net.node("n2")), ["n1", "n2", "n3", "n4"], "appended, in force on the minority");
    const pending = net.raft("n1").status().pendingConfigIndex;
    assert.ok(net.raft("n1").status().commitIndex < pending, "never commits without a majority");
    net.heal();
    net.tick(3);
    assert.equal(net.leader(), "n3");
    for (const id of ["n1", "n2"]) assert.deepEqual(ids(net.node(id)), ["n1", "n2", "n3", "n4", "n5"], `${id} went back`);
    assert.ok(eventsOf(net.node("n1"), "membership").length >= 2);
  });

  it("refuses a change before the leader commits an entry of its term, or while one is pending", () => {
    const net = new Net(["n1", "n2", "n3"]);
    net.raft("n1").campaign();
    // Run the election without letting the no-op commit.
    net.filter = (m) => m.type !== "MsgAppResp";
    net.stabilize();
    assert.equal(net.raft("n1").status().role, "leader");
    assert.throws(() => net.raft("n1").addMember("n4", "http://n4"), /has not committed an entry of term/);
    net.filter = null;
    net.tick(2);
    net.raft("n1").addMember("n4", "http://n4"); // n4 never starts: it stays a learner being caught up
    assert.throws(() => net.raft("n1").removeMember("n2"), /in progress/);
    assert.throws(() => net.raft("n2").removeMember("n2"), NotLeaderError);
    net.tick(2);
    assert.throws(() => net.raft("n1").removeMember("n4"), /still being caught up/);
    assert.throws(() => net.raft("n1").addMember("n1", "x"), MembershipChangeError);
  });
});
