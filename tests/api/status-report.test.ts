/**
 * Tests of `raft status`'s report: the table, the JSON, and the problems
 * said in words (no quorum, election under way, a member that cannot keep
 * up or does not answer, a learner, a membership change waiting), from
 * hand-made `/status` answers.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { StatusBody, StatusMember } from "../../src/api/cluster-routes.ts";
import { formatStatus, gatherStatus, statusJson } from "../../src/api/status-report.ts";
import type { StatusFetcher } from "../../src/api/status-report.ts";

const url = (id: string) => `http://127.0.0.1:700${id.slice(1)}`;

function member(id: string, over: Partial<StatusMember> = {}): StatusMember {
  return { id, url: url(id), voter: true, matchIndex: null, lag: null, reachable: null, snapshotTransfer: null, lastHeardAtMs: null, catchUp: null, ...over };
}

function status(id: string, over: Partial<StatusBody> = {}): StatusBody {
  return {
    id,
    url: url(id),
    clusterId: "c1",
    role: "follower",
    preCandidate: false,
    term: 4,
    leader: { id: "n1", url: url("n1") },
    commitIndex: 100,
    lastApplied: 100,
    lastIndex: 100,
    firstIndex: 1,
    members: [member("n1"), member("n2"), member("n3")],
    pendingConfigChange: false,
    runtime: "node",
    version: "0.1.0",
    uptimeSeconds: 12.5,
    ...over,
  };
}

/** A fetcher over a fixed map; members missing from it do not answer. */
function fetcher(answers: Record<string, StatusBody>): StatusFetcher {
  return (base) => {
    const s = Object.values(answers).find((a) => a.url === base);
    return Promise.resolve(s === undefined ? { ok: false, error: "connection refused" } : { ok: true, value: s });
  };
}

const leaderMembers = (over: Record<string, Partial<StatusMember>> = {}) =>
  ["n1", "n2", "n3"].map((id) => member(id, { matchIndex: 100, lag: 0, reachable: true, ...over[id] }));

describe("gatherStatus() and formatStatus()", () => {
  it("a healthy cluster: a table with every member, no problems", async () => {
    const g = await gatherStatus(fetcher({
      n1: status("n1", { role: "leader", members: leaderMembers() }),
      n2: status("n2"),
      n3: status("n3"),
    }), [url("n2")]);
    assert.ok("report" in g);
    const text = formatStatus(g.report);
    assert.match(text, /^cluster c1: leader n1 \(http:\/\/127\.0\.0\.1:7001\), term 4\n\nID +URL +ROLE +TERM +COMMIT +APPLIED +LAG +REACHABLE +PROGRESS\n/);
    assert.match(text, /^n1 +http:\/\/127\.0\.0\.1:7001 +leader +4 +100 +100 +0 +yes$/m);
    assert.match(text, /^n3 +http:\/\/127\.0\.0\.1:7003 +follower +4 +100 +100 +0 +yes$/m);
    assert.doesNotMatch(text, /problems/);
    assert.deepEqual(g.report.problems, []);
  });

  it("no quorum reachable: says so, and which members do not answer", async () => {
    const g = await gatherStatus(fetcher({ n2: status("n2", { role: "candidate", leader: null }) }), [url("n2")]);
    assert.ok("report" in g);
    assert.equal(g.report.leader, null);
    assert.match(g.report.problems[0]!, /^No quorum reachable: 1 of 3 voters answer and a leader needs 2/);
    assert.ok(g.report.problems.some((p) => /Member n1 .* does not answer: connection refused/.test(p)));
    const text = formatStatus(g.report);
    assert.match(text, /NO LEADER/);
    assert.match(text, /^n1 +http:\/\/127\.0\.0\.1:7001 +- +- +- +- +- +no$/m);
  });

  it("a quorum answers but the leader they follow does not: says who and that an election follows", async () => {
    const g = await gatherStatus(fetcher({ n2: status("n2"), n3: status("n3") }), [url("n2")]);
    assert.ok("report" in g);
    assert.match(g.report.problems[0]!, /No leader answers: the members still follow n1 \(http:\/\/127\.0\.0\.1:7001\), which does not answer as leader; they elect a new one/);
  });

  it("a quorum answers but no leader: an election is under way", async () => {
    const g = await gatherStatus(fetcher({ n2: status("n2", { leader: null }), n3: status("n3", { leader: null }) }), [url("n2")]);
    assert.ok("report" in g);
    assert.match(g.report.problems[0]!, /No leader known, though 2 of 3 voters answer: an election is probably under way/);
  });

  it("a member that cannot keep up, a learner being caught up with a snapshot, a membership change waiting", async () => {
    const members = [
      ...leaderMembers({ n3: { lag: 5000, matchIndex: 95000 } }),
      member("n4", { voter: false, lag: 90000, snapshotTransfer: { sentBytes: 3 * 1024 * 1024, totalBytes: 12 * 1024 * 1024 } }),
    ];
    const g = await gatherStatus(fetcher({
      n1: status("n1", { role: "leader", members, pendingConfigChange: true, commitIndex: 100000 }),
      n2: status("n2", { members, commitIndex: 100000 }),
      n3: status("n3", { members, commitIndex: 95000 }),
      n4: status("n4", { role: "learner", members, commitIndex: 10000 }),
    }), [url("n1")]);
    assert.ok("report" in g);
    const p = g.report.problems.join("\n");
    assert.match(p, /Member n3 cannot keep up: 5000 entries behind the leader/);
    assert.match(p, /Member n4 is a learner: it is being caught up/);
    assert.match(p, /A membership change is waiting/);
    const text = formatStatus(g.report);
    assert.match(text, /^n4 .* learner .* snapshot 25% \(3\.0\/12\.0 MiB\)$/m);
    assert.match(text, /\n\nproblems:\n  - /);
    const json = statusJson(g.report) as { members: { id: string; lag: number | null; progress: string | null }[] };
    assert.deepEqual(json.members.find((m) => m.id === "n4"), { ...json.members.find((m) => m.id === "n4")!, lag: 90000, progress: "snapshot 25% (3.0/12.0 MiB)" });
  });

  it("catch-up progress and a failed catch-up come from the leader's view", async () => {
    const members = [...leaderMembers(), member("n4", { voter: false, catchUp: { round: 3, lag: 42, failed: null } }), member("n5", { voter: false, catchUp: { round: 10, lag: 900, failed: "too slow" } })];
    const g = await gatherStatus(fetcher({ n1: status("n1", { role: "leader", members }), n4: status("n4", { role: "learner", members }), n5: status("n5", { role: "learner", members }) }), [url("n1")]);
    assert.ok("report" in g);
    const text = formatStatus(g.report);
    assert.match(text, /^n4 .* catch-up round 3, 42 behind$/m);
    assert.match(g.report.problems.join("\n"), /Member n5 could not be caught up: too slow/);
  });

  it("nobody answers: unreachable, with the reasons", async () => {
    const g = await gatherStatus(fetcher({}), [url("n1"), url("n2")]);
    assert.ok("unreachable" in g);
    assert.match(g.unreachable, /^Cannot reach the cluster \(http:\/\/127\.0\.0\.1:7001: connection refused; http:\/\/127\.0\.0\.1:7002: connection refused\)$/);
  });

  it("only servers that are not raft members: their own errors, each naming its URL, not 'cannot reach'", async () => {
    const notMember: StatusFetcher = (base) => Promise.resolve({ ok: false, notMember: true, error: `${base} is not a raft member: GET /status answered HTTP 404 (text/html)` });
    const g = await gatherStatus(notMember, [url("n1"), url("n2")]);
    assert.ok("unreachable" in g);
    assert.equal(g.unreachable, `${url("n1")} is not a raft member: GET /status answered HTTP 404 (text/html); ${url("n2")} is not a raft member: GET /status answered HTTP 404 (text/html)`);
    const mixed: StatusFetcher = (base) => base === url("n1") ? notMember(base) : Promise.resolve({ ok: false, error: "connection refused" });
    const m = await gatherStatus(mixed, [url("n1"), url("n2")]);
    assert.ok("unreachable" in m);
    assert.equal(m.unreachable, `Cannot reach the cluster (${url("n1")} is not a raft member: GET /status answered HTTP 404 (text/html); ${url("n2")}: connection refused)`);
  });
});
