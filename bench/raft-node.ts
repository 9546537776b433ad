/**
 * The RaftNode benchmark: three member processes on loopback, fsync on, all
 * on the runtime this file runs on; proposals made inside the leader's
 * process with 1 and with 1,000 in flight, 100-byte entries. Prints
 * committed entries/s and p50/p99 commit latency, and in the same run the
 * disk's raw fdatasync latency and a loopback HTTP round trip, the two
 * physical limits a commit is made of. Runs it three times: with the
 * consensus loop on the caller's thread and in a worker (`thread` option,
 * env BENCH_THREAD for the members) on all three members, and with a worker
 * on the leader only ("worker-leader": the followers on their caller's
 * thread), which parts what worker mode costs the leader from what six busy
 * threads cost on a machine with fewer cores. BENCH_THREADS (a
 * comma-separated list of caller, worker, worker-leader) picks.
 * Each measured run also prints the CPU time the three member processes
 * used (all their threads: JS, GC, libuv, compiler) per committed entry,
 * and how many of the machine's cores that kept busy: where the cores are
 * all busy, the run is CPU-bound and entries/s is cores / (CPU per entry).
 * Each cluster first runs BENCH_WARMUP_SECONDS (default 2) of 1,000 in
 * flight, not measured, so that the JIT, the first segment and the
 * connection pools are warm: on Node, in alternating runs, the worker
 * thread's 1,000 in flight read 47,517 and 80,659 entries/s cold against
 * 67,194 and 101,391 warm (1 in flight: within the noise either way).
 *
 * Run: `npx tsx bench/raft-node.ts` (or `npm run bench -- raft-node` for all three runtimes).
 *
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { runtime } from "../adapters/mod.ts";
import { freePorts } from "../tests/helpers/ports.ts";
import { runCommand, type RuntimeName } from "../tests/helpers/runtimes.ts";
import { trackExit, waitFor, waitForLine } from "../tests/helpers/wait.ts";
import { percentile, printRow, processCpuUs } from "./report.ts";

const rt = runtime.name as RuntimeName;
const seconds = Number(process.env.BENCH_SECONDS ?? "5");
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? "2");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-bench-node-"));

/**
 * The two physical limits a commit is made of, measured beside the members:
 * a 300-byte pwrite + fdatasync in this process, and a round trip of a
 * 100-byte POST to a Hono echo server in another process on the same
 * runtime (a member's requests cross processes, and with them the cost of
 * waking another process, which one process talking to itself never pays),
 * with the CPU both ends spend on it.
 */
async function physicalLimits(): Promise<{ fsyncUs: number; rttUs: number; rttCpuUs: number }> {
  const fd = fs.openSync(path.join(root, "sync-test"), "w+");
  const block = new Uint8Array(300).fill(1);
  const syncUs: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    fs.writeSync(fd, block, 0, block.length, i * block.length);
    fs.fdatasyncSync(fd);
    syncUs.push((performance.now() - t) * 1000);
  }
  fs.closeSync(fd);
  const echo = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "echo-server.ts");
  const [cmd, args] = runCommand(rt, echo);
  const child = trackExit(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
  children.push(child);
  try {
    const port = Number(/^ready (\d+)/.exec(await waitForLine(child, /^ready \d+/, "the echo server", 60_000))![1]);
    const client = runtime.httpClient();
    // Through the same client: a first global fetch on Node loads undici, ~0.3 s of CPU inside the measurement.
    const serverCpu = async () =>
      (JSON.parse(new TextDecoder().decode((await client.request({ method: "GET", url: `http://127.0.0.1:${port}/cpu`, timeoutMs: 5000 })).body)) as { us: number }).us;
    const rtt: number[] = [];
    // 6,000 round trips warm both ends' JIT first: on Node the first 2,000 cost 2-4x the CPU of the ones after 4,000.
    const warm = 6000;
    let cpu0 = 0;
    let server0 = 0;
    for (let i = 0; i < warm + 2000; i++) {
      if (i === warm) {
        server0 = await serverCpu();
        cpu0 = processCpuUs();
      }
      const t = performance.now();
      await client.request({ method: "POST", url: `http://127.0.0.1:${port}/rpc`, body: new Uint8Array(100), timeoutMs: 5000 });
      if (i >= warm) rtt.push((performance.now() - t) * 1000);
    }
    const clientUs = processCpuUs() - cpu0;
    const serverUs = (await serverCpu()) - server0;
    client.close();
    return { fsyncUs: percentile(syncUs, 50), rttUs: percentile(rtt, 50), rttCpuUs: (clientUs + serverUs) / rtt.length };
  } finally {
    child.kill("SIGKILL");
  }
}

const ids = ["b1", "b2", "b3"];
const children: ReturnType<typeof spawn>[] = [];
const threads = (process.env.BENCH_THREADS ?? "caller,worker,worker-leader").split(",");
/** The `thread` option of the first member (made leader) and of the others, by configuration. */
const _MODES: Record<string, readonly [string, string]> = { caller: ["caller", "caller"], worker: ["worker", "worker"], "worker-leader": ["worker", "caller"] };
const _LABELS: Record<string, string> = { caller: "caller thread", worker: "worker thread", "worker-leader": "worker on the leader only" };
for (const t of threads) if (_MODES[t] === undefined) throw new Error(`BENCH_THREADS: unknown configuration ${t} (caller, worker, worker-leader)`);
try {
  const limits = await physicalLimits();
  printRow(rt, "raw 300-byte pwrite+fdatasync p50", `${limits.fsyncUs.toFixed(0)} us`);
  printRow(rt, "loopback HTTP round trip p50, two processes", `${limits.rttUs.toFixed(0)} us`);
  printRow(rt, "  CPU per round trip, client and server", `${limits.rttCpuUs.toFixed(0)} us`);
  const fixture = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "bench-member.ts");
  const results = new Map<string, { entriesPerSec: number; p50Ms: number }>();
  for (const thread of threads) {
    const ports = await freePorts(3);
    const flag = ids.map((id, i) => `${id}=http://127.0.0.1:${ports[i]}`).join(",");
    const mine: ReturnType<typeof spawn>[] = [];
    for (let i = 0; i < 3; i++) {
      const [cmd, args] = runCommand(rt, fixture, ["--data", path.join(root, thread, ids[i]!), "--id", ids[i]!, "--port", String(ports[i]), "--members", flag]);
      const child = trackExit(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, BENCH_THREAD: _MODES[thread]![i === 0 ? 0 : 1] } }));
      children.push(child);
      mine.push(child);
      await waitForLine(child, /^ready /, `bench member ${ids[i]} (${thread})`, 60_000);
    }
    const leads = async (p: number) => (await (await fetch(`http://127.0.0.1:${p}/st`)).json() as { role: string }).role === "leader";
    let leaderPort = await waitFor("a leader", async () => {
      for (const p of ports) if (await leads(p)) return p;
      return undefined;
    }, 30_000);
    if (thread === "worker-leader" && leaderPort !== ports[0]) {
      // The leader must be the member in worker mode, the first.
      const res = await fetch(`http://127.0.0.1:${leaderPort}/transfer?to=${ids[0]}`, { method: "POST" });
      if (res.status !== 204) throw new Error(`leadership transfer to ${ids[0]}: ${res.status} ${await res.text()}`);
      await waitFor(`${ids[0]} to lead`, () => leads(ports[0]!), 30_000);
      leaderPort = ports[0]!;
    }
    const cpuUs = async () => await Promise.all(ports.map(async (p) => ((await (await fetch(`http://127.0.0.1:${p}/cpu`)).json()) as { us: number }).us));
    const leaderAt = ports.indexOf(leaderPort);
    const bench = async (inflight: number, secs: number) =>
      await (await fetch(`http://127.0.0.1:${leaderPort}/bench?inflight=${inflight}&seconds=${secs}&bytes=100`, { method: "POST" })).json() as {
        entriesPerSec: number; p50Ms: number; p99Ms: number; leaderChanged: boolean; failed: number; done: number; rpcsPerSec: number; fsyncs: number;
      };
    if (warmupSeconds > 0) {
      await bench(1000, warmupSeconds);
      printRow(rt, `${_LABELS[thread]}: warm-up, not measured`, `${warmupSeconds} s at 1,000 in flight`);
    }
    for (const inflight of [1, 1000]) {
      const cpu0 = await cpuUs();
      const t0 = performance.now();
      const res = await bench(inflight, seconds);
      const wallUs = (performance.now() - t0) * 1000;
      const cpu = (await cpuUs()).map((us, i) => us - cpu0[i]!);
      results.set(`${thread}/${inflight}`, res);
      printRow(rt, `${_LABELS[thread]}: 3 members, ${inflight} in flight, 100-byte entries`, `${Math.round(res.entriesPerSec).toLocaleString("en-US")} entries/s, p50 ${res.p50Ms.toFixed(2)} ms, p99 ${res.p99Ms.toFixed(2)} ms, ${(res.done / Math.max(1, res.fsyncs)).toFixed(0)} entries per leader fsync, ${Math.round(res.rpcsPerSec).toLocaleString("en-US")} leader rpcs/s${res.leaderChanged ? ", LEADER CHANGED" : ""}${res.failed > 0 ? `, ${res.failed} failed` : ""}`);
      const perEntry = (us: number) => (us / Math.max(1, res.done)).toFixed(1);
      const followers = cpu.filter((_, i) => i !== leaderAt).map(perEntry).join(" / ");
      const total = cpu.reduce((a, b) => a + b, 0);
      printRow(rt, "  CPU per committed entry, all threads of the 3 members", `${perEntry(total)} us (leader ${perEntry(cpu[leaderAt]!)}, followers ${followers}); ${(total / wallUs).toFixed(2)} of ${os.availableParallelism()} cores busy`);
      if (inflight === 1) {
        const bound = 2 * (limits.fsyncUs + limits.rttUs) / 1000;
        printRow(rt, "  p50 vs goal 2x (fdatasync + round trip)", `${res.p50Ms.toFixed(2)} ms vs ${bound.toFixed(2)} ms (${(res.p50Ms / bound).toFixed(2)}x of the goal)`);
      }
    }
    for (const c of mine) c.kill("SIGKILL");
  }
  for (const which of ["worker", "worker-leader"]) {
    for (const inflight of [1, 1000]) {
      const c = results.get(`caller/${inflight}`);
      const w = results.get(`${which}/${inflight}`);
      if (c === undefined || w === undefined) continue;
      printRow(rt, `  ${which} vs caller, ${inflight} in flight (goal: <= 10% throughput, <= +0.1 ms p50)`, `throughput ${((w.entriesPerSec / c.entriesPerSec - 1) * 100).toFixed(1)}%, p50 ${(w.p50Ms - c.p50Ms) >= 0 ? "+" : ""}${(w.p50Ms - c.p50Ms).toFixed(3)} ms`);
    }
  }
} finally {
  for (const c of children) c.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 200));
  fs.rmSync(root, { recursive: true, force: true });
}
process.exit(0);
