/**
 * Tests of `GET /events`, the dashboard's live feed: what it sends and when
 * (only what changed, at a bounded rate, nothing lost), how it ends (a
 * `bye`, then the end of the body, when the member stops; a client that goes
 * away is forgotten), the chart and timeline arithmetic behind it, and the
 * CORS and auth rules of the client routes. Fake-node tests use Hono's
 * `app.request`; the last ones run a real node over real HTTP, on the
 * caller's thread and on a worker thread (where the stream crosses threads).
 *
 * @module
 */
import { after, afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Hono } from "hono";
import { apiRoutes } from "../../src/api/routes.ts";
import type { ApiOptions, MountedApi } from "../../src/api/routes.ts";
import { statusBody } from "../../src/api/cluster-routes.ts";
import type { StatusFetcher } from "../../src/api/status-report.ts";
import type { DashboardReport } from "../../src/api/ui/cluster-view.ts";
import { quantileBetweenMs } from "../../src/api/ui/series.ts";
import { Timeline } from "../../src/api/ui/timeline.ts";
import type { TimelineEntry } from "../../src/api/ui/timeline.ts";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { RaftNode } from "../../src/node/raft-node.ts";
import { clientTokenFor } from "../../src/transport/credentials.ts";
import type { NodeStatus } from "../../src/node/types.ts";
import { waitFor } from "../helpers/wait.ts";
import { FakeNode } from "./fake-node.ts";
import { SseReader } from "./sse-reader.ts";

const FAST = { minIntervalMs: 60, reportIntervalMs: 40, sampleIntervalMs: 30, heartbeatMs: 400 } as const;

/** n2 as it answers `/status`: a follower of n1. */
function n2Status(term = 3): ReturnType<typeof statusBody> {
  const s: NodeStatus = {
    id: "n2", url: "http://127.0.0.1:7002", clusterId: "c0ffee", role: "follower", term,
    leader: { id: "n1", url: "http://127.0.0.1:7001" }, commitIndex: 0, lastApplied: 0, lastIndex: 0, firstIndex: 1,
    members: [
      { id: "n1", url: "http://127.0.0.1:7001", voter: true, matchIndex: null, lag: null, reachable: null, snapshotTransfer: null, lastHeardAtMs: 1_700_000_000_000 },
      { id: "n2", url: "http://127.0.0.1:7002", voter: true, matchIndex: null, lag: null, reachable: null, snapshotTransfer: null, lastHeardAtMs: null },
    ],
    pendingConfigChange: false, runtime: "fake",
  };
  return statusBody(s, new Map());
}

interface Setup {
  app: Hono;
  node: FakeNode;
  mounted: MountedApi;
  /** What the stub answers for n2; null: "connection refused". */
  n2: ReturnType<typeof statusBody> | null;
}

const open: Setup[] = [];

function setup(opts: ApiOptions = {}, pace: Partial<Record<keyof typeof FAST, number>> = {}): Setup {
  const app = new Hono();
  const kv = new KvStateMachine();
  const node = new FakeNode(kv);
  const s: Setup = { app, node, mounted: null as unknown as MountedApi, n2: n2Status() };
  const fetchStatus: StatusFetcher = async () => (s.n2 === null ? { ok: false, error: "connection refused" } : { ok: true, value: s.n2 });
  s.mounted = apiRoutes(app, node, kv, { ...opts, eventStream: { ...FAST, ...pace, fetchStatus } });
  open.push(s);
  return s;
}

async function stream(s: Setup, headers: Record<string, string> = {}): Promise<SseReader> {
  const res = await s.app.request("/events", { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  return new SseReader(res.body!);
}

const reportOf = (d: unknown) => d as DashboardReport;

afterEach(() => {
  // Every hub stops its timers when its member closes; the fakes close here.
  for (const s of open.splice(0)) s.node.emit({ type: "closing" });
});

describe("GET /events on a fake node", () => {
  it("sends hello, the timeline so far, a report of every member with the problems of raft status, and chart samples", async () => {
    const s = setup();
    s.node.emit({ type: "role", role: "leader", term: 3, leader: "n1" });
    const r = await stream(s);
    const report = reportOf((await r.waitFor("report", () => true, "a report")).data);
    assert.deepEqual(r.messages[0]!.event, "hello");
    assert.deepEqual((r.messages[0]!.data as { id: string }).id, "n1");
    assert.deepEqual(report.members.map((m) => [m.id, m.role]), [["n1", "leader"], ["n2", "follower"]]);
    assert.deepEqual(report.leader, { id: "n1", url: "http://127.0.0.1:7001", term: 3 });
    assert.equal(report.members.find((m) => m.id === "n1")!.lastHeardAtMs, 1_700_000_000_000, "last heard: the latest any member heard from it");
    assert.deepEqual(report.problems, []);
    const timeline = r.of("timeline").flatMap((m) => m.data as TimelineEntry[]);
    assert.deepEqual(timeline.map((e) => e.text), ["n1 became leader in term 3"]);
    await r.waitFor("series", (d: unknown[]) => d.length > 0, "a chart sample");
    await r.cancel();
  });

  it("sends a new report only when something changed, and says in words what went wrong", async () => {
    const s = setup();
    const r = await stream(s);
    await r.waitFor("report", () => true, "the first report");
    // Chart samples keep coming, so time passes; the report is re-gathered meanwhile but unchanged.
    const samplesBefore = r.of("series").flatMap((m) => m.data as unknown[]).length;
    await waitFor("six more chart samples", () => r.of("series").flatMap((m) => m.data as unknown[]).length >= samplesBefore + 6);
    assert.equal(r.of("report").length, 1, "an unchanged cluster sends no second report");
    s.n2 = null;
    const down = reportOf((await r.waitFor("report", (d: DashboardReport) => d.members.some((m) => m.role === "down"), "a report with n2 down")).data);
    assert.equal(down.members.find((m) => m.id === "n2")!.error, "connection refused");
    assert.ok(down.problems.includes("Member n2 (http://127.0.0.1:7002) does not answer: connection refused"), down.problems.join("\n"));
    await r.waitFor("timeline", (d: TimelineEntry[]) => d.some((e) => e.text === "n2 stopped answering: connection refused"), "a timeline entry for n2 going down");
    s.n2 = n2Status();
    await r.waitFor("timeline", (d: TimelineEntry[]) => d.some((e) => e.text === "n2 answers again"), "a timeline entry for n2 coming back");
    await r.cancel();
  });

  it("sends at most one batch per minIntervalMs, merging what happened meanwhile, and loses nothing", async () => {
    const s = setup();
    const r = await stream(s);
    await r.waitFor("report", () => true, "the first report");
    const from = r.messages.length;
    for (let i = 1; i <= 40; i++) {
      s.node.emit({ type: "catch-up", id: "n3", round: i, lag: 1000 - i });
      await new Promise((res) => setTimeout(res, 3));
    }
    await r.waitFor("timeline", (d: TimelineEntry[]) => d.some((e) => e.text.includes("round 40 ")), "the 40th catch-up round", 10_000, from);
    const batches = r.messages.slice(from).filter((m) => m.event === "timeline");
    const rounds = batches.flatMap((m) => (m.data as TimelineEntry[]).filter((e) => e.kind === "catch-up")).map((e) => Number(/round (\d+)/.exec(e.text)![1]));
    assert.deepEqual(rounds, Array.from({ length: 40 }, (_, i) => i + 1), "every entry once, in order");
    assert.ok(batches.length < 40, `40 events in ${batches.length} batches`);
    // Any two messages of the same kind are at least minIntervalMs apart (timers never fire early).
    for (const kind of ["timeline", "report", "series"]) {
      const at = r.messages.filter((m) => m.event === kind).map((m) => m.atMs);
      for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= FAST.minIntervalMs - 5, `${kind} messages ${at[i]! - at[i - 1]!} ms apart`);
    }
    await r.cancel();
  });

  it("says bye and ends every stream when the member starts closing; a later request gets 503", async () => {
    const s = setup();
    const a = await stream(s);
    const b = await stream(s);
    await a.waitFor("report", () => true, "a's report");
    await b.waitFor("report", () => true, "b's report");
    assert.equal(s.mounted.events.subscribers, 2);
    s.node.emit({ type: "closing" });
    await Promise.all([a.done, b.done]);
    for (const r of [a, b]) {
      assert.equal(r.error, null, "the body ended cleanly");
      assert.equal(r.messages[r.messages.length - 1]!.event, "bye");
    }
    assert.equal(s.mounted.events.subscribers, 0);
    const late = await s.app.request("/events");
    assert.equal(late.status, 503);
  });

  it("forgets a subscriber whose client went away, and sends heartbeats while nothing happens", async () => {
    const s = setup({}, { sampleIntervalMs: 600_000 });
    const r = await stream(s);
    await waitFor("a heartbeat comment", () => r.comments > 0 || undefined, 10_000);
    assert.equal(s.mounted.events.subscribers, 1);
    await r.cancel();
    await waitFor("the subscriber to be dropped", () => s.mounted.events.subscribers === 0);
  });
});

describe("chart and timeline arithmetic", () => {
  const h = (cumulative: number[]) => ({ boundsMs: [1, 2, 4, 8], cumulative, sumMs: 0, count: cumulative[cumulative.length - 1]! });

  it("quantileBetweenMs() interpolates inside the bucket of the interval's observations only", () => {
    const before = h([10, 10, 10, 10, 10]); // 10 old observations under 1 ms
    const after = h([10, 10, 110, 110, 110]); // 100 new ones in (2, 4]
    assert.equal(quantileBetweenMs(before, after, 0.5), 3);
    assert.equal(quantileBetweenMs(before, after, 0.99), 3.98);
    assert.equal(quantileBetweenMs(null, h([0, 50, 100, 100, 100]), 0.25), 1.5);
    assert.equal(quantileBetweenMs(after, after, 0.5), null, "nothing observed");
    assert.equal(quantileBetweenMs(null, h([0, 0, 0, 0, 5]), 0.5), 8, "past the last bound: that bound");
  });

  it("Timeline says who was added, promoted and removed, and leader changes once", () => {
    const t = new Timeline("n1");
    const m = (id: string, voter = true) => ({ id, url: `http://h/${id}`, voter });
    const texts = [
      { type: "membership", members: [m("n1"), m("n2")] },
      { type: "membership", members: [m("n1"), m("n2"), m("n3", false)] },
      { type: "membership", members: [m("n1"), m("n2"), m("n3")] },
      { type: "membership", members: [m("n1"), m("n3")] },
      { type: "role", role: "follower", term: 2, leader: "n3" },
      { type: "role", role: "follower", term: 2, leader: "n3" },
      { type: "role", role: "precandidate", term: 2, leader: null },
      { type: "role", role: "candidate", term: 3, leader: null },
      { type: "role", role: "leader", term: 3, leader: "n1" },
      { type: "snapshot", what: "sent", index: 42, peer: "n3" },
    ].flatMap((ev) => t.record(1000, ev as never).map((e) => e.text));
    assert.deepEqual(texts, [
      "members: n1, n2",
      "n3 (http://h/n3) was added as a learner, to be caught up",
      "n3 was promoted to voter",
      "n2 was removed from the cluster",
      "n1 follows leader n3 (term 2)",
      "n1 heard from no leader and asked for pre-votes (term 2)",
      "n1 started an election for term 3",
      "n1 became leader in term 3",
      "n1 sent a snapshot (index 42) to n3",
    ]);
    assert.equal(t.entries(1000 + 3_600_001).length, 0, "an hour later the entries are gone");
  });
});

describe("CORS and auth of the client routes", () => {
  it("answers preflights from a member's origin only, and refuses writes from any other page", async () => {
    const s = setup();
    const pre = (origin: string) => s.app.request("/cluster/transfer", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } });
    const ok = await pre("http://127.0.0.1:7002");
    assert.equal(ok.headers.get("access-control-allow-origin"), "http://127.0.0.1:7002");
    assert.match(ok.headers.get("access-control-allow-headers") ?? "", /authorization/);
    assert.equal((await pre("http://evil.example")).headers.get("access-control-allow-origin"), null);
    const post = (headers: Record<string, string>) => s.app.request("/cluster/transfer", { method: "POST", body: "{}", headers: { "content-type": "text/plain", ...headers } });
    const foreign = await post({ origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    assert.equal(s.node.transfers.length, 0, "the refused write never reached the node");
    assert.equal((await post({ origin: "http://127.0.0.1:7002" })).status, 200);
    assert.equal((await post({})).status, 200, "no Origin (the CLI): as before");
    const status = await s.app.request("/status", { headers: { origin: "http://127.0.0.1:7002" } });
    assert.equal(status.headers.get("access-control-allow-origin"), "http://127.0.0.1:7002");
  });

  it("with a secret, /ui asks a browser for the client token (HTTP Basic) and hands the token, never the secret, to the page's script; /events needs it", async () => {
    const secret = "s3cret-s3cret-s3cret";
    const token = clientTokenFor(new TextEncoder().encode(secret));
    const s = setup({ secret: new TextEncoder().encode(secret) });
    const bare = await s.app.request("/ui");
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get("www-authenticate") ?? "", /^Basic /);
    assert.equal((await s.app.request("/ui", { headers: { authorization: `Basic ${btoa("admin:wrong-wrong-wrong")}` } })).status, 401);
    assert.equal((await s.app.request("/ui", { headers: { authorization: `Basic ${btoa(`admin:${secret}`)}` } })).status, 401, "the secret is not a client credential");
    const page = await s.app.request("/ui", { headers: { authorization: `Basic ${btoa(`admin:${token}`)}` } });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("cache-control"), "no-store");
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const html = await page.text();
    assert.ok(html.includes(`<script type="application/json" id="raft-config">{"token":"${token}"}</script>`), html.slice(0, 400));
    assert.ok(!html.includes(secret), "the page must not carry the cluster secret");
    assert.equal((await s.app.request("/events")).status, 401);
    const r = await stream(s, { authorization: `Bearer ${token}` });
    await r.waitFor("report", () => true, "a report with the bearer token");
    await r.cancel();
    assert.equal((await s.app.request("/status")).status, 200, "/status stays open");
  });

  it("without a secret /ui is a self-contained page: no external URL in it", async () => {
    const s = setup();
    const res = await s.app.request("/ui");
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.match(html, /data-member/);
  });
});

describe("GET /events on a real node over HTTP", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  for (const thread of ["caller", "worker"] as const) {
    it(`streams, drops a client that goes away, and ends with bye when close() is called (thread: ${thread})`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raft-events-"));
      dirs.push(dir);
      const kv = new KvStateMachine();
      let mounted: MountedApi | null = null;
      const node = await RaftNode.start({
        dataDir: dir, id: "e1", host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: kv, thread, logger: () => {},
        routes: (app, n) => {
          mounted = apiRoutes(app, n, kv, { eventStream: FAST });
        },
      });
      let closed = false;
      try {
        await waitFor("e1 to lead", () => node.status().role === "leader");
        const get = async () => {
          const res = await fetch(`${node.url}/events`);
          assert.equal(res.status, 200, `GET ${node.url}/events (data ${dir})`);
          return new SseReader(res.body!);
        };
        const first = await get();
        await first.waitFor("report", (d: DashboardReport) => d.leader?.id === "e1", "a report with e1 leading");
        await first.cancel();
        await waitFor("the gone client to be dropped", () => mounted!.events.subscribers === 0);
        const r = await get();
        await r.waitFor("report", () => true, "a report");
        await node.close();
        closed = true;
        // The stream ends: with its bye, or cut by the server's close right after it (Node and Bun drop open connections).
        await waitFor("the stream to end", () => r.ended);
        assert.ok(r.messages[r.messages.length - 1]!.event === "bye" || r.error !== null, `last messages: ${JSON.stringify(r.messages.slice(-3).map((m) => m.event))}`);
        assert.equal(mounted!.events.subscribers, 0);
      } finally {
        if (!closed) await node.close();
      }
    });
  }
});
