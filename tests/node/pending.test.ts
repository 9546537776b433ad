/**
 * The driver's table of waiting calls: every proposal settles once, and a
 * re-elected leader's proposal at a reused index settles the old one as
 * not applied instead of overwriting it (issue "The production driver
 * under the simulator", finding 7: keyed by index alone, the old one hung
 * until close).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProposalDroppedError } from "../../src/errors.ts";
import { NodeCounters } from "../../src/node/metrics.ts";
import { PendingTable, type Proposal } from "../../src/node/pending.ts";
import type { Entry } from "../../src/raft/types.ts";

function proposal(term: number, log: string[], name: string): Proposal {
  return { term, startMs: 0, tag: null, resolve: (v) => log.push(`${name} ok ${String(v)}`), reject: (e) => log.push(`${name} ${(e as ProposalDroppedError).outcome}`) };
}
const ent = (index: number, term: number, type: Entry["type"] = "normal"): Entry => ({ index, term, type, data: new Uint8Array(0) });

describe("PendingTable", () => {
  it("a new leader's proposal at an index settles the older one there as not applied", () => {
    const log: string[] = [];
    const t = new PendingTable(new NodeCounters());
    t.addProposal(10, proposal(5, log, "old"));
    t.addProposal(10, proposal(7, log, "new"));
    assert.deepEqual(log, ["old not-applied"]);
    const [p] = t.takeForEntries([ent(10, 7)]);
    assert.ok(p !== null && p !== undefined);
    t.settle(p, 1, "r", null);
    assert.deepEqual(log, ["old not-applied", "new ok r"]);
    assert.equal(t.proposalCount, 0);
  });

  it("an entry of another term, or an internal entry, at a proposal's index rejects it as not applied", () => {
    const log: string[] = [];
    const t = new PendingTable(new NodeCounters());
    t.addProposal(1, proposal(2, log, "a"));
    t.addProposal(2, proposal(2, log, "b"));
    const got = t.takeForEntries([ent(1, 3), ent(2, 3, "noop")]);
    assert.deepEqual(got, [null, null]);
    assert.deepEqual(log, ["a not-applied", "b not-applied"]);
  });

  it("proposals past their timeout and proposals folded into a snapshot have an unknown outcome; failAll settles the rest", () => {
    const log: string[] = [];
    const t = new PendingTable(new NodeCounters());
    t.addProposal(1, { ...proposal(1, log, "late"), startMs: 0 });
    t.addProposal(2, { ...proposal(1, log, "snap"), startMs: 500 });
    t.addProposal(3, { ...proposal(1, log, "rest"), startMs: 500 });
    t.expire(1000, 800);
    t.dropUpTo(2);
    t.failAll(new Error("closed"));
    assert.deepEqual(log, ["late unknown", "snap unknown", "rest unknown"]);
  });
});
