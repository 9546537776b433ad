/**
 * Tests of `raft health`'s gathering and table (src/api/health-report.ts)
 * over a fake fetcher: members found from the membership, a given client URL
 * standing for its member, unanswered members as unhealthy rows.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatHealth, gatherHealth } from "../../src/api/health-report.ts";
import type { JsonFetcher } from "../../src/api/health-report.ts";

const members = [
  { id: "n1", url: "http://127.0.0.1:7001" },
  { id: "n2", url: "http://127.0.0.1:7002" },
  { id: "n3", url: "http://127.0.0.1:7003" },
];

function fetcher(answers: Record<string, { status: number; value: unknown } | string>): JsonFetcher {
  return (url) => {
    const a = answers[url];
    if (a === undefined) return Promise.resolve({ ok: false, error: "connection refused" });
    if (typeof a === "string") return Promise.resolve({ ok: false, error: a });
    return Promise.resolve({ ok: true, ...a });
  };
}

const healthy = { status: 200, value: { health: "true", reason: "" } };

describe("gatherHealth()", () => {
  it("asks every member of the membership; a member that does not answer is an unhealthy row", async () => {
    const rows = await gatherHealth(fetcher({
      "http://127.0.0.1:7001/status": { status: 200, value: { id: "n1", members } },
      "http://127.0.0.1:7001/health": healthy,
      "http://127.0.0.1:7002/health": { status: 503, value: { health: "false", reason: "no leader known (term 3)" } },
      "http://127.0.0.1:7003/health": "no answer in time",
    }), ["http://127.0.0.1:7001/"], () => 0);
    assert.deepEqual(rows, [
      { url: "http://127.0.0.1:7001", id: "n1", healthy: true, reason: "", tookMs: 0 },
      { url: "http://127.0.0.1:7002", id: "n2", healthy: false, reason: "no leader known (term 3)", tookMs: 0 },
      { url: "http://127.0.0.1:7003", id: "n3", healthy: false, reason: "no answer in time", tookMs: 0 },
    ]);
    assert.match(formatHealth(rows), /^URL +ID +HEALTHY +TOOK +REASON\nhttp:\/\/127\.0\.0\.1:7001 +n1 +true +0 ms\n/);
  });

  it("a given client URL stands for its member; a URL that answers no status still gets a row", async () => {
    const rows = await gatherHealth(fetcher({
      "http://127.0.0.1:9002/status": { status: 200, value: { id: "n2", members } },
      "http://127.0.0.1:9002/health": healthy,
      "http://127.0.0.1:7001/health": healthy,
      "http://127.0.0.1:7003/health": healthy,
      "http://127.0.0.1:9999/health": { status: 404, value: { error: "not found" } },
    }), ["http://127.0.0.1:9002", "http://127.0.0.1:9999"], () => 0);
    assert.deepEqual(rows.map((r) => [r.url, r.id, r.healthy]), [
      ["http://127.0.0.1:9002", "n2", true],
      ["http://127.0.0.1:9999", null, false],
      ["http://127.0.0.1:7001", "n1", true],
      ["http://127.0.0.1:7003", "n3", true],
    ]);
    assert.equal(rows[1]!.reason, "answered HTTP 404 without a health report");
  });

  it("nobody answering leaves one unhealthy row per given URL", async () => {
    const rows = await gatherHealth(fetcher({}), ["http://127.0.0.1:7001"], () => 0);
    assert.deepEqual(rows, [{ url: "http://127.0.0.1:7001", id: null, healthy: false, reason: "connection refused", tookMs: 0 }]);
  });
});
