/**
 * The ceiling of the KV HTTP layer alone: `apiRoutes` served by this
 * runtime's adapter over a stand-in node that applies each proposal at once
 * (no consensus, no disk), driven by `wrk` with the same 100-byte PUTs as
 * bench/kv.ts. What this prints minus what bench/kv.ts prints is the cost
 * of replication and fsync.
 *
 * Run: `npx tsx bench/kv-api.ts` (or `npm run bench -- kv-api` for all three runtimes).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { runtime } from "../adapters/mod.ts";
import { apiRoutes } from "../src/api/routes.ts";
import { KvStateMachine } from "../src/kv/state-machine.ts";
import { FakeNode } from "../tests/api/fake-node.ts";
import { printRow } from "./report.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? "5");
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "kv-put.lua");

if (spawnSync("wrk", ["--version"]).error !== undefined) {
  console.log("kv-api: skipped, wrk is not installed (Debian/Ubuntu: apt-get update && apt-get install -y wrk)");
  process.exit(0);
}

const kv = new KvStateMachine();
const app = new Hono();
apiRoutes(app, new FakeNode(kv), kv);
const server = await runtime.serve(app, "127.0.0.1", 0);
try {
  for (const conns of [1, 128]) {
    // wrk runs as a child while this process serves: spawn it asynchronously.
    const out = await new Promise<string>((resolve, reject) => {
      import("node:child_process").then(({ spawn }) => {
        const child = spawn("wrk", ["-t", String(Math.min(2, conns)), "-c", String(conns), "-d", `${seconds}s`, "--latency", "-s", script, `http://127.0.0.1:${server.port}`]);
        let text = "";
        child.stdout.on("data", (d: Buffer) => (text += d.toString()));
        child.on("error", reject);
        child.on("close", () => resolve(text));
      }, reject);
    });
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? "n/a";
    const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "n/a";
    const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "n/a";
    printRow(runtime.name, `KV HTTP layer only, PUT 100 B, ${conns} conn`, `${rps} req/s, p50 ${p50}, p99 ${p99}`);
  }
} finally {
  await server.close();
}
