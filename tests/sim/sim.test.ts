/**
 * The seeded fault simulator as part of the suite: a few thousand seeds
 * across 3-, 5- and 7-member clusters, each checked for Raft's safety
 * properties after every step and for liveness once the faults stop (see
 * tests/sim/world.ts and checks.ts). A failure names the seed and the
 * command that replays it: `npm run sim -- --seed N --nodes M`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runSeed } from "./run.ts";

/** Seeds per cluster size; 3 x 700 = 2,100 seeds per runtime. */
const seedsPerSize = 700;

for (const [i, nodes] of [3, 5, 7].entries()) {
  const first = 1 + i * seedsPerSize;
  const last = first + seedsPerSize - 1;
  test(`simulator: ${nodes}-member clusters, seeds ${first}..${last}, stay safe and converge`, () => {
    for (let seed = first; seed <= last; seed++) {
      const r = runSeed({ seed, nodes });
      if (!r.ok) assert.fail(r.failure ?? `seed ${seed} failed; replay: ${r.replay}`);
    }
  });
}
