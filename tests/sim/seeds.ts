/**
 * Runs a range of simulator seeds as one test (shared by the suite's sim
 * files, which split the range so the test runner can run them side by
 * side). Deno runs 1,000 seeds per file, 2,000 in all (it runs the simulator
 * fastest of the three: about 17 seeds/s on one core, Node and Bun about
 * 13), Node and Bun 50 each (the regression seeds run on all three): the
 * suite must stay within its time budget on 2 cores.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CURRENT_RUNTIME } from "../helpers/runtimes.ts";
import { runSeed } from "./run.ts";

/** Seeds per file on this runtime. */
export const SEEDS_PER_FILE = CURRENT_RUNTIME === "deno" ? 1000 : 50;

/** Registers one test running seeds [first, first + SEEDS_PER_FILE). */
export function seedRange(first: number): void {
  const last = first + SEEDS_PER_FILE - 1;
  test(`simulator (production driver): seeds ${first}..${last} stay safe and converge`, async () => {
    for (let seed = first; seed <= last; seed++) {
      const r = await runSeed({ seed });
      if (!r.ok) assert.fail(r.failure ?? `seed ${seed} failed; replay: ${r.replay}`);
    }
  });
}
