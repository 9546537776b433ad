/**
 * `npm test`: type-checks, builds dist/ (the compiled package, which the
 * install round trip in tests/install.test.ts packs), then runs the whole
 * suite on Node, Deno and Bun in turn, printing each runtime's own output and
 * a closing summary. Fails if any step fails. `npm test -- node` (or deno,
 * bun) runs one runtime only (after the type-check and the build).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";

interface Step {
  readonly name: string;
  readonly script: string;
  /** Pulls passed/failed counts out of the runner's output. */
  readonly count: (out: string) => { passed: number; failed: number } | null;
  /** Runs even when `npm test -- RUNTIME` picks one runtime. */
  readonly always?: boolean;
}

const lastInt = (out: string, re: RegExp): number | null => {
  const all = [...out.matchAll(re)];
  const m = all[all.length - 1];
  return m === undefined ? null : Number(m[1]);
};

const steps: Step[] = [
  { name: "typecheck", script: "check", count: () => null, always: true },
  { name: "build", script: "build", count: () => null, always: true },
  {
    name: "node",
    script: "test:node",
    count: (out) => {
      const passed = lastInt(out, /^# pass (\d+)/gm);
      const failed = lastInt(out, /^# fail (\d+)/gm);
      return passed === null || failed === null ? null : { passed, failed };
    },
  },
  {
    name: "deno",
    script: "test:deno",
    count: (out) => {
      const clean = out.replace(/\x1b\[[0-9;]*m/g, "");
      const m = /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps\))? \| (\d+) failed(?: \((\d+) steps?\))?/.exec(clean);
      if (m === null) return null;
      return { passed: Number(m[2] ?? m[1]), failed: Number(m[4] ?? m[3]) };
    },
  },
  {
    name: "bun",
    script: "test:bun",
    count: (out) => {
      const passed = lastInt(out, /^\s*(\d+) pass$/gm);
      const failed = lastInt(out, /^\s*(\d+) fail$/gm);
      return passed === null || failed === null ? null : { passed, failed };
    },
  },
];

function run(step: Step): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "--silent", step.script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      process.stdout.write(d);
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      process.stderr.write(d);
      out += d.toString();
    });
    child.on("exit", (code) => resolve({ code: code ?? 1, out }));
  });
}

const only = process.argv.slice(2);
const summary: string[] = [];
let passed = 0;
let failed = 0;
let bad = false;
for (const step of steps) {
  if (only.length > 0 && step.always !== true && !only.includes(step.name)) continue;
  const t0 = performance.now();
  console.log(`\n==== ${step.name} (npm run ${step.script})`);
  const { code, out } = await run(step);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const counts = step.count(out);
  if (counts !== null) {
    passed += counts.passed;
    failed += counts.failed;
  }
  if (code !== 0) bad = true;
  summary.push(`${step.name.padEnd(10)} ${code === 0 ? "ok    " : "FAILED"} ${secs.padStart(6)} s${counts === null ? "" : `  ${counts.passed} passed, ${counts.failed} failed`}`);
}
console.log(`\n==== summary\n${summary.join("\n")}`);
if (bad && failed === 0) failed = 1; // a runner that crashed counts as a failure
console.log(`${passed} passed, ${failed} failed`);
process.exit(bad ? 1 : 0);
