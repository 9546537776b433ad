/**
 * Simulator seeds that once found a defect in the production driver or in
 * the simulator's own checks, each with what it found (the suite's seed ranges
 * do not reach them).
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runSeed } from "./run.ts";

const FOUND: readonly { seed: number; what: string }[] = [
  {
    seed: 100190,
    what: "one write batch held two Readies: the first acknowledged entry 39 to term 3's leader, the second moved to term 4 and truncated it; the ack went out after the truncation was durable",
  },
  {
    seed: 115541,
    what: "transferLeadership on a member stopped by a failed fsync threw instead of returning a rejected promise",
  },
  {
    seed: 119964,
    what: "a compaction's failed fdatasync poisoned the log while a write batch finished; advancing the core then threw an unhandled rejection that killed the process",
  },
  {
    seed: 219445,
    what: "checker false alarm: entry 134 was applied after a received snapshot at 148 had replaced the log under the apply chain; the entry lives in that snapshot, which the check did not count as durable",
  },
  {
    seed: 269018,
    what: "the same false alarm as 219445 on a 7-member cluster with joins and removals",
  },
  {
    seed: 1057014,
    what: "simulator's liveness bound: it counted the backlog of the running members only, but n3, restarting as the faults stopped, came back with 215 entries (44 committed), led, and replicated them one 1-byte message at a time",
  },
];

for (const { seed, what } of FOUND) {
  test(`simulator seed ${seed} stays safe (${what})`, async () => {
    const r = await runSeed({ seed });
    if (!r.ok) assert.fail(r.failure ?? `seed ${seed} failed; replay: ${r.replay}`);
  });
}
