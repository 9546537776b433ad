/**
 * The membership encoding: round trips, and garbage always rejected with
 * InvalidArgumentError (never another error, never a wrong value).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "../../src/errors.ts";
import { decodeMembership, encodeMembership } from "../../src/raft/membership-codec.ts";
import { Prng } from "../../src/raft/prng.ts";
import type { Member } from "../../src/raft/types.ts";

describe("membership codec", () => {
  it("round-trips member lists", () => {
    const cases: Member[][] = [
      [],
      [{ id: "n1", url: "http://127.0.0.1:7001", voter: true }],
      [{ id: "n1", url: "", voter: true }, { id: "nœud-2", url: "http://[::1]:7002", voter: false }],
    ];
    for (const c of cases) assert.deepEqual(decodeMembership(encodeMembership(c)), c);
  });

  it("rejects bad input to encode", () => {
    assert.throws(() => encodeMembership([{ id: "", url: "", voter: true }]), InvalidArgumentError);
    assert.throws(() => encodeMembership([{ id: "a", url: "", voter: true }, { id: "a", url: "", voter: false }]), InvalidArgumentError);
  });

  it("rejects truncated, extended, and random bytes with InvalidArgumentError", () => {
    const good = encodeMembership([{ id: "n1", url: "http://a", voter: true }, { id: "n2", url: "http://b", voter: false }]);
    for (let len = 0; len < good.length; len++) assert.throws(() => decodeMembership(good.subarray(0, len)), InvalidArgumentError, `prefix of ${len}`);
    assert.throws(() => decodeMembership(new Uint8Array([...good, 0])), InvalidArgumentError);
    const bad = good.slice();
    bad[3] = 2; // unknown flag
    assert.throws(() => decodeMembership(bad), InvalidArgumentError);
    const seed = 99;
    const rng = new Prng(seed);
    for (let c = 0; c < 5000; c++) {
      const bytes = good.slice();
      const flips = rng.intBetween(1, 4);
      for (let f = 0; f < flips; f++) bytes[rng.intBetween(0, bytes.length)] = rng.intBetween(0, 256);
      try {
        const out = decodeMembership(bytes);
        // A valid decoding must re-encode to the same bytes.
        assert.deepEqual(encodeMembership(out), bytes, `case ${c} (seed ${seed})`);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError, `case ${c} (seed ${seed}): ${String(e)}`);
      }
    }
  });
});
