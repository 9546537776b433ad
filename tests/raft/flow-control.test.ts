/**
 * `Inflights` and `Progress`: the flow-control state machine of one
 * follower (probe, replicate, snapshot) and its limits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Inflights } from "../../src/raft/inflights.ts";
import { Progress } from "../../src/raft/progress.ts";

describe("Inflights", () => {
  it("is full at capacity or at the byte limit, and frees acknowledged messages", () => {
    const f = new Inflights(3, 100);
    f.add(5, 10);
    f.add(7, 10);
    assert.equal(f.full(), false);
    f.add(9, 10);
    assert.equal(f.full(), true, "count limit");
    assert.throws(() => f.add(10, 1), /only when not full/);
    f.freeLE(7);
    assert.equal(f.count, 1);
    assert.equal(f.bytes, 10);
    f.add(12, 95);
    assert.equal(f.full(), true, "byte limit");
    f.freeLE(100);
    assert.equal(f.count, 0);
    assert.equal(f.bytes, 0);
    // Wraps around the ring.
    for (let i = 0; i < 10; i++) {
      f.add(200 + i, 1);
      f.freeLE(200 + i);
    }
    assert.throws(() => {
      f.add(300, 1);
      f.add(299, 1);
    }, /ascend/);
  });
});

describe("Progress", () => {
  it("probe: one message until a reply; replicate: pipelined; snapshot: paused", () => {
    const pr = new Progress(11, 2, 0);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(12, 2, 2);
    assert.equal(pr.isPaused(), true, "probe waits for the reply");
    assert.equal(pr.maybeUpdate(12), true);
    pr.becomeReplicate();
    assert.equal(pr.next, 13);
    pr.sentEntries(14, 2, 2);
    pr.sentEntries(16, 2, 2);
    assert.equal(pr.next, 17);
    assert.equal(pr.isPaused(), true, "window of 2 full");
    pr.inflights.freeLE(14);
    assert.equal(pr.isPaused(), false);
    pr.becomeSnapshot(40);
    assert.equal(pr.isPaused(), true);
    pr.becomeProbe();
    assert.equal(pr.next, 41, "after a snapshot, probe past it");
    pr.check();
  });

  it("ignores stale rejections and backs off to the hint", () => {
    const pr = new Progress(21, 4, 0);
    pr.match = 5;
    assert.equal(pr.maybeDecrTo(15, 10), false, "probe: not the latest probe point");
    assert.equal(pr.maybeDecrTo(20, 10), true);
    assert.equal(pr.next, 10);
    assert.equal(pr.maybeDecrTo(9, 2), true);
    assert.equal(pr.next, 6, "never below match + 1");
    pr.becomeReplicate();
    assert.equal(pr.maybeDecrTo(5, 1), false, "replicate: at or below match is stale");
    assert.equal(pr.maybeDecrTo(8, 1), true);
    assert.equal(pr.next, 6);
  });
});
