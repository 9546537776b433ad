/**
 * Health, metrics and logs with real processes on this runtime: a static
 * 3-member cluster (h1 with `--thread caller --log-format json`, h2 in
 * worker mode with `--listen-client`, h3 in worker mode). Checks `/health`,
 * `/livez` and `/readyz` on every port without a token, `raft health` (all
 * healthy: exit 0; `--json`), the new `/metrics` series and `/status`
 * fields, the JSON log lines of an election; then SIGSTOPs h2 and h3 and
 * watches h1's `/health` turn 503 with a reason and `raft health` exit 1,
 * SIGCONTs them and sees both recover; finally SIGKILLs h3 and sees `raft
 * health` name it. A failing step prints ports, data directories and the
 * members' stderr tails.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { freePorts } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";

const CLUSTER_ID_HEADER = "x-raft-cluster-id";

async function get(url: string): Promise<{ status: number; body: string; headers: Headers } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text(), headers: res.headers };
  } catch {
    return null;
  }
}

/** The value of the first sample of `name` whose labels include `labels` (a substring such as `thread="worker"`). */
function sample(text: string, name: string, labels = ""): number | null {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const key = line.slice(0, sp);
    if ((key === name || key.startsWith(`${name}{`)) && key.includes(labels)) return Number(line.slice(sp + 1));
  }
  return null;
}

describe(`health, metrics and logs on ${RUNTIME}`, () => {
  let c: Cluster;
  let h1: MemberProcess;
  let h2: MemberProcess;
  let h3: MemberProcess;
  let clientUrl = "";

  const step = stepper(() => `--- cluster on ${RUNTIME} (h2 client port ${clientUrl}) ---\n${c.diagnostics()}`);
  const cli = (r: CliRun, code: number) => {
    assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  };
  const healthOf = async (url: string) => (await get(`${url}/health`))?.status ?? null;

  before(async () => {
    c = await Cluster.create(["h1", "h2", "h3"], RUNTIME);
    [h1, h2, h3] = c.members as [MemberProcess, MemberProcess, MemberProcess];
    const [clientPort] = (await freePorts(1)) as [number];
    clientUrl = `http://127.0.0.1:${clientPort}`;
    const list = c.members.map((m) => `${m.id}=${m.url}`).join(",");
    for (const m of c.members) cli(await runCli(["bootstrap", "--data", m.dir, "--id", m.id, "--members", list]), 0);
    h1.start(["--data", h1.dir, "--thread", "caller", "--log-format", "json"]);
    h2.start(["--data", h2.dir, "--listen-client", `127.0.0.1:${clientPort}`]);
    h3.start(["--data", h3.dir]);
    await Promise.all(c.members.map((m) => m.ready(60_000)));
    await c.waitLeader();
  });

  after(async () => {
    // A member that died (a failed start) must not hide why: destroy() prints the members' logs.
    for (const m of c.members) {
      try {
        if (m.child?.pid !== undefined) process.kill(m.child.pid, "SIGCONT");
      } catch { /* already gone */ }
    }
    await c.destroy();
  });

  it("/health, /livez and /readyz answer 200 in etcd's shape on every port, without a token", step(async () => {
    const urls = [...c.members.map((m) => m.url), clientUrl];
    await waitFor("every member healthy", async () => (await Promise.all(urls.map(healthOf))).every((s) => s === 200), 20_000);
    for (const url of urls) {
      for (const path of ["/health", "/livez", "/readyz"]) {
        const r = await get(`${url}${path}`);
        assert.equal(r?.status, 200, `${url}${path}: ${r?.body}`);
        assert.deepEqual(JSON.parse(r.body), { health: "true", reason: "" });
        assert.ok(r.headers.get(CLUSTER_ID_HEADER), `${url}${path} carries ${CLUSTER_ID_HEADER}`);
      }
    }
  }));

  it("raft health lists every member healthy and exits 0; --json; a client URL stands for its member", step(async () => {
    const table = cli(await runCli(["health", "--cluster", h1.url]), 0).stdout;
    const lines = table.trim().split("\n");
    assert.match(lines[0]!, /^URL\s+ID\s+HEALTHY\s+TOOK\s+REASON$/);
    assert.equal(lines.length, 4, table);
    for (const m of c.members) assert.ok(lines.some((l) => l.startsWith(m.url) && new RegExp(`\\s${m.id}\\s+true\\s`).test(l)), table);
    const rows = JSON.parse(cli(await runCli(["health", "--json", "--cluster", clientUrl]), 0).stdout) as { url: string; id: string; healthy: boolean; reason: string; tookMs: number }[];
    assert.deepEqual(rows.map((r) => [r.url, r.id, r.healthy]).sort(), [[clientUrl, "h2", true], [h1.url, "h1", true], [h3.url, "h3", true]].sort());
    for (const r of rows) assert.ok(r.tookMs >= 0 && r.reason === "", JSON.stringify(r));
  }));

  it("/metrics has build info, memory, event-loop delay per thread and bytes on disk; /status has version and uptime", step(async () => {
    const byThread: [MemberProcess | string, string][] = [[h1, "main"], [h3, "worker"], [clientUrl, "main"]];
    for (const [m, thread] of byThread) {
      const url = typeof m === "string" ? m : m.url;
      const text = (await get(`${url}/metrics`))!.body;
      const what = `${url}/metrics:\n${text}`;
      assert.match(text, new RegExp(`^raft_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",runtime="${RUNTIME}",runtime_version="\\d+\\.\\d+[^"]*"\\} 1$`, "m"), what);
      assert.ok(sample(text, "raft_process_resident_memory_bytes")! > 1024 * 1024, what);
      assert.ok(sample(text, "raft_process_heap_used_bytes", `thread="${thread}"`)! > 0, what);
      assert.ok(sample(text, "raft_process_heap_total_bytes", `thread="${thread}"`)! > 0, what);
      assert.ok(sample(text, "raft_event_loop_delay_seconds_count", `thread="${thread}"`)! > 0, what);
      const max = sample(text, "raft_event_loop_delay_max_seconds", `thread="${thread}"`)!;
      assert.ok(max >= 0 && max < 60, what);
      assert.ok(sample(text, "raft_log_bytes")! > 0, what);
      assert.equal(sample(text, "raft_snapshot_bytes"), 0, what);
    }
    for (const m of c.members) {
      const s = JSON.parse((await get(`${m.url}/status`))!.body) as { version: unknown; uptimeSeconds: unknown };
      assert.match(String(s.version), /^\d+\.\d+\.\d+/);
      assert.ok(typeof s.uptimeSeconds === "number" && s.uptimeSeconds > 0 && s.uptimeSeconds < 600, JSON.stringify(s));
    }
  }));

  it("followers answer the leader's appends and heartbeats in the responses: raft_rpcs_sent_in_responses_total", step(async () => {
    const leader = await c.waitLeader();
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${leader.url}/kv/replies-${i}`, { method: "PUT", body: `v${i}`, signal: AbortSignal.timeout(10_000) });
      assert.equal(r.status, 200, `PUT ${i}: ${r.status} ${await r.text()}`);
    }
    for (const m of c.members) {
      if (m === leader) continue;
      const text = (await get(`${m.url}/metrics`))!.body;
      const sent = sample(text, "raft_rpcs_sent_total")!;
      const inResponses = sample(text, "raft_rpcs_sent_in_responses_total")!;
      // A follower's messages are all replies; each rides back unless its hold timed out first. (How many
      // there are depends on how the leader batched the 20 entries and on the heartbeats meanwhile.)
      assert.ok(sent > 0 && inResponses * 2 >= sent, `${m.id}: ${inResponses} of ${sent} messages sent in responses\n${text}`);
    }
  }));

  it("--log-format json: every line has level; the election's lines carry event, role and term", step(async () => {
    const lines = h1.log.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.length > 0);
    for (const l of lines) {
      assert.ok(l.level === "info" || l.level === "warn" || l.level === "error", JSON.stringify(l));
      assert.equal(l.member, "h1");
      assert.equal(typeof l.msg, "string");
    }
    const role = lines.find((l) => l.event === "role" && (l.role === "leader" || l.role === "follower"));
    assert.ok(role !== undefined, "a role event");
    assert.equal(typeof role.term, "number");
    assert.ok("leader" in role);
    assert.equal(role.level, "info");
  }));

  it("/health turns 503 with a reason when h1 is cut off (h2, h3 stopped), 200 again after SIGCONT", step(async () => {
    for (const m of [h2, h3]) process.kill(m.child!.pid!, "SIGSTOP");
    const reason = await waitFor("h1 unhealthy", async () => {
      const r = await get(`${h1.url}/health`);
      return r?.status === 503 ? (JSON.parse(r.body) as { health: string; reason: string }) : undefined;
    }, 20_000);
    assert.equal(reason.health, "false");
    assert.match(reason.reason, /leader|election|quorum/);
    const down = cli(await runCli(["health", "--cluster", h1.url, "--timeout", "1"]), 1).stdout;
    for (const m of [h2, h3]) assert.ok(down.split("\n").some((l) => l.startsWith(m.url) && /\sfalse\s/.test(l) && /no answer in time/.test(l)), down);
    assert.ok(down.split("\n").some((l) => l.startsWith(h1.url) && /\sfalse\s/.test(l)), down);
    for (const m of [h2, h3]) process.kill(m.child!.pid!, "SIGCONT");
    await waitFor("every member healthy again", async () => (await Promise.all(c.members.map((m) => healthOf(m.url)))).every((s) => s === 200), 30_000);
    cli(await runCli(["health", "--cluster", h1.url]), 0);
  }));

  it("raft health exits 1 and names the member while a follower is killed", step(async () => {
    const leader = await c.waitLeader();
    const victim = leader === h3 ? h2 : h3;
    const alive = c.members.filter((m) => m !== victim);
    await victim.stop("SIGKILL");
    const r = cli(await runCli(["health", "--cluster", alive.map((m) => m.url).join(",")]), 1).stdout;
    const rows = r.split("\n");
    assert.ok(rows.some((l) => l.startsWith(victim.url) && new RegExp(`\\s${victim.id}\\s+false\\s`).test(l) && /connection refused/.test(l)), r);
    for (const m of alive) assert.ok(rows.some((l) => l.startsWith(m.url) && /\strue\s/.test(l)), r);
  }));
});
