/**
 * `npm run bench:kv`: the built-in KV store under load from `wrk`, beside
 * etcd 3.4 driven the same way in the same run. Three (or five) members on
 * loopback, fsync on, 100-byte PUTs to the leader at 1, 8, 32, 128 and 512
 * connections; for each runtime the members run on (node, deno, bun),
 * requests/s, p50 and p99 latency, the leader changes during each run (the
 * leader's term before and after), each member's resident memory after each
 * run, and the ratios to etcd. Goals:
 * throughput >= 1.5x etcd's at 128 connections; p50 at 1 connection no
 * worse than etcd's; no leader change. The curve (requests/s against
 * connections, one line per system) is also written as an SVG chart.
 *
 * TLS: each system also runs with TLS on, in the same run: members serve
 * HTTPS and verify each other's certificates against one CA (mutual TLS
 * between members: raft-ts with --cert-file/--key-file/--trusted-ca-file,
 * etcd with the same certificates on its client and peer URLs and
 * --peer-client-cert-auth); wrk speaks HTTPS to the leader without a client
 * certificate. Certificates are made with openssl (tests/helpers/certs.ts).
 * The summary gives the cost of TLS as a ratio to the plain run.
 *
 * Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_CONNECTIONS
 * (default 1,8,32,128,512), BENCH_MEMBERS (3 or 5, default 3),
 * BENCH_VALUE_BYTES (default 100; with another size the figures include
 * MB/s of values), BENCH_CHART
 * (where the SVG goes, default kv-curve-<members>.svg in the OS temp
 * directory; its path is printed), BENCH_RUNTIME (one
 * runtime instead of all three; `npm run bench` sets it), BENCH_ETCD=0 to
 * skip etcd, BENCH_TLS=0 (plain only) or BENCH_TLS=only. Needs `wrk`
 * (Debian: apt-get update && apt-get install -y wrk); etcd is started by
 * ../shared/bench/etcd-cluster.sh (it installs Debian's etcd-server and
 * etcd-client if missing), etcd with TLS or with five members directly by
 * this file.
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
const CONNECTIONS: readonly number[] = (process.env.BENCH_CONNECTIONS ?? "1,8,32,128,512").split(",").map(Number);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? "3");
/** Value size: 100 bytes (the scripts in bench/ and ../shared/bench/) unless BENCH_VALUE_BYTES says otherwise. */
const VALUE_BYTES = Number(process.env.BENCH_VALUE_BYTES ?? "100");
if (!CONNECTIONS.every((n) => Number.isSafeInteger(n) && n > 0) || ![3, 5].includes(MEMBERS) || !(Number.isSafeInteger(VALUE_BYTES) && VALUE_BYTES >= 3 && VALUE_BYTES <= 1 << 20)) {
  console.log("BENCH_CONNECTIONS must be positive integers (1,8,32,128,512), BENCH_MEMBERS 3 or 5, BENCH_VALUE_BYTES 3..1048576");
  process.exit(2);
}
const tlsModes: readonly boolean[] = process.env.BENCH_TLS === "0" ? [false] : process.env.BENCH_TLS === "only" ? [true] : [false, true];

/** What one wrk run measured. */
interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Non-2xx/3xx answers plus socket errors. */
  readonly errors: number;
  /** Leader changes during the run: how far the leader's term moved (null: not measured). */
  leaderChanges?: number | null;
  /** Resident memory of each member right after the run, MiB. */
  rssMiB?: readonly number[];
}

/** Resident memory of a process in MiB (Linux /proc), NaN when it cannot be read. */
function rssMiB(pid: number | undefined): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
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

/** A system under test: its leader's client URL, how to read the cluster's term now, and how to stop it. */
interface System {
  readonly leader: string;
  readonly term: () => Promise<number | null>;
  /** The members' process ids (for their memory). */
  readonly pids: () => readonly (number | undefined)[];
  readonly stop: () => Promise<void>;
}

/** A raft-ts cluster of MEMBERS members on `rt`: bootstrapped statically, started with the CLI; with `tls`, mutual TLS between members. */
async function startRaft(rt: RuntimeName, root: string, tls: boolean): Promise<System> {
  const ids = Array.from({ length: MEMBERS }, (_, i) => `k${i + 1}`);
  const ports = await freePorts(MEMBERS);
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
    // What each member that answers says of itself (one may be starting or busy: the others answer).
    const statuses = async () => {
      const out: { url: string; role: string; term: number }[] = [];
      for (const p of ports) {
        const url = `${scheme}://127.0.0.1:${p}`;
        try {
          const s = JSON.parse((await getText(`${url}/status`)).text) as { role: string; term: number };
          out.push({ url, role: s.role, term: s.term });
        } catch {
          // not answering
        }
      }
      return out;
    };
    const leader = await waitFor("a raft-ts leader", async () => (await statuses()).find((s) => s.role === "leader")?.url, 60_000);
    // The highest term any member reports.
    const term = async () => {
      const all = await statuses();
      return all.length === 0 ? null : Math.max(...all.map((s) => s.term));
    };
    return { leader, term, pids: () => children.map((c) => c.pid), stop };
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

/** One member's answer in `etcdctl endpoint status -w json`. */
interface _EtcdStatus {
  readonly Endpoint: string;
  readonly Status: { readonly leader: string; readonly raftTerm: number; readonly header: { readonly member_id: string } };
}

/** What etcdctl reports for those of `endpoints` that answer (empty when none does). */
function etcdStatus(endpoints: string, tls: boolean): _EtcdStatus[] {
  const args = ["--endpoints", endpoints, ...(tls ? ["--cacert", certs!.ca.certFile] : []), "endpoint", "status", "-w", "json"];
  const r = spawnSync("etcdctl", args, { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
  try {
    return JSON.parse(r.stdout) as _EtcdStatus[];
  } catch {
    return [];
  }
}

/** The highest raft term etcdctl reports for `endpoints` (null when none answers). */
function etcdTerm(endpoints: string, tls: boolean): number | null {
  const all = etcdStatus(endpoints, tls);
  return all.length === 0 ? null : Math.max(...all.map((e) => e.Status.raftTerm));
}

/**
 * An etcd cluster of `n` members, ports from the free-port helper; with
 * `tls`, TLS on client and peer URLs with the bench certificates, peers
 * verifying each other (--peer-client-cert-auth).
 */
async function startEtcd(root: string, n: number, tls: boolean): Promise<System> {
  const ports = await freePorts(2 * n);
  const scheme = tls ? "https" : "http";
  const client = (i: number) => `${scheme}://127.0.0.1:${ports[i]}`;
  const peer = (i: number) => `${scheme}://127.0.0.1:${ports[n + i]}`;
  const idx = Array.from({ length: n }, (_, i) => i);
  const cluster = idx.map((i) => `e${i + 1}=${peer(i)}`).join(",");
  const c = certs;
  const tlsFlags = tls && c !== null
    ? ["--cert-file", c.member.certFile, "--key-file", c.member.keyFile, "--peer-cert-file", c.member.certFile, "--peer-key-file", c.member.keyFile, "--peer-trusted-ca-file", c.ca.certFile, "--peer-client-cert-auth"]
    : [];
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const ch of children) ch.kill("SIGKILL");
    await Promise.all(children.map((ch) => exited(ch)));
  };
  try {
    for (const i of idx) {
      const log = fs.openSync(path.join(root, `e${i + 1}.log`), "w");
      children.push(trackExit(spawn("etcd", [
        "--name", `e${i + 1}`, "--data-dir", path.join(root, `e${i + 1}`),
        "--listen-client-urls", client(i), "--advertise-client-urls", client(i),
        "--listen-peer-urls", peer(i), "--initial-advertise-peer-urls", peer(i),
        "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error",
        ...tlsFlags,
      ], { stdio: ["ignore", "ignore", log] })));
    }
    const endpoints = idx.map(client).join(",");
    const leader = await waitFor(`an etcd leader${tls ? " (TLS)" : ""}`, () => {
      const all = etcdStatus(endpoints, tls);
      // Every member up (as when etcdctl exits 0), and one of them the leader.
      if (all.length < n) return undefined;
      // etcdctl prints ids as numbers; compare them as the text JSON holds (no precision loss with a regex).
      return all.find((e) => String(e.Status.leader) === String(e.Status.header.member_id))?.Endpoint;
    }, 30_000);
    return { leader, term: async () => etcdTerm(endpoints, tls), pids: () => children.map((ch) => ch.pid), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function row(name: string, conns: number, r: WrkResult): string {
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
  const changes = r.leaderChanges === undefined || r.leaderChanges === null ? "n/a" : String(r.leaderChanges);
  const rss = (r.rssMiB ?? []).map((m) => f(m, 0)).join("/");
  return `${name.padEnd(14)} ${String(conns).padStart(5)} ${f(r.rps, 0).padStart(9)} ${f(r.p50Ms).padStart(9)} ${f(r.p99Ms).padStart(9)} ${String(r.errors).padStart(7)} ${changes.padStart(14)}  ${rss}`;
}

/**
 * Drives `sys` with `script` at every connection count: a warm-up, then one
 * wrk run per count, each with the leader changes during it (the term moved
 * by). `around` runs before each and checks after it (the raft-ts side
 * compares the leader's proposals with wrk's count).
 */
async function measure(sys: System, script: string, around?: () => Promise<(conns: number, r: WrkResult) => Promise<void>>): Promise<Map<number, WrkResult>> {
  wrk(sys.leader, script, 16, warmupS);
  const byConns = new Map<number, WrkResult>();
  for (const conns of CONNECTIONS) {
    const check = await around?.();
    const t0 = await sys.term();
    const r = wrk(sys.leader, script, conns, seconds);
    const t1 = await sys.term();
    r.leaderChanges = t0 === null || t1 === null ? null : t1 - t0;
    r.rssMiB = sys.pids().map(rssMiB);
    await check?.(conns, r);
    byConns.set(conns, r);
  }
  return byConns;
}

/** The curve as an SVG line chart: requests/s against connections (log scale), one line per system. */
function chartSvg(title: string, results: ReadonlyMap<string, ReadonlyMap<number, WrkResult>>): string {
  const W = 720, H = 420, L = 70, R = 170, T = 40, B = 50;
  const conns = CONNECTIONS.slice().sort((a, b) => a - b);
  const maxRps = Math.max(1, ...[...results.values()].flatMap((m) => [...m.values()].map((r) => (Number.isFinite(r.rps) ? r.rps : 0))));
  const step = 10 ** Math.floor(Math.log10(maxRps));
  const top = Math.ceil(maxRps / step) * step;
  const lx = (c: number) => {
    const a = Math.log(conns[0]!), b = Math.log(conns[conns.length - 1]!);
    return L + (b === a ? 0.5 : (Math.log(c) - a) / (b - a)) * (W - L - R);
  };
  const ly = (v: number) => T + (1 - v / top) * (H - T - B);
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"];
  const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">${esc(title)}</text>`,
  ];
  for (let v = 0; v <= top; v += step) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${ly(v).toFixed(1)}" y2="${ly(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${(ly(v) + 4).toFixed(1)}" text-anchor="end">${v.toLocaleString("en-US")}</text>`);
  }
  for (const c of conns) {
    out.push(`<line x1="${lx(c).toFixed(1)}" x2="${lx(c).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    out.push(`<text x="${lx(c).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${c}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">connections (wrk, log scale)</text>`);
  out.push(`<text x="16" y="${(T + H - B) / 2}" transform="rotate(-90 16 ${(T + H - B) / 2})" text-anchor="middle">requests/s</text>`);
  let k = 0;
  for (const [name, byConns] of results) {
    const color = colors[k % colors.length]!;
    const pts = conns.flatMap((c) => {
      const rps = byConns.get(c)?.rps ?? Number.NaN;
      return Number.isFinite(rps) ? [[lx(c).toFixed(1), ly(rps).toFixed(1)] as const] : [];
    });
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${x},${y}`).join(" ")}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${x}" cy="${y}" r="3" fill="${color}"/>`);
    const y = T + 10 + k * 20;
    out.push(`<line x1="${W - R + 14}" x2="${W - R + 34}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${W - R + 40}" y="${y + 4}">${esc(name)}</text>`);
    k++;
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
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
/** The wrk scripts: the checked-in ones for 100-byte values, else written here with the same requests and a bigger value. */
const raftScript = VALUE_BYTES === 100 ? path.join(benchDir, "kv-put.lua") : path.join(root, "kv-put.lua");
const etcdScriptFor = (dir: string) => VALUE_BYTES === 100 ? path.join(dir, "etcd-put.lua") : path.join(root, "etcd-put.lua");
if (VALUE_BYTES !== 100) {
  fs.writeFileSync(raftScript, fs.readFileSync(path.join(benchDir, "kv-put.lua"), "utf8").replace('string.rep("v", 100)', `string.rep("v", ${VALUE_BYTES})`));
  // etcd's JSON gateway takes the value in base64: "QUFB" is 3 bytes ("AAA").
  fs.writeFileSync(path.join(root, "etcd-put.lua"), `wrk.method = "POST"\nwrk.path = "/v3/kv/put"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '{"key":"YmVuY2g=","value":"' .. string.rep("QUFB", ${Math.ceil(VALUE_BYTES / 3)}) .. '"}'\n`);
}
try {
  for (const rt of runtimes) for (const tls of tlsModes) {
    const name = `raft-ts ${rt}${tls ? " TLS" : ""}`;
    const dir = path.join(root, `${rt}${tls ? "-tls" : ""}`);
    const cluster = await startRaft(rt, dir, tls);
    try {
      results.set(name, await measure(cluster, raftScript, async () => {
        const before = await proposals(cluster.leader);
        return async (conns, r) => {
          const applied = (await proposals(cluster.leader)) - before;
          if (Math.abs(applied - r.requests) > Math.max(conns, 0.01 * r.requests)) {
            lines.push(`warning: ${name} at ${conns} connections: wrk counted ${r.requests} requests but the leader took ${applied} proposals (leadership moved? redirects are not followed by wrk)`);
          }
        };
      }));
    } finally {
      await cluster.stop();
    }
  }
  const etcdDir = etcdScript();
  if (process.env.BENCH_ETCD !== "0" && etcdDir !== null) {
    const etcdPut = etcdScriptFor(etcdDir);
    for (const tls of tlsModes) {
      const name = `etcd 3.4${tls ? " TLS" : ""}`;
      if (!tls && MEMBERS === 3) {
        // The shared script's cluster (it installs etcd when missing).
        const data = path.join(root, "etcd");
        const start = spawnSync("bash", [path.join(etcdDir, "etcd-cluster.sh"), "start", data], { encoding: "utf8" });
        try {
          if (start.status !== 0) throw new Error(`etcd-cluster.sh start failed: ${start.stderr}`);
          const leader = start.stdout.trim().split("\n").pop()!;
          const endpoints = "127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379";
          const pids = () => fs.readFileSync(path.join(data, "pids"), "utf8").trim().split("\n").map(Number);
          results.set(name, await measure({ leader, term: async () => etcdTerm(endpoints, false), pids, stop: async () => {} }, etcdPut));
        } finally {
          spawnSync("bash", [path.join(etcdDir, "etcd-cluster.sh"), "stop", data]);
        }
        continue;
      }
      const dir = path.join(root, `etcd${tls ? "-tls" : ""}-${MEMBERS}`);
      fs.mkdirSync(dir, { recursive: true });
      const cluster = await startEtcd(dir, MEMBERS, tls);
      try {
        results.set(name, await measure(cluster, etcdPut));
      } finally {
        await cluster.stop();
      }
    }
  } else {
    lines.push(etcdDir === null ? "etcd: skipped (../shared/bench/etcd-cluster.sh not found)" : "etcd: skipped (BENCH_ETCD=0)");
  }
} catch (err) {
  console.log(`bench:kv failed: ${err instanceof Error ? err.message : String(err)}\nmember logs kept under ${root}:`);
  for (const rt of runtimes) {
    for (const sub of [rt, `${rt}-tls`]) {
      for (let i = 1; i <= MEMBERS; i++) {
        const file = path.join(root, sub, `k${i}.log`);
        if (fs.existsSync(file)) console.log(`== ${sub} k${i}\n${fs.readFileSync(file, "utf8").split("\n").slice(-15).join("\n")}`);
      }
    }
  }
  process.exit(1);
}
(_client as HttpClient | null)?.close();
fs.rmSync(root, { recursive: true, force: true });
certs?.remove();

console.log(`KV PUT benchmark: ${MEMBERS} members on loopback, fsync on, ${VALUE_BYTES}-byte values, wrk ${seconds} s per run (${os.cpus().length} CPUs)${tlsModes.includes(true) ? "; rows marked TLS: HTTPS to the leader, mutual TLS between members" : "; plain HTTP only"}`);
console.log(`${"system".padEnd(14)} ${"conns".padStart(5)} ${"req/s".padStart(9)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"errors".padStart(7)} ${"leader changes".padStart(14)}  RSS MiB (each member, after the run)`);
for (const [name, byConns] of results) for (const [conns, r] of byConns) console.log(row(name, conns, r));
const ratio = (a: WrkResult | undefined, b: WrkResult | undefined, k: "rps" | "p50Ms" | "p99Ms") => (a === undefined || b === undefined ? Number.NaN : a[k] / b[k]);
const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : "n/a");
for (const suffix of ["", " TLS"]) {
  const etcd = results.get(`etcd 3.4${suffix}`);
  if (etcd === undefined) continue;
  for (const [name, byConns] of results) {
    if (!name.startsWith("raft-ts") || name.endsWith(" TLS") !== (suffix === " TLS")) continue;
    const tput = ratio(byConns.get(128), etcd.get(128), "rps");
    const p50 = ratio(byConns.get(1), etcd.get(1), "p50Ms");
    const curve = CONNECTIONS.map((c) => `${c}: ${x(ratio(byConns.get(c), etcd.get(c), "rps"))}`).join(", ");
    console.log(
      `${name}: throughput at 128 conns ${x(tput)} etcd${suffix} (goal >= 1.5x: ${Number.isNaN(tput) ? "not measured" : tput >= 1.5 ? "met" : "MISSED"}); ` +
        `p50 at 1 conn ${x(p50)} etcd's (goal <= 1.0x: ${Number.isNaN(p50) ? "not measured" : p50 <= 1 ? "met" : "MISSED"}); p99 at 128 conns ${x(ratio(byConns.get(128), etcd.get(128), "p99Ms"))} etcd's; ` +
        `requests/s against etcd by connections ${curve}`,
    );
  }
}
// The cost of TLS: each system's TLS run against its plain run, at each connection count.
for (const [name, tlsRun] of results) {
  if (!name.endsWith(" TLS")) continue;
  const plain = results.get(name.slice(0, -4));
  if (plain === undefined) continue;
  const parts = CONNECTIONS.map((conns) => `${conns} conn${conns === 1 ? "" : "s"}: ${x(ratio(tlsRun.get(conns), plain.get(conns), "rps"))} the requests/s, p50 ${x(ratio(tlsRun.get(conns), plain.get(conns), "p50Ms"))}`);
  console.log(`TLS cost, ${name.slice(0, -4)}: ${parts.join("; ")}`);
}
const changes = [...results].flatMap(([name, m]) => [...m].filter(([, r]) => (r.leaderChanges ?? 0) !== 0).map(([c, r]) => `${name} at ${c} conns: ${r.leaderChanges ?? "?"}`));
console.log(`leader changes during the runs (goal 0): ${changes.length === 0 ? "none" : changes.join("; ")}`);
const chart = process.env.BENCH_CHART ?? path.join(os.tmpdir(), `kv-curve-${MEMBERS}.svg`);
if (VALUE_BYTES !== 100) {
  for (const [name, byConns] of results) console.log(`${name}: ${CONNECTIONS.map((c) => `${c} conns ${((byConns.get(c)?.rps ?? Number.NaN) * VALUE_BYTES / 1e6).toFixed(1)} MB/s`).join(", ")} of values`);
}
fs.writeFileSync(chart, chartSvg(`KV PUT requests/s, ${MEMBERS} members on loopback, fsync on, ${VALUE_BYTES}-byte values (${os.cpus().length} CPUs)`, results));
console.log(`chart: ${chart}`);
for (const l of lines) console.log(l);
