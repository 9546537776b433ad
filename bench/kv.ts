/**
 * `npm run bench:kv`: the built-in KV store under load from `wrk`, beside
 * etcd 3.4 driven the same way in the same run. Three members on loopback,
 * fsync on, 100-byte PUTs to the leader at 1 and at 128 connections; for
 * each runtime the members run on (node, deno, bun), requests/s, p50 and
 * p99 latency, and the ratios to etcd. Goals: throughput >= 1.5x etcd's at
 * 128 connections; p50 at 1 connection no worse than etcd's.
 *
 * TLS: each system also runs with TLS on, in the same run: members serve
 * HTTPS and verify each other's certificates against one CA (mutual TLS
 * between members: raft-ts with --cert-file/--key-file/--trusted-ca-file,
 * etcd with the same certificates on its client and peer URLs and
 * --peer-client-cert-auth); wrk speaks HTTPS to the leader without a client
 * certificate. Certificates are made with openssl (tests/helpers/certs.ts).
 * The summary gives the cost of TLS as a ratio to the plain run.
 *
 * Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_RUNTIME (one
 * runtime instead of all three; `npm run bench` sets it), BENCH_ETCD=0 to
 * skip etcd, BENCH_TLS=0 (plain only) or BENCH_TLS=only. Needs `wrk`
 * (Debian: apt-get update && apt-get install -y wrk); etcd is started by
 * ../shared/bench/etcd-cluster.sh (it installs Debian's etcd-server and
 * etcd-client if missing), etcd with TLS directly by this file.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { freePorts } from "../tests/helpers/ports.ts";
import { REPO_ROOT, runCommand, RUNTIMES } from "../tests/helpers/runtimes.ts";
import type { RuntimeName } from "../tests/helpers/runtimes.ts";
import { exited, trackExit, waitFor } from "../tests/helpers/wait.ts";
import { runtime } from "../adapters/mod.ts";
import type { HttpClient } from "../adapters/types.ts";
import { makeTestCerts, type TestCerts } from "../tests/helpers/certs.ts";

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(REPO_ROOT, "cli.ts");
const seconds = Number(process.env.BENCH_SECONDS ?? "10");
const runtimes: readonly RuntimeName[] = process.env.BENCH_RUNTIME !== undefined ? [process.env.BENCH_RUNTIME as RuntimeName] : RUNTIMES;
const CONNECTIONS = [1, 128] as const;
const tlsModes: readonly boolean[] = process.env.BENCH_TLS === "0" ? [false] : process.env.BENCH_TLS === "only" ? [true] : [false, true];

/** What one wrk run measured. */
interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Non-2xx/3xx answers plus socket errors. */
  readonly errors: number;
}

function _ms(value: string, unit: string): number {
  const v = Number(value);
  return unit === "us" ? v / 1000 : unit === "s" ? v * 1000 : v;
}

function wrk(url: string, script: string, conns: number, durationS: number): WrkResult {
  const args = ["-t", String(Math.min(2, conns)), "-c", String(conns), "-d", `${durationS}s`, "--latency", "--timeout", "10s", "-s", script, url];
  const r = spawnSync("wrk", args, { encoding: "utf8" });
  const out = r.stdout ?? "";
  if (r.status !== 0) throw new Error(`wrk ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  const lat = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    return m === null ? Number.NaN : _ms(m[1]!, m[2]!);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: lat(50),
    p99Ms: lat(99),
    requests: num(/(\d+) requests in/),
    errors: (/Non-2xx or 3xx responses: (\d+)/.test(out) ? num(/Non-2xx or 3xx responses: (\d+)/) : 0) + sockErrors,
  };
}

/** GETs `url` (over TLS trusting the bench CA when it is https), body as text. */
let _client: HttpClient | null = null;
async function getText(url: string): Promise<{ status: number; text: string }> {
  _client ??= runtime.httpClient(certs === null ? undefined : { ca: certs.ca.cert });
  const res = await _client.request({ method: "GET", url, timeoutMs: 5000 });
  return { status: res.status, text: new TextDecoder().decode(res.body) };
}

async function proposals(url: string): Promise<number> {
  // A pooled keep-alive connection the server has since closed fails once ("other side closed"): retry.
  const text = await waitFor(`${url}/metrics`, async () => (await getText(`${url}/metrics`)).text, 10_000);
  return Number(/^raft_proposals_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/** A 3-member raft-ts cluster on `rt`: bootstrapped statically, started with the CLI; with `tls`, mutual TLS between members. */
async function startRaft(rt: RuntimeName, root: string, tls: boolean): Promise<{ leader: string; stop: () => Promise<void> }> {
  const ids = ["k1", "k2", "k3"];
  const ports = await freePorts(3);
  const scheme = tls ? "https" : "http";
  const members = ids.map((id, i) => `${id}=${scheme}://127.0.0.1:${ports[i]}`).join(",");
  const tlsFlags = tls ? ["--cert-file", certs!.member.certFile, "--key-file", certs!.member.keyFile, "--trusted-ca-file", certs!.ca.certFile] : [];
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(children.map((c) => exited(c)));
  };
  try {
    for (const id of ids) {
      const [cmd, args] = runCommand(rt, CLI, ["bootstrap", "--data", path.join(root, id), "--id", id, "--members", members]);
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`raft bootstrap ${id} failed: ${r.stderr}`);
    }
    for (const id of ids) {
      const [cmd, args] = runCommand(rt, CLI, ["start", "--data", path.join(root, id), ...tlsFlags]);
      const log = fs.openSync(path.join(root, `${id}.log`), "w");
      children.push(trackExit(spawn(cmd, args, { stdio: ["ignore", "ignore", log] })));
    }
    const leader = await waitFor("a raft-ts leader", async () => {
      for (const p of ports) {
        try {
          const s = JSON.parse((await getText(`${scheme}://127.0.0.1:${p}/status`)).text) as { role: string };
          if (s.role === "leader") return `${scheme}://127.0.0.1:${p}`;
        } catch {
          // not up yet
        }
      }
      return undefined;
    }, 60_000);
    return { leader, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function etcdScript(): string | null {
  for (const dir of [path.resolve(REPO_ROOT, "../shared/bench"), "/work/shared/bench"]) {
    if (fs.existsSync(path.join(dir, "etcd-cluster.sh"))) return dir;
  }
  return null;
}

/**
 * A 3-member etcd cluster with TLS on client and peer URLs, the bench
 * certificates, peers verifying each other (--peer-client-cert-auth);
 * ports from the free-port helper. Returns the leader's client URL.
 */
async function startEtcdTls(root: string): Promise<{ leader: string; stop: () => Promise<void> }> {
  const ports = await freePorts(6);
  const client = (i: number) => `https://127.0.0.1:${ports[i]}`;
  const peer = (i: number) => `https://127.0.0.1:${ports[3 + i]}`;
  const cluster = [0, 1, 2].map((i) => `e${i + 1}=${peer(i)}`).join(",");
  const c = certs!;
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const ch of children) ch.kill("SIGKILL");
    await Promise.all(children.map((ch) => exited(ch)));
  };
  try {
    for (let i = 0; i < 3; i++) {
      const log = fs.openSync(path.join(root, `e${i + 1}.log`), "w");
      children.push(trackExit(spawn("etcd", [
        "--name", `e${i + 1}`, "--data-dir", path.join(root, `e${i + 1}`),
        "--listen-client-urls", client(i), "--advertise-client-urls", client(i),
        "--listen-peer-urls", peer(i), "--initial-advertise-peer-urls", peer(i),
        "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error",
        "--cert-file", c.member.certFile, "--key-file", c.member.keyFile,
        "--peer-cert-file", c.member.certFile, "--peer-key-file", c.member.keyFile,
        "--peer-trusted-ca-file", c.ca.certFile, "--peer-client-cert-auth",
      ], { stdio: ["ignore", "ignore", log] })));
    }
    const endpoints = [0, 1, 2].map(client).join(",");
    const leader = await waitFor("an etcd leader (TLS)", () => {
      const r = spawnSync("etcdctl", ["--endpoints", endpoints, "--cacert", c.ca.certFile, "endpoint", "status", "-w", "json"], { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
      if (r.status !== 0) return undefined;
      const all = JSON.parse(r.stdout) as { Endpoint: string; Status: { leader: string; header: { member_id: string } } }[];
      // etcdctl prints ids as numbers; compare them as the text JSON holds (no precision loss with a regex).
      const found = all.find((e) => String(e.Status.leader) === String(e.Status.header.member_id));
      return found === undefined ? undefined : found.Endpoint;
    }, 30_000);
    return { leader, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function row(name: string, conns: number, r: WrkResult): string {
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
  return `${name.padEnd(14)} ${String(conns).padStart(5)} ${f(r.rps, 0).padStart(9)} ${f(r.p50Ms).padStart(9)} ${f(r.p99Ms).padStart(9)} ${String(r.errors).padStart(7)}`;
}

if (spawnSync("wrk", ["--version"]).error !== undefined) {
  console.log("bench:kv needs wrk, which is not installed. On Debian/Ubuntu: apt-get update && apt-get install -y wrk");
  process.exit(1);
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-bench-kv-"));
const certs: TestCerts | null = tlsModes.includes(true) ? makeTestCerts() : null;
const results = new Map<string, Map<number, WrkResult>>();
const warmupS = Math.max(1, Math.round(seconds / 5));
const lines: string[] = [];
try {
  for (const rt of runtimes) for (const tls of tlsModes) {
    const name = `raft-ts ${rt}${tls ? " TLS" : ""}`;
    const dir = path.join(root, `${rt}${tls ? "-tls" : ""}`);
    const cluster = await startRaft(rt, dir, tls);
    try {
      wrk(cluster.leader, path.join(benchDir, "kv-put.lua"), 16, warmupS);
      const byConns = new Map<number, WrkResult>();
      for (const conns of CONNECTIONS) {
        const before = await proposals(cluster.leader);
        const r = wrk(cluster.leader, path.join(benchDir, "kv-put.lua"), conns, seconds);
        const applied = (await proposals(cluster.leader)) - before;
        if (Math.abs(applied - r.requests) > Math.max(conns, 0.01 * r.requests)) {
          lines.push(`warning: ${name} at ${conns} connections: wrk counted ${r.requests} requests but the leader took ${applied} proposals (leadership moved? redirects are not followed by wrk)`);
        }
        byConns.set(conns, r);
      }
      results.set(name, byConns);
    } finally {
      await cluster.stop();
    }
  }
  const etcdDir = etcdScript();
  if (process.env.BENCH_ETCD !== "0" && etcdDir !== null) {
    const data = path.join(root, "etcd");
    const start = spawnSync("bash", [path.join(etcdDir, "etcd-cluster.sh"), "start", data], { encoding: "utf8" });
    try {
      if (start.status !== 0) throw new Error(`etcd-cluster.sh start failed: ${start.stderr}`);
      const leader = start.stdout.trim().split("\n").pop()!;
      wrk(leader, path.join(etcdDir, "etcd-put.lua"), 16, warmupS);
      const byConns = new Map<number, WrkResult>();
      for (const conns of CONNECTIONS) byConns.set(conns, wrk(leader, path.join(etcdDir, "etcd-put.lua"), conns, seconds));
      results.set("etcd 3.4", byConns);
    } finally {
      spawnSync("bash", [path.join(etcdDir, "etcd-cluster.sh"), "stop", data]);
    }
  } else {
    lines.push(etcdDir === null ? "etcd: skipped (../shared/bench/etcd-cluster.sh not found)" : "etcd: skipped (BENCH_ETCD=0)");
  }
  if (process.env.BENCH_ETCD !== "0" && etcdDir !== null && tlsModes.includes(true)) {
    const dir = path.join(root, "etcd-tls");
    fs.mkdirSync(dir, { recursive: true });
    const cluster = await startEtcdTls(dir);
    try {
      wrk(cluster.leader, path.join(etcdDir, "etcd-put.lua"), 16, warmupS);
      const byConns = new Map<number, WrkResult>();
      for (const conns of CONNECTIONS) byConns.set(conns, wrk(cluster.leader, path.join(etcdDir, "etcd-put.lua"), conns, seconds));
      results.set("etcd 3.4 TLS", byConns);
    } finally {
      await cluster.stop();
    }
  }
} catch (err) {
  console.log(`bench:kv failed: ${err instanceof Error ? err.message : String(err)}\nmember logs kept under ${root}:`);
  for (const rt of runtimes) {
    for (const sub of [rt, `${rt}-tls`]) {
      for (const id of ["k1", "k2", "k3"]) {
        const file = path.join(root, sub, `${id}.log`);
        if (fs.existsSync(file)) console.log(`== ${sub} ${id}\n${fs.readFileSync(file, "utf8").split("\n").slice(-15).join("\n")}`);
      }
    }
  }
  process.exit(1);
}
(_client as HttpClient | null)?.close();
fs.rmSync(root, { recursive: true, force: true });
certs?.remove();

console.log(`KV PUT benchmark: 3 members on loopback, fsync on, 100-byte values, wrk ${seconds} s per run (${os.cpus().length} CPUs); TLS: HTTPS to the leader, mutual TLS between members`);
console.log(`${"system".padEnd(14)} ${"conns".padStart(5)} ${"req/s".padStart(9)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"errors".padStart(7)}`);
for (const [name, byConns] of results) for (const [conns, r] of byConns) console.log(row(name, conns, r));
const etcd = results.get("etcd 3.4");
if (etcd !== undefined) {
  for (const [name, byConns] of results) {
    if (!name.startsWith("raft-ts") || name.endsWith(" TLS")) continue;
    const tput = byConns.get(128)!.rps / etcd.get(128)!.rps;
    const p50 = byConns.get(1)!.p50Ms / etcd.get(1)!.p50Ms;
    const p99 = byConns.get(128)!.p99Ms / etcd.get(128)!.p99Ms;
    console.log(
      `${name}: throughput at 128 conns ${tput.toFixed(2)}x etcd (goal >= 1.5x: ${tput >= 1.5 ? "met" : "MISSED"}); ` +
        `p50 at 1 conn ${p50.toFixed(2)}x etcd's (goal <= 1.0x: ${p50 <= 1 ? "met" : "MISSED"}); p99 at 128 conns ${p99.toFixed(2)}x etcd's`,
    );
  }
}
// The cost of TLS: each system's TLS run against its plain run, at each connection count.
for (const [name, tlsRun] of results) {
  if (!name.endsWith(" TLS")) continue;
  const plain = results.get(name.slice(0, -4));
  if (plain === undefined) continue;
  const parts = CONNECTIONS.map((conns) => {
    const t = tlsRun.get(conns)!;
    const p = plain.get(conns)!;
    return `${conns} conn${conns === 1 ? "" : "s"}: ${(t.rps / p.rps).toFixed(2)}x the requests/s, p50 ${(t.p50Ms / p.p50Ms).toFixed(2)}x`;
  });
  console.log(`TLS cost, ${name.slice(0, -4)}: ${parts.join("; ")}`);
}
const etcdTls = results.get("etcd 3.4 TLS");
if (etcdTls !== undefined) {
  for (const [name, byConns] of results) {
    if (!name.startsWith("raft-ts") || !name.endsWith(" TLS")) continue;
    console.log(`${name}: throughput at 128 conns ${(byConns.get(128)!.rps / etcdTls.get(128)!.rps).toFixed(2)}x etcd with TLS; p50 at 1 conn ${(byConns.get(1)!.p50Ms / etcdTls.get(1)!.p50Ms).toFixed(2)}x`);
  }
}
for (const l of lines) console.log(l);
