/**
 * The hostile-load measurements of issue 11, on real `raft start` members of
 * the runtime this file runs on (worker mode, the default). The suite keeps
 * scaled-down tests of the same mechanisms (tests/cli/hostile-clients.test.ts,
 * tests/node/hostile-peers.test.ts); these are the full-size figures:
 *
 * 1. memory: the leader's resident set before and after a 1 GiB body it must
 *    refuse: chunked with the client token, declared by Content-Length, and
 *    unauthenticated; and 8 unsigned 64 MiB peer bodies;
 * 2. flood: 10,000 concurrent PUTs on the leader of 3 members: how each was
 *    answered (200, 503, other, connection error) and whether the leader
 *    kept its leadership (same leader and term before and after), on the
 *    shared port and on a client listener (`--listen-client`);
 * 3. descriptors: a member started under `ulimit -n 1024` and 2,000 idle
 *    connections (sending nothing, then request heads that never end):
 *    alive, and how long until a write gets through.
 *
 * Run: `npm run bench -- hostile` (all three runtimes), or
 * `npx tsx bench/hostile.ts` (`BENCH_HOSTILE=memory,flood,fd` picks parts,
 * `BENCH_MAX_CLIENT_REQUESTS=N` sets the members' `--max-client-requests`).
 *
 * @module
 */
import * as fs from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { runtime } from "../adapters/mod.ts";
import { clientTokenFor } from "../src/transport/credentials.ts";
import { Cluster, type MemberProcess } from "../tests/cli/cluster-harness.ts";
import { freePorts } from "../tests/helpers/ports.ts";
import { IdleConnections, rawRequest } from "../tests/helpers/raw-http.ts";
import type { RuntimeName } from "../tests/helpers/runtimes.ts";
import { waitFor } from "../tests/helpers/wait.ts";
import { printRow } from "./report.ts";

const rt = runtime.name as RuntimeName;
const parts = new Set((process.env.BENCH_HOSTILE ?? "memory,flood,fd").split(","));
const SECRET = "bench-hostile-secret-0123456789";
const TOKEN = clientTokenFor(new TextEncoder().encode(SECRET));
const MiB = 1024 * 1024;

/** Resident and peak resident memory of a process, in MiB (Linux /proc). */
function rss(pid: number): { now: number; peak: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? "NaN") / 1024;
  return { now: kb("VmRSS"), peak: kb("VmHWM") };
}

/** Sends a request head, then body bytes as fast as the member takes them, until it answers or closes; the bytes it took, and the status. */
function sendUntilAnswered(port: number, head: string, bodyBytes: number, chunked: boolean): Promise<{ status: number | null; sentMiB: number }> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let sent = 0;
    let answer = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve({ status: m === null ? null : Number(m[1]), sentMiB: sent / MiB });
    };
    const chunk = new Uint8Array(256 * 1024);
    const frame = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]) : Buffer.from(chunk);
    const pump = () => {
      while (!done && sent < bodyBytes) {
        sent += chunk.length;
        if (!s.write(frame)) return void s.once("drain", pump);
      }
    };
    s.on("connect", () => {
      s.write(head);
      pump();
    });
    s.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
      if (/^HTTP\/1\.1 \d{3}/.test(answer)) finish();
    });
    s.on("error", finish);
    s.on("close", finish);
    setTimeout(finish, 60_000);
  });
}

async function startCluster(n: number, extra: readonly string[] = [], clientPorts: number[] = []): Promise<{ c: Cluster; leader: MemberProcess }> {
  const ids = Array.from({ length: n }, (_, i) => `b${i + 1}`);
  const c = await Cluster.create(ids, rt);
  const secretFile = `${c.root}/secret`;
  fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const list = c.members.map((m) => `${m.id}=${m.url}`).join(",");
  const { spawnSync } = await import("node:child_process");
  const { runCommand, REPO_ROOT } = await import("../tests/helpers/runtimes.ts");
  for (const m of c.members) {
    const [cmd, argv] = runCommand(rt, `${REPO_ROOT}/cli.ts`, ["bootstrap", "--data", m.dir, "--id", m.id, "--members", list]);
    spawnSync(cmd, argv, { stdio: "ignore" });
  }
  c.members.forEach((m, i) => m.start(["--data", m.dir, "--secret-file", secretFile, ...extra, ...(clientPorts[i] === undefined ? [] : ["--listen-client", `127.0.0.1:${clientPorts[i]}`])]));
  await Promise.all(c.members.map((m) => m.ready()));
  return { c, leader: await c.waitLeader() };
}

async function memory(): Promise<void> {
  const { c, leader } = await startCluster(1);
  try {
    const pid = leader.child!.pid!;
    const put = (extra: string) => `PUT /kv/big HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
    const base = rss(pid);
    printRow(rt, "memory: leader RSS at rest", `${base.now.toFixed(0)} MiB (peak ${base.peak.toFixed(0)})`);
    for (const [what, head, chunked] of [
      ["1 GiB chunked PUT, with the token", put(`Authorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n`), true],
      ["1 GiB declared PUT, with the token", put(`Authorization: Bearer ${TOKEN}\r\nContent-Length: ${1024 * MiB}\r\n`), false],
      ["1 GiB chunked PUT, unauthenticated", put("Transfer-Encoding: chunked\r\n"), true],
      ["1 GiB declared PUT, unauthenticated", put(`Content-Length: ${1024 * MiB}\r\n`), false],
    ] as const) {
      const before = rss(pid);
      const r = await sendUntilAnswered(leader.port, head, 1024 * MiB, chunked);
      const after = rss(pid);
      printRow(rt, `memory: ${what}`, `answered ${r.status ?? "closed"} after ${r.sentMiB.toFixed(1)} MiB sent; peak RSS +${(after.peak - before.peak).toFixed(1)} MiB (RSS ${before.now.toFixed(0)} -> ${after.now.toFixed(0)} MiB)`);
    }
    const before = rss(pid);
    const peer = `POST /raft/v1/messages HTTP/1.1\r\nHost: x\r\nx-raft-cluster: nope\r\nContent-Length: ${64 * MiB}\r\n\r\n`;
    const rs = await Promise.all(Array.from({ length: 8 }, () => sendUntilAnswered(leader.port, peer, 64 * MiB, false)));
    const after = rss(pid);
    printRow(rt, "memory: 8 unsigned 64 MiB peer bodies", `answered ${[...new Set(rs.map((r) => r.status ?? "closed"))].join("/")}; peak RSS +${(after.peak - before.peak).toFixed(1)} MiB`);
    if (leader.child === null) printRow(rt, "memory: the member", "STOPPED");
  } finally {
    await c.destroy();
  }
}

/** `n` concurrent PUTs, each on its own connection; counts the answers by status. */
async function floodOnce(port: number, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const add = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  const req = `PUT /kv/flood HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`;
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = "";
    let done = false;
    const finish = (k: string) => {
      if (done) return;
      done = true;
      add(k);
      s.destroy();
      resolve();
    };
    s.on("connect", () => s.write(req));
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m !== null) finish(m[1]!);
    });
    s.on("error", (e: NodeJS.ErrnoException) => finish(e.code ?? "error"));
    s.on("close", () => finish("closed without an answer"));
    setTimeout(() => finish("no answer in 60 s"), 60_000);
  })));
  return counts;
}

async function flood(): Promise<void> {
  const clientPorts = await freePorts(3);
  // BENCH_MAX_CLIENT_REQUESTS: the members' --max-client-requests (default theirs, 1024).
  const max = process.env.BENCH_MAX_CLIENT_REQUESTS;
  const { c, leader } = await startCluster(3, max === undefined ? [] : ["--max-client-requests", max], clientPorts);
  try {
    const term = async (m: MemberProcess) => (await m.status())?.term;
    void leader;
    for (const where of ["shared port", "client listener"] as const) {
      for (let round = 1; round <= 3; round++) {
        // The leader of the moment: a round that deposed it must not flood a follower next.
        const leader = await c.waitLeader();
        const port = where === "shared port" ? leader.port : clientPorts[c.members.indexOf(leader)]!;
        const t0 = await term(leader);
        const before = rss(leader.child!.pid!);
        const start = performance.now();
        const counts = await floodOnce(port, 10_000);
        const ms = performance.now() - start;
        const now = await c.waitLeader();
        const t1 = await term(now);
        const after = rss(leader.child!.pid!);
        const kept = now === leader && t0 === t1 ? "kept leadership" : `LEADERSHIP LOST (${leader.id} term ${t0} -> ${now.id} term ${t1})`;
        printRow(rt, `flood: 10,000 PUTs, ${where}, round ${round}`, `${[...counts].map(([k, v]) => `${k}: ${v}`).join(", ")}; ${(ms / 1000).toFixed(1)} s; ${kept}; peak RSS ${after.peak.toFixed(0)} MiB (+${(after.peak - before.peak).toFixed(0)})`);
      }
    }
  } finally {
    await c.destroy();
  }
}

async function fd(): Promise<void> {
  // Connections that send nothing, then ones that send a request head and never end it (slowloris):
  // on Bun the first wait in the kernel (TCP_DEFER_ACCEPT); the second are accepted and held until a timeout.
  for (const partial of [false, true]) {
    const what = partial ? "2,000 connections with unfinished request heads" : "2,000 idle connections";
    const c = await Cluster.create(["u1"], rt);
    const m = c.member("u1");
    try {
      m.start(["--id", "u1", "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--bootstrap"], { fileLimit: 1024 });
      await m.ready();
      await c.waitLeader([m]);
      const idle = await IdleConnections.open(m.port, 2000, partial);
      await waitFor("every connection attempt to settle", () => idle.connected + idle.refused >= 2000, 30_000).catch(() => {});
      const t0 = performance.now();
      let writes = 0;
      let firstMs: number | null = null;
      try {
        await waitFor("a write under the idle connections", async () => {
          try {
            // A new connection each time (a pooled one would prove nothing).
            const ok = (await rawRequest(m.port, "PUT /kv/fd HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv", 2000)).status === 200;
            if (ok) {
              writes++;
              firstMs ??= performance.now() - t0;
            }
            return writes >= 20;
          } catch {
            return false;
          }
        }, 60_000).catch(() => {});
      } finally {
        idle.close();
      }
      printRow(rt, `fd: ulimit -n 1024, ${what}`, `${m.child === null ? "member STOPPED" : "member alive"}; first write after ${firstMs === null ? "none in 60 s" : `${(firstMs / 1000).toFixed(1)} s`}; ${writes} writes; ${idle.connected} of 2,000 connected, the server closed ${idle.closedByServer} of them meanwhile`);
    } finally {
      await c.destroy();
    }
  }
}

if (parts.has("memory")) await memory();
if (parts.has("flood")) await flood();
if (parts.has("fd")) await fd();
process.exit(0);
