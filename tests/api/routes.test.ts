/**
 * Tests of the client HTTP API (`apiRoutes`) against a fake node: KV reads
 * and writes, CAS, redirects and retry promises (307/503/504), exactly-once
 * by Idempotency-Key, limits, malformed input, auth, `/status`, `/metrics`
 * and the `/cluster` routes. No network: Hono's `app.request`.
 *
 * @module
 */
import { beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { apiRoutes } from "../../src/api/routes.ts";
import type { ApiOptions } from "../../src/api/routes.ts";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { clientTokenFor } from "../../src/transport/credentials.ts";
import { FakeNode } from "./fake-node.ts";
import { CLUSTER_ID_HEADER } from "../../src/api/http.ts";

const SECRET = "s3cret-s3cret-s3cret";

function setup(opts: ApiOptions = {}): { app: Hono; node: FakeNode; kv: KvStateMachine } {
  const app = new Hono();
  const kv = new KvStateMachine();
  const node = new FakeNode(kv);
  apiRoutes(app, node, kv, opts);
  return { app, node, kv };
}

const put = (app: Hono, key: string, value: string | Uint8Array, headers: Record<string, string> = {}) =>
  app.request(`/kv/${key}`, { method: "PUT", body: value as BodyInit, headers });

describe("KV routes on the leader", () => {
  let app: Hono;
  let node: FakeNode;
  beforeEach(() => ({ app, node } = setup()));

  it("PUT answers the index once applied; GET returns the bytes after a read barrier", async () => {
    const res = await put(app, "greeting", "hello");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { index: 2 });
    const got = await app.request("/kv/greeting");
    assert.equal(got.status, 200);
    assert.equal(await got.text(), "hello");
    assert.equal(node.readBarriers, 1);
  });

  it("keeps binary values byte for byte, and keys with %2F and UTF-8", async () => {
    const bytes = new Uint8Array([0, 1, 255, 254, 10]);
    assert.equal((await put(app, "a%2Fb%20%E2%82%AC", bytes)).status, 200);
    const got = await app.request("/kv/a%2Fb%20%E2%82%AC");
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes);
  });

  it("GET ?stale answers from the local copy without a read barrier; 404 when absent", async () => {
    await put(app, "k", "v");
    const stale = await app.request("/kv/k?stale");
    assert.equal(await stale.text(), "v");
    assert.equal(node.readBarriers, 0);
    const missing = await app.request("/kv/nope");
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /not found/);
  });

  it("DELETE answers the index and removes the key", async () => {
    await put(app, "k", "v");
    const res = await app.request("/kv/k", { method: "DELETE" });
    assert.deepEqual([res.status, await res.json()], [200, { index: 4 }]);
    assert.equal((await app.request("/kv/k")).status, 404);
  });

  it("CAS succeeds when the value matches (null: absent) and answers 409 with the current value when not", async () => {
    const cas = (key: string, body: unknown) => app.request(`/kv/${key}/cas`, { method: "POST", body: JSON.stringify(body) });
    let res = await cas("c", { expect: null, value: "one" });
    assert.deepEqual([res.status, await res.json()], [200, { ok: true, index: 2 }]);
    res = await cas("c", { expect: null, value: "two" });
    assert.deepEqual([res.status, await res.json()], [409, { ok: false, current: "one" }]);
    res = await cas("c", { expect: "one", value: "two" });
    assert.deepEqual([res.status, await res.json()], [200, { ok: true, index: 6 }]);
    res = await cas("absent", { expect: "x", value: "y" });
    assert.deepEqual([res.status, await res.json()], [409, { ok: false, current: null }]);
  });

  it("applies a write retried with the same Idempotency-Key once, answering with the first result", async () => {
    const first = await put(app, "k", "v1", { "idempotency-key": "req-42" });
    const retry = await put(app, "k", "v1", { "idempotency-key": "req-42" });
    assert.deepEqual(await first.json(), { index: 2 });
    assert.deepEqual(await retry.json(), { index: 2 });
    assert.equal(retry.headers.get("idempotent-replayed"), "true");
    await put(app, "k", "v2");
    await put(app, "k", "v1", { "idempotency-key": "req-42" });
    assert.equal(await (await app.request("/kv/k")).text(), "v2", "the late retry did not overwrite v2");
    const casBody = JSON.stringify({ expect: "nope", value: "x" });
    const c1 = await app.request("/kv/k/cas", { method: "POST", body: casBody, headers: { "idempotency-key": "cas-1" } });
    const c2 = await app.request("/kv/k/cas", { method: "POST", body: casBody, headers: { "idempotency-key": "cas-1" } });
    assert.deepEqual([c1.status, c2.status], [409, 409]);
  });
});

describe("KV keys and idempotency keys are taken exactly", () => {
  it("an escaped percent sign is a key of its own; an invalid escape is refused, not taken literally", async () => {
    const { app } = setup();
    assert.equal((await app.request("/kv/%25FF%25FE", { method: "PUT", body: "literal" })).status, 200);
    assert.equal((await app.request("/kv/%FF%FE", { method: "PUT", body: "other" })).status, 400);
    assert.equal(await (await app.request("/kv/%25FF%25FE")).text(), "literal");
  });

  it("an Idempotency-Key reused for a different request is refused with 422 and applies nothing", async () => {
    const { app } = setup();
    const h = { "idempotency-key": "once-only" };
    assert.equal((await put(app, "k", "first", h)).status, 200);
    const again = await put(app, "k", "first", h);
    assert.deepEqual([again.status, again.headers.get("idempotent-replayed")], [200, "true"]);
    const other = await put(app, "k", "second", h);
    assert.equal(other.status, 422);
    assert.match(((await other.json()) as { error: string }).error, /different request/);
    assert.equal(await (await app.request("/kv/k")).text(), "first");
  });
});

describe("KV routes refuse bad input with 400/413/405 and a message", () => {
  it("limits keys and values (413), configurably", async () => {
    const { app, node } = setup({ keyBytesMax: 8, valueBytesMax: 10 });
    assert.equal((await put(app, "k".repeat(9), "v")).status, 413);
    assert.equal((await put(app, "k".repeat(8), "v")).status, 200);
    const big = await put(app, "k", "x".repeat(11));
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: string }).error, /limit of 10 bytes/);
    const cas = await app.request("/kv/k/cas", { method: "POST", body: JSON.stringify({ expect: null, value: "x".repeat(11) }) });
    assert.equal(cas.status, 413);
    assert.equal(node.proposals, 1);
  });

  it("the default limits are 1 KiB keys and 1 MiB values", async () => {
    const { app } = setup();
    assert.equal((await put(app, "k".repeat(1025), "v")).status, 413);
    assert.equal((await put(app, "k".repeat(1024), new Uint8Array(1024 * 1024))).status, 200);
    assert.equal((await put(app, "k", new Uint8Array(1024 * 1024 + 1))).status, 413);
  });

  const bad: [string, string, RequestInit][] = [
    ["CAS body that is not JSON", "/kv/k/cas", { method: "POST", body: "{nope" }],
    ["CAS body that is a JSON array", "/kv/k/cas", { method: "POST", body: "[1]" }],
    ["CAS without value", "/kv/k/cas", { method: "POST", body: '{"expect":null}' }],
    ["CAS with a numeric expect", "/kv/k/cas", { method: "POST", body: '{"expect":1,"value":"v"}' }],
    ["CAS body not UTF-8", "/kv/k/cas", { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) as BodyInit }],
    ["an empty Idempotency-Key", "/kv/k", { method: "PUT", body: "v", headers: { "idempotency-key": "" } }],
    ["a 257-byte Idempotency-Key", "/kv/k", { method: "PUT", body: "v", headers: { "idempotency-key": "i".repeat(257) } }],
    ["a missing key", "/kv/", { method: "PUT", body: "v" }],
    ["a key that is not valid percent-encoded UTF-8", "/kv/%FF%FE", { method: "PUT", body: "v" }],
    ["a key with a truncated escape", "/kv/a%2", { method: "GET" }],
    ["no key at all", "/kv", { method: "GET" }],
  ];
  for (const [name, path, init] of bad) {
    it(`400 for ${name}`, async () => {
      const { app, node } = setup();
      const res = await app.request(path, init);
      assert.equal(res.status, 400, name);
      assert.equal(typeof ((await res.json()) as { error: unknown }).error, "string");
      assert.equal(node.proposals, 0);
    });
  }

  it("405 for a method the path does not take", async () => {
    const { app } = setup();
    assert.equal((await app.request("/kv/k", { method: "POST", body: "x" })).status, 405);
    assert.equal((await app.request("/kv/k/cas", { method: "GET" })).status, 405);
  });
});

describe("KV and cluster routes on a member that is not the leader", () => {
  const leaderUrl = "http://10.0.0.9:7009";
  const writes: [string, string, RequestInit][] = [
    ["PUT", "/kv/k?x=1", { method: "PUT", body: "v" }],
    ["DELETE", "/kv/k", { method: "DELETE" }],
    ["CAS", "/kv/k/cas", { method: "POST", body: '{"expect":null,"value":"v"}' }],
    ["linearizable GET", "/kv/k", { method: "GET" }],
    ["add member", "/cluster/members", { method: "POST", body: '{"id":"n3","url":"http://127.0.0.1:7003"}' }],
    ["remove member", "/cluster/members/n2", { method: "DELETE" }],
    ["transfer", "/cluster/transfer", { method: "POST" }],
  ];
  for (const [name, path, init] of writes) {
    it(`${name} answers 307 to the same path on the leader, or 503 + Retry-After with no leader`, async () => {
      const { app, node } = setup();
      node.mode = { kind: "follower", leaderId: "n9", leaderUrl };
      const res = await app.request(path, init);
      assert.equal(res.status, 307);
      assert.equal(res.headers.get("location"), leaderUrl + path);
      node.mode = { kind: "no-leader" };
      const res2 = await app.request(path, init);
      assert.equal(res2.status, 503);
      assert.equal(res2.headers.get("retry-after"), "1");
    });
  }

  it("GET ?stale still answers locally", async () => {
    const { app, node } = setup();
    await put(app, "k", "v");
    node.mode = { kind: "follower", leaderId: "n9", leaderUrl };
    assert.equal(await (await app.request("/kv/k?stale")).text(), "v");
  });
});

describe("writes whose outcome is unknown", () => {
  it("a proposal dropped after it was appended answers 504 saying so, never 503 or 307", async () => {
    const { app, node } = setup();
    node.mode = { kind: "dropped", outcome: "unknown" };
    const res = await put(app, "k", "v");
    assert.equal(res.status, 504);
    assert.match(((await res.json()) as { error: string }).error, /outcome is unknown/);
    node.mode = { kind: "timeout" };
    assert.equal((await app.request("/kv/k", { method: "DELETE" })).status, 504);
  });

  it("a proposal certainly not applied answers 503 with Retry-After", async () => {
    const { app, node } = setup();
    node.mode = { kind: "dropped", outcome: "not-applied" };
    const res = await put(app, "k", "v");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
  });

  it("a read that times out answers 503 (a read changes nothing)", async () => {
    const { app, node } = setup();
    node.mode = { kind: "timeout" };
    assert.equal((await app.request("/kv/k")).status, 503);
  });
});

describe("authentication with a secret", () => {
  const auth = { authorization: `Bearer ${clientTokenFor(new TextEncoder().encode(SECRET))}` };
  it("needs the client token on /kv and /cluster, not on /status and /metrics; the secret itself is refused", async () => {
    const { app } = setup({ secret: new TextEncoder().encode(SECRET) });
    assert.equal((await put(app, "k", "v")).status, 401);
    assert.equal((await put(app, "k", "v", { authorization: `Bearer ${SECRET}` })).status, 401, "the peer key is not a client credential");
    assert.equal((await put(app, "k", "v", { authorization: "Bearer wrong" })).status, 401);
    assert.equal((await put(app, "k", "v", { authorization: "Basic abc" })).status, 401);
    assert.equal((await put(app, "k", "v", auth)).status, 200);
    assert.equal((await app.request("/kv/k")).status, 401);
    assert.equal((await app.request("/kv/k", { headers: auth })).status, 200);
    assert.equal((await app.request("/cluster/members")).status, 401);
    assert.equal((await app.request("/cluster/members", { headers: auth })).status, 200);
    assert.equal((await app.request("/status")).status, 200);
    assert.equal((await app.request("/metrics")).status, 200);
  });
});

describe("/status, /cluster and /metrics", () => {
  it("/status reports role, term, leader, indexes, members and the KV key count", async () => {
    const { app, node } = setup();
    await put(app, "k", "v");
    const s = (await (await app.request("/status")).json()) as Record<string, unknown>;
    assert.equal(s.id, "n1");
    assert.equal(s.role, "leader");
    assert.equal(s.term, 3);
    assert.deepEqual(s.leader, { id: "n1", url: node.url });
    assert.equal(s.commitIndex, 2);
    assert.equal(s.lastApplied, 2);
    assert.deepEqual((s.members as { id: string; voter: boolean }[]).map((m) => [m.id, m.voter]), [["n1", true], ["n2", true]]);
    assert.deepEqual(s.kv, { keys: 1, idempotencyKeys: 0 });
    node.mode = { kind: "no-leader" };
    const s2 = (await (await app.request("/status")).json()) as Record<string, unknown>;
    assert.deepEqual([s2.role, s2.preCandidate, s2.leader], ["candidate", true, null]);
  });

  it("/status shows catch-up progress from the node's events", async () => {
    const { app, node } = setup();
    node.members.push({ id: "n3", url: "http://127.0.0.1:7003", voter: false });
    node.emit({ type: "catch-up", id: "n3", round: 2, lag: 150 });
    const s = (await (await app.request("/status")).json()) as { members: { id: string; catchUp: unknown }[] };
    assert.deepEqual(s.members.find((m) => m.id === "n3")?.catchUp, { round: 2, lag: 150, failed: null });
  });

  it("adds, removes and transfers through the node, validating the request", async () => {
    const { app, node } = setup();
    const add = (body: string) => app.request("/cluster/members", { method: "POST", body });
    assert.equal((await add('{"id":"n3","url":"http://127.0.0.1:7003/"}')).status, 200);
    assert.deepEqual(node.added, [["n3", "http://127.0.0.1:7003"]]);
    for (const bad of ['{"id":"","url":"http://a:1"}', '{"id":"n4","url":"ftp://a"}', '{"id":"n4","url":"nope"}', '{"id":"n4","url":"http://a:1","voter":false}', "[]", "{"]) {
      const res = await add(bad);
      assert.equal(res.status, 400, bad);
    }
    assert.equal((await app.request("/cluster/members/n2", { method: "DELETE" })).status, 200);
    assert.deepEqual(node.removed, ["n2"]);
    assert.equal((await app.request("/cluster/members/bad%20id", { method: "DELETE" })).status, 400);
    assert.equal((await app.request("/cluster/transfer", { method: "POST", body: '{"to":"n3"}' })).status, 200);
    assert.equal((await app.request("/cluster/transfer", { method: "POST" })).status, 200);
    assert.deepEqual(node.transfers, ["n3", undefined]);
    const members = (await (await app.request("/cluster/members")).json()) as { members: { id: string }[] };
    assert.deepEqual(members.members.map((m) => m.id), ["n1", "n3"]);
  });

  it("/metrics is Prometheus text with the node's gauges, counters and histograms", async () => {
    const { app } = setup();
    await put(app, "k", "v");
    const res = await app.request("/metrics");
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of text.trimEnd().split("\n")) {
      assert.match(line, /^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+|\+Inf|NaN))$/, `bad line: ${line}`);
    }
    for (const name of ["raft_term 3", "raft_is_leader 1", "raft_commit_index 2", "raft_applied_index 2", "raft_proposals_total 1", "raft_rpcs_refused_total 1", "raft_leader_changes_total 1", "kv_keys 1", 'raft_role{role="leader"} 1']) {
      assert.ok(text.includes(`\n${name}\n`), `missing ${name}`);
    }
    assert.ok(text.includes('raft_commit_latency_seconds_bucket{le="0.001"} 2'));
    assert.ok(text.includes('raft_commit_latency_seconds_bucket{le="+Inf"} 4'));
    assert.ok(text.includes("raft_commit_latency_seconds_sum 0.0405"));
    assert.ok(text.includes("# TYPE raft_fsync_latency_seconds histogram"));
  });
});

describe("malformed input never crashes a route", () => {
  it("every answer carries the cluster id, a redirect and a refusal too; CORS headers only for a member's page", async () => {
    const { app, node } = setup();
    const id = node.status().clusterId;
    const answers = [await put(app, "k", "v"), await app.request("/kv/nope"), await app.request("/kv/k", { method: "PATCH" }), await app.request("/status")];
    node.mode = { kind: "follower", leaderId: "n2", leaderUrl: "http://127.0.0.1:7002" };
    answers.push(await put(app, "k", "v"));
    assert.deepEqual(answers.map((r) => r.status), [200, 404, 405, 200, 307]);
    for (const r of answers) {
      assert.equal(r.headers.get(CLUSTER_ID_HEADER), id, `HTTP ${r.status}`);
      assert.equal(r.headers.get("access-control-allow-origin"), null, `HTTP ${r.status} to a request without Origin`);
      assert.equal(r.headers.get("vary"), null);
    }
    node.mode = { kind: "leader" };
    const fromMember = await put(app, "k", "w", { origin: "http://127.0.0.1:7002" });
    assert.equal(fromMember.status, 200);
    assert.equal(fromMember.headers.get("access-control-allow-origin"), "http://127.0.0.1:7002");
    assert.match(fromMember.headers.get("access-control-expose-headers") ?? "", /location/);
    assert.equal(fromMember.headers.get(CLUSTER_ID_HEADER), id);
    assert.equal(typeof ((await fromMember.json()) as { index: unknown }).index, "number");
  });

  it("answers below 500 for a seeded mix of odd paths, methods and bodies (seed 11)", async () => {
    const { app } = setup({ valueBytesMax: 64 });
    let s = 11;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    const paths = ["/kv/", "/kv/%", "/kv/%ZZ", "/kv/a/cas", "/kv/a/b/c", "/cluster/members", "/cluster/members/%00", "/cluster/transfer", "/kv/%C3%28", "/kv/" + "x".repeat(2000)];
    const methods = ["GET", "PUT", "POST", "DELETE", "PATCH"];
    const bodies = ["", "{", "null", '{"to":5}', '{"id":{}}', '{"expect":null,"value":"' + "v".repeat(100) + '"}', "\u0000\u0001"];
    for (let i = 0; i < 300; i++) {
      const path = paths[Math.floor(rnd() * paths.length)]!;
      const method = methods[Math.floor(rnd() * methods.length)]!;
      const body = bodies[Math.floor(rnd() * bodies.length)]!;
      const res = await app.request(path, method === "GET" ? { method } : { method, body });
      assert.ok(res.status < 500, `seed 11 case ${i}: ${method} ${path} ${JSON.stringify(body)} -> ${res.status}`);
    }
  });
});
