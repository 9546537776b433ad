/**
 * Tests of `evaluateHealth` / `evaluateReady` (src/node/health.ts) and of the
 * routes that serve them (src/api/health-routes.ts), over hand-made statuses.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { APPLY_LAG_ENTRIES_MAX, evaluateHealth, evaluateReady } from "../../src/node/health.ts";
import { healthRoutes } from "../../src/api/health-routes.ts";
import type { MemberStatus, NodeStatus, RaftNodeApi } from "../../src/node/types.ts";
import { CLUSTER_ID_HEADER } from "../../src/api/http.ts";

const NOW = 1_000_000;
const CTX = { nowMs: NOW, electionTimeoutMs: 1000 };

function member(id: string, lastHeardAtMs: number | null, voter = true): MemberStatus {
  return { id, url: `http://127.0.0.1/${id}`, voter, matchIndex: null, lag: null, reachable: null, snapshotTransfer: null, lastHeardAtMs };
}

function status(over: Partial<NodeStatus>): NodeStatus {
  return {
    id: "a",
    url: "http://127.0.0.1/a",
    clusterId: "c1",
    role: "follower",
    term: 3,
    leader: { id: "b", url: "http://127.0.0.1/b" },
    commitIndex: 10,
    lastApplied: 10,
    lastIndex: 10,
    firstIndex: 1,
    members: [member("a", null), member("b", NOW - 50), member("c", NOW - 50)],
    pendingConfigChange: false,
    runtime: "node",
    ...over,
  };
}

describe("evaluateHealth()", () => {
  it("a follower that heard from its leader within the election timeout is healthy", () => {
    assert.deepEqual(evaluateHealth(status({}), CTX), { health: "true", reason: "" });
  });

  it("a follower whose leader went silent is unhealthy, and says since when", () => {
    const r = evaluateHealth(status({ members: [member("a", null), member("b", NOW - 1500), member("c", NOW - 20)] }), CTX);
    assert.equal(r.health, "false");
    assert.match(r.reason, /no word from the leader b .*1500 ms ago/);
  });

  it("no leader, or an election under way, is unhealthy", () => {
    assert.match(evaluateHealth(status({ leader: null }), CTX).reason, /no leader known \(term 3\)/);
    assert.match(evaluateHealth(status({ leader: null, role: "precandidate" }), CTX).reason, /election is under way/);
  });

  it("a leader needs a quorum of voters heard from, itself included", () => {
    const lead = { role: "leader" as const, leader: { id: "a", url: "http://127.0.0.1/a" } };
    assert.equal(evaluateHealth(status({ ...lead, members: [member("a", null), member("b", NOW - 10), member("c", null)] }), CTX).health, "true");
    const r = evaluateHealth(status({ ...lead, members: [member("a", null), member("b", NOW - 5000), member("c", null)] }), CTX);
    assert.equal(r.health, "false");
    assert.match(r.reason, /1 of 3 voters .* 2 needed; silent: b \(last heard 5000 ms ago\), c \(last heard never\)/);
    // Learners do not count towards the quorum.
    const l = evaluateHealth(status({ ...lead, members: [member("a", null), member("b", null), member("c", null), member("d", NOW, false)] }), CTX);
    assert.equal(l.health, "false");
    // A single member leads alone.
    assert.equal(evaluateHealth(status({ ...lead, members: [member("a", null)] }), CTX).health, "true");
  });

  it("applied trailing commit by more than the bound is unhealthy", () => {
    assert.equal(evaluateHealth(status({ commitIndex: 10 + APPLY_LAG_ENTRIES_MAX, lastApplied: 10 }), CTX).health, "true");
    const r = evaluateHealth(status({ commitIndex: 11 + APPLY_LAG_ENTRIES_MAX, lastApplied: 10 }), CTX);
    assert.match(r.reason, /applied index 10 is 5001 entries behind the commit index 5011/);
  });

  it("evaluateReady() is unhealthy while the log replays", () => {
    assert.match(evaluateReady(status({}), CTX, false).reason, /replaying its log/);
    assert.equal(evaluateReady(status({}), CTX, true).health, "true");
  });
});

describe("healthRoutes()", () => {
  function app(s: () => NodeStatus, serving = true): Hono {
    const a = new Hono();
    healthRoutes(a, { status: s } as unknown as RaftNodeApi, { electionTimeoutMs: 1000, serving: () => serving });
    return a;
  }

  it("answer 200 or 503 in etcd's shape, with the member header, without a token", async () => {
    const fresh = () => status({ members: [member("a", null), member("b", Date.now()), member("c", null)] });
    const ok = await app(fresh).request("/health");
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get(CLUSTER_ID_HEADER), "c1");
    assert.deepEqual(await ok.json(), { health: "true", reason: "" });
    const down = await app(() => status({ leader: null })).request("/health");
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as { health: string }).health, "false");
    const starting = app(fresh, false);
    assert.equal((await starting.request("/readyz")).status, 503);
    assert.equal((await starting.request("/livez")).status, 200);
    assert.equal((await starting.request("/health")).status, 200);
  });

  it("a closed node answers 503 on /health and still 200 on /livez", async () => {
    const a = app(() => {
      throw new Error("closed");
    });
    assert.equal((await a.request("/health")).status, 503);
    assert.equal((await a.request("/livez")).status, 200);
  });
});
