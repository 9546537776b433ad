/**
 * Tests of the `raft start` log lines (src/api/log-lines.ts): levels, event
 * fields and sentences, JSON and text.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventLevel, jsonEventLine, jsonMessageLine, messageLevel, textLine } from "../../src/api/log-lines.ts";

const TS = new Date("2026-01-02T03:04:05.000Z");

describe("log lines", () => {
  it("a role event carries level, event and the event's fields", () => {
    const line = JSON.parse(jsonEventLine(TS, "n1", { type: "role", role: "leader", term: 7, leader: "n1" }));
    assert.deepEqual(line, { ts: "2026-01-02T03:04:05.000Z", level: "info", member: "n1", msg: "leader in term 7", event: "role", role: "leader", term: 7, leader: "n1" });
  });

  it("a catch-up names the member it is about peer, not member", () => {
    const line = JSON.parse(jsonEventLine(TS, "n1", { type: "catch-up", id: "n4", round: 2, lag: 120 }));
    assert.equal(line.member, "n1");
    assert.equal(line.peer, "n4");
    assert.equal(line.event, "catch-up");
    assert.equal(line.lag, 120);
  });

  it("levels: a stop with an error is error, a failed catch-up warn, failures in messages warn", () => {
    assert.equal(eventLevel({ type: "stopped", error: new Error("fsync failed") }), "error");
    assert.equal(JSON.parse(jsonEventLine(TS, "n1", { type: "stopped", error: new Error("disk") })).error, "disk");
    assert.equal(eventLevel({ type: "stopped", error: null }), "info");
    assert.equal(eventLevel({ type: "catch-up-failed", id: "n4", reason: "slow" }), "warn");
    assert.equal(messageLevel("refused peer request /raft/v1/append from x: 401 bad signature"), "warn");
    assert.equal(messageLevel("snapshot transfer to n2 failed: connection refused"), "warn");
    assert.equal(messageLevel("took snapshot 120 (4096 bytes)"), "info");
    assert.equal(messageLevel("stopped: the disk is full"), "error");
    assert.equal(messageLevel("FATAL: fsync failed; the node has stopped"), "error");
    assert.equal(messageLevel("leadership transfer to n2 aborted: timeout"), "warn");
    assert.deepEqual(JSON.parse(jsonMessageLine(TS, "n1", "hello")), { ts: "2026-01-02T03:04:05.000Z", level: "info", member: "n1", msg: "hello" });
  });

  it("text lines are time, member, message", () => {
    assert.equal(textLine(TS, "n1", "leader in term 7"), "2026-01-02T03:04:05.000Z n1 leader in term 7");
  });
});
