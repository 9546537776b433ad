/**
 * Measures what the runtime adapters cost on this machine, for the runtime
 * it runs on: taking and releasing the directory lock, a 4 KiB positional
 * write + `fdatasync` (the disk's physical limit for a durable append), and
 * a loopback HTTP round trip through `serve` and `httpClient` (the floor of
 * a peer RPC), sequentially and with 32 in flight.
 *
 * Run: `npx tsx bench/adapters.ts`, `npx deno run -A bench/adapters.ts`,
 * `npx bun bench/adapters.ts` (or all three through `npm run bench`).
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { Hono } from "hono";
import { runtime } from "../adapters/mod.ts";
import { percentile, printRow } from "./report.ts";

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raft-bench-adapters-"));
  try {
    // Lock: take + release.
    const lockUs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      runtime.lockDir(dir).release();
      lockUs.push((performance.now() - t) * 1000);
    }
    printRow(runtime.name, "lock take+release", `p50 ${percentile(lockUs, 50).toFixed(1)} us`);

    // fdatasync after a 4 KiB pwrite at a growing offset (an append).
    const fd = fs.openSync(path.join(dir, "sync-test"), "w+");
    const block = new Uint8Array(4096).fill(7);
    const syncUs: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      fs.writeSync(fd, block, 0, block.length, i * block.length);
      fs.fdatasyncSync(fd);
      syncUs.push((performance.now() - t) * 1000);
    }
    fs.closeSync(fd);
    printRow(runtime.name, "4 KiB pwrite+fdatasync", `p50 ${percentile(syncUs, 50).toFixed(0)} us, p99 ${percentile(syncUs, 99).toFixed(0)} us`);

    // Loopback RPC round trip with a 100-byte binary body.
    const app = new Hono();
    app.post("/rpc", async (c) => c.body(new Uint8Array(await c.req.arrayBuffer())));
    const server = await runtime.serve(app, "127.0.0.1", 0);
    const client = runtime.httpClient();
    const req = { method: "POST" as const, url: `http://127.0.0.1:${server.port}/rpc`, body: new Uint8Array(100), timeoutMs: 5000 };
    for (let i = 0; i < 200; i++) await client.request(req); // warm up
    const rttUs: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = performance.now();
      await client.request(req);
      rttUs.push((performance.now() - t) * 1000);
    }
    printRow(runtime.name, "HTTP round trip (1 in flight)", `p50 ${percentile(rttUs, 50).toFixed(0)} us, p99 ${percentile(rttUs, 99).toFixed(0)} us`);
    const total = 20_000;
    const t0 = performance.now();
    let sent = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (sent < total) {
        sent++;
        await client.request(req);
      }
    }));
    const rps = total / ((performance.now() - t0) / 1000);
    printRow(runtime.name, "HTTP requests/s (32 in flight)", `${Math.round(rps).toLocaleString("en-US")} req/s`);
    client.close();
    await server.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
