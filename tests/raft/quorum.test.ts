/**
 * Quorum arithmetic checked against a deliberately naive second
 * implementation on 50,000 random cases (etcd's quorum/quick_test.go idea).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../src/raft/prng.ts";
import { committedIndex, hasQuorum, voteResult } from "../../src/raft/quorum.ts";

/** The largest index some majority of voters all hold: try every candidate. */
function naiveCommitted(acked: readonly number[]): number {
  let best = 0;
  for (const candidate of acked) {
    const holders = acked.filter((a) => a >= candidate).length;
    if (holders * 2 > acked.length && candidate > best) best = candidate;
  }
  return best;
}

describe("quorum", () => {
  it("committedIndex agrees with a brute-force majority on 50,000 random cases", () => {
    const seed = 20240601;
    const rng = new Prng(seed);
    for (let c = 0; c < 50_000; c++) {
      const n = rng.intBetween(1, 10);
      const ids = Array.from({ length: n }, (_, i) => `v${i}`);
      const acked = ids.map(() => rng.intBetween(0, 20));
      const got = committedIndex(ids, (id) => acked[Number(id.slice(1))] ?? 0);
      assert.equal(got, naiveCommitted(acked), `case ${c} (seed ${seed}): acked ${JSON.stringify(acked)}`);
    }
  });

  it("voteResult and hasQuorum agree with counting", () => {
    const rng = new Prng(7);
    for (let c = 0; c < 20_000; c++) {
      const n = rng.intBetween(1, 8);
      const ids = Array.from({ length: n }, (_, i) => `v${i}`);
      const votes = new Map<string, boolean>();
      for (const id of ids) {
        const r = rng.intBetween(0, 3);
        if (r < 2) votes.set(id, r === 0);
      }
      votes.set("stranger", true); // never counted
      const yes = ids.filter((id) => votes.get(id) === true).length;
      const no = ids.filter((id) => votes.get(id) === false).length;
      const want = yes * 2 > n ? "won" : (n - no) * 2 > n ? "pending" : "lost";
      assert.equal(voteResult(ids, votes), want, `case ${c}`);
      const granted = new Set(ids.filter((id) => votes.get(id) === true));
      assert.equal(hasQuorum(ids, granted), yes * 2 > n);
    }
    assert.equal(committedIndex([], () => 5), 0, "no voters: nothing commits");
    assert.equal(voteResult([], new Map()), "lost");
  });
});
