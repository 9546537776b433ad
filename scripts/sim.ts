/**
 * Command line of the seeded simulator (tests/sim/), which runs the
 * production driver (`src/node/driver.ts`) on simulated disks, network and
 * time.
 *
 *   npm run sim -- --seed N [--nodes 3|5|7] [--verbose]   one seed (--verbose prints its trace)
 *   npm run sim -- --seeds COUNT [--from FIRST] [--nodes 3|5|7]
 *                                                          COUNT seeds from FIRST; stops at the first failure
 *   --ticks T       length of the fault phase (default 500)
 *
 * A failure prints the seed, the command that replays it, and the end of
 * its trace; the exit code is 1. Also runs under Deno and Bun:
 * `npx deno run -A scripts/sim.ts --seeds 100`, `npx bun scripts/sim.ts --seeds 100`.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { faultTicksDefault, runSeed, tickMs } from "../tests/sim/run.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seed: { type: "string" },
    seeds: { type: "string" },
    from: { type: "string" },
    nodes: { type: "string" },
    ticks: { type: "string" },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

function usage(code: number): never {
  console.log("usage: npm run sim -- (--seed N [--verbose] | --seeds COUNT [--from FIRST]) [--nodes 3|5|7] [--ticks T]");
  process.exit(code);
}

function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    console.error(`--${name} must be an integer, got ${v}`);
    usage(2);
  }
  return n;
}

if (values.help) usage(0);
const seed = intArg("seed", values.seed);
const count = intArg("seeds", values.seeds);
const from = intArg("from", values.from) ?? 1;
const nodes = intArg("nodes", values.nodes);
const faultTicks = intArg("ticks", values.ticks) ?? faultTicksDefault;
if (nodes !== undefined && ![3, 5, 7].includes(nodes)) {
  console.error(`--nodes must be 3, 5 or 7, got ${nodes}`);
  usage(2);
}
if ((seed === undefined) === (count === undefined)) usage(2);

/** Re-runs a failed seed with tracing on and prints the end of the trace. */
async function printTraceTail(s: number, lines: number): Promise<void> {
  const tail: string[] = [];
  await runSeed({ seed: s, faultTicks, trace: (l) => {
    tail.push(l);
    if (tail.length > lines * 2) tail.splice(0, tail.length - lines);
  }, ...(nodes === undefined ? {} : { nodes }) });
  console.log(`--- last ${Math.min(lines, tail.length)} trace lines of seed ${s} (replay with --verbose for all) ---`);
  console.log(tail.slice(-lines).join("\n"));
}

const nodesOpt = nodes === undefined ? {} : { nodes };
if (seed !== undefined) {
  const r = await runSeed({ seed, faultTicks, trace: values.verbose ? (l) => console.log(l) : null, ...nodesOpt });
  if (!r.ok) {
    if (!values.verbose) await printTraceTail(seed, 60);
    console.log(r.failure);
    process.exit(1);
  }
  console.log(`seed ${seed} ok (${r.nodes} nodes): ${JSON.stringify(r.stats)}`);
} else {
  const total = count as number;
  const t0 = performance.now();
  let ticks = 0;
  const byNodes = new Map<number, number>();
  for (let s = from; s < from + total; s++) {
    const r = await runSeed({ seed: s, faultTicks, ...nodesOpt });
    ticks += r.stats.ticks;
    byNodes.set(r.nodes, (byNodes.get(r.nodes) ?? 0) + 1);
    if (!r.ok) {
      await printTraceTail(s, 60);
      console.log(r.failure);
      console.log(`${s - from} seeds passed before seed ${s} failed`);
      process.exit(1);
    }
    if ((s - from + 1) % 100 === 0) {
      const secs = (performance.now() - t0) / 1000;
      console.log(`  ${s - from + 1} seeds ok (${((s - from + 1) / secs).toFixed(1)} seeds/s)`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const simSecs = (ticks * tickMs) / 1000;
  const split = [...byNodes.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${c}x${n}`).join(" ");
  console.log(
    `${total} seeds ok (${from}..${from + total - 1}; ${split} nodes) in ${secs.toFixed(1)} s: ${(total / secs).toFixed(1)} seeds/s, ` +
      `${ticks} ticks = ${simSecs.toFixed(0)} simulated s (${tickMs} ms/tick), ${(simSecs / secs).toFixed(0)} simulated s per wall-clock s`,
  );
}
