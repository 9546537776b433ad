/**
 * `npm run bench`: runs every benchmark file on Node, Deno and Bun, one after
 * the other (never in parallel: they would measure each other), and prints
 * their figures. `npm run bench -- adapters storage` runs only those.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runCommand, RUNTIMES } from "../tests/helpers/runtimes.ts";

const benchDir = path.dirname(fileURLToPath(import.meta.url));
// kv.ts drives all three runtimes and etcd itself (`npm run bench:kv`).
const skip = new Set(["run.ts", "report.ts", "kv.ts"]);
const wanted = process.argv.slice(2);
const files = fs.readdirSync(benchDir)
  .filter((f) => f.endsWith(".ts") && !skip.has(f))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.ts$/, "")))
  .sort();

let failed = false;
for (const file of files) {
  console.log(`\n== ${file}`);
  for (const rt of RUNTIMES) {
    const [cmd, args] = runCommand(rt, path.join(benchDir, file));
    const res = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, BENCH_RUNTIME: rt } });
    if (res.status !== 0) {
      console.log(`${rt}: ${file} failed with exit code ${res.status}`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
