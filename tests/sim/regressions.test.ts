/**
 * Simulator seeds that once found a defect in the production driver, each
 * with what it found (the suite's seed ranges do not reach them).
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
];

for (const { seed, what } of FOUND) {
  test(`simulator seed ${seed} stays safe (${what})`, async () => {
    const r = await runSeed({ seed });
    if (!r.ok) assert.fail(r.failure ?? `seed ${seed} failed; replay: ${r.replay}`);
  });
}
