/**
 * `npm run bench -- trace` (or `npx tsx bench/trace.ts`): where the time of
 * one write goes. Three members on loopback (`raft start`, on
 * BENCH_RUNTIME, default node) record each write's stages
 * (`RAFT_TRACE_WRITES`, src/node/write-trace.ts); this process sends
 * sequential 100-byte PUTs to the leader over one keep-alive connection and
 * prints the median time of each step, from the client's send to the
 * client's receipt of the answer:
 *
 *   client send → propose (HTTP accept, route, thread hops) → leader durable
 *   → MsgApp sent → follower received → follower durable → ack sent → ack
 *   received → committed → applied → answer received
 *
 * All processes stamp with the machine's monotonic clock (CLOCK_MONOTONIC:
 * the adapter's `monotonicNs`, in the members and in this process), so the
 * steps line up across them on every runtime, whichever runs this file.
 * BENCH_WRITES (default 1000) writes are measured after 200 of warm-up;
 * BENCH_THREAD=caller runs the members with the consensus loop on the
 * caller's thread (default: worker).
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { runtime } from "../adapters/mod.ts";
import { freePorts } from "../tests/helpers/ports.ts";
import { REPO_ROOT, runCommand } from "../tests/helpers/runtimes.ts";
import type { RuntimeName } from "../tests/helpers/runtimes.ts";
import { exited, trackExit, waitFor } from "../tests/helpers/wait.ts";

const rt = (process.env.BENCH_RUNTIME ?? "node") as RuntimeName;
const writes = Number(process.env.BENCH_WRITES ?? "1000");
const CLI = path.join(REPO_ROOT, "cli.ts");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-trace-"));
const traceDir = path.join(root, "trace");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? {} : { "content-length": Buffer.byteLength(body) } }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const ports = await freePorts(3);
const ids = ["n1", "n2", "n3"];
const children: ChildProcess[] = [];
function start(i: number, extra: string[]): void {
  const env = { ...process.env, RAFT_TRACE_WRITES: traceDir };
  const args = ["start", "--id", ids[i]!, "--data", path.join(root, ids[i]!), "--listen", `127.0.0.1:${ports[i]}`, ...extra];
  if (process.env.BENCH_THREAD === "caller") args.push("--thread", "caller");
  const [cmd, argv] = runCommand(rt, CLI, args);
  children.push(trackExit(spawn(cmd, argv, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "ignore"], env })));
}
const url = (i: number) => `http://127.0.0.1:${ports[i]}`;
try {
  start(0, ["--bootstrap"]);
  await waitFor("n1 to lead", async () => (await request("GET", `${url(0)}/status`).catch(() => null))?.body.includes('"role":"leader"') === true, 60_000);
  start(1, ["--join", url(0)]);
  start(2, ["--join", url(0)]);
  await waitFor("3 voters", async () => {
    const r = await request("GET", `${url(0)}/status`).catch(() => null);
    if (r === null) return false;
    const st = JSON.parse(r.body) as { members: { voter: boolean }[] };
    return st.members.length === 3 && st.members.every((m) => m.voter);
  }, 120_000);
  const value = "x".repeat(100);
  for (let i = 0; i < 200; i++) await request("PUT", `${url(0)}/kv/warm${i}`, value);
  const sent = new Map<number, { t0: bigint; t1: bigint }>();
  for (let i = 0; i < writes; i++) {
    const t0 = runtime.monotonicNs();
    const r = await request("PUT", `${url(0)}/kv/k${i}`, value);
    const t1 = runtime.monotonicNs();
    if (r.status !== 200) throw new Error(`PUT answered ${r.status} ${r.body}`);
    sent.set((JSON.parse(r.body) as { index: number }).index, { t0, t1 });
  }
  await new Promise((r) => setTimeout(r, 600)); // the members write their trace lines every 200 ms
  for (const c of children) c.kill("SIGTERM");
  await Promise.all(children.map((c) => exited(c)));

  /** For each stage, the (index, time) lines in file order. */
  const read = (id: string) => {
    const out = new Map<string, { index: number; t: bigint }[]>();
    for (const line of fs.readFileSync(path.join(traceDir, `${id}.trace`), "utf8").split("\n")) {
      const [stage, index, t] = line.split(" ");
      if (stage === undefined || index === undefined || t === undefined) continue;
      let list = out.get(stage);
      if (list === undefined) out.set(stage, (list = []));
      list.push({ index: Number(index), t: BigInt(t) });
    }
    return out;
  };
  /** The first time `stage` reached `index` or beyond, at or after `after`. */
  const first = (trace: Map<string, { index: number; t: bigint }[]>, stage: string, index: number, after: bigint): bigint | null => {
    for (const x of trace.get(stage) ?? []) if (x.index >= index && x.t >= after) return x.t;
    return null;
  };
  const leader = read("n1");
  const followers = [read("n2"), read("n3")];
  const steps: Record<string, number[]> = {};
  const add = (name: string, a: bigint | null, b: bigint | null) => {
    if (a === null || b === null) return;
    (steps[name] ??= []).push(Number(b - a) / 1e6);
  };
  for (const [index, { t0, t1 }] of sent) {
    const propose = first(leader, "propose", index, t0);
    const durable = first(leader, "durable", index, t0);
    const sendApp = first(leader, "send-app", index, t0);
    const recvAck = first(leader, "recv-ack", index, t0);
    const commit = first(leader, "commit", index, t0);
    const apply = first(leader, "apply", index, t0);
    const applied = first(leader, "applied", index, t0);
    add("client send -> propose (accept, route, threads)", t0, propose);
    add("propose -> leader durable (its fdatasync)", propose, durable);
    add("propose -> MsgApp sent", propose, sendApp);
    // The follower whose ack came first is the one that committed the entry.
    let best: { recv: bigint | null; durable: bigint | null; ack: bigint | null } | null = null;
    for (const f of followers) {
      const ack = first(f, "send-ack", index, t0);
      if (ack !== null && (best === null || best.ack === null || ack < best.ack)) best = { recv: first(f, "recv-app", index, t0), durable: first(f, "durable", index, t0), ack };
    }
    if (best !== null) {
      add("MsgApp sent -> follower received", sendApp, best.recv);
      add("follower received -> follower durable", best.recv, best.durable);
      add("follower durable -> ack sent", best.durable, best.ack);
      add("ack sent -> leader received it", best.ack, recvAck);
    }
    add("ack received -> committed", recvAck, commit);
    add("committed -> apply handed over", commit, apply);
    add("apply handed over -> applied", apply, applied);
    add("applied -> client received the answer", applied, t1);
    add("total (client round trip)", t0, t1);
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? NaN;
  };
  console.log(`\none write, end to end: ${rt}, thread ${process.env.BENCH_THREAD ?? "worker"}, ${sent.size} sequential 100-byte PUTs (median ms)`);
  for (const [name, xs] of Object.entries(steps)) console.log(`  ${median(xs).toFixed(3).padStart(8)}  ${name}  (n=${xs.length})`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  agent.destroy();
  fs.rmSync(root, { recursive: true, force: true });
}
