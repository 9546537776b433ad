/**
 * End-to-end tests of `RaftNode` with real processes on loopback, real files
 * and SIGKILL: failover without losing an acknowledged write, restart replay
 * into a persisted state machine, the seed's compaction, joining after
 * compaction by snapshot, removals (the leader too), a mixed-runtime cluster,
 * and hostile peer RPCs.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runtime } from "../../adapters/mod.ts";
import { freePorts } from "../helpers/ports.ts";
import { ONCE_PER_SUITE, type RuntimeName } from "../helpers/runtimes.ts";
import { waitFor } from "../helpers/wait.ts";
import { Harness } from "./harness.ts";

const RT = runtime.name as RuntimeName;
const harnesses: Harness[] = [];
let failed = false;
after(async () => {
  for (const h of harnesses) await h.stop(failed);
});

/** Runs `body` with a fresh harness; on failure prints what reproduces it. */
async function withCluster(name: string, body: (h: Harness) => Promise<void>): Promise<void> {
  const h = new Harness(name);
  harnesses.push(h);
  try {
    await body(h);
  } catch (err) {
    failed = true;
    console.error(`\n${name} failed; members (data kept under ${h.root}):\n${h.describe()}`);
    throw err;
  }
  await h.stop(false);
}

function membersFlag(ids: readonly string[], ports: readonly number[]): string {
  return ids.map((id, i) => `${id}=http://127.0.0.1:${ports[i]}`).join(",");
}

function assertOrderedOnce(applied: [number, string][], who: string): void {
  for (let i = 1; i < applied.length; i++) {
    assert.ok(applied[i]![0] > applied[i - 1]![0], `${who} applied index ${applied[i]![0]} after ${applied[i - 1]![0]}`);
  }
}

describe(`RaftNode end to end (${RT})`, () => {
  it("SIGKILL of the leader mid-stream loses no acknowledged proposal; the restarted member replays each id once", async () => {
    await withCluster("failover", async (h) => {
      const ids = ["a", "b", "c"];
      const ports = await freePorts(3);
      const flag = membersFlag(ids, ports);
      for (let i = 0; i < 3; i++) await h.start(ids[i]!, ports[i]!, RT, ["--id", ids[i]!, "--port", String(ports[i]), "--members", flag]);
      const leader = await h.leader(ids);

      // A stream of proposals, 16 in flight, while the leader is killed.
      const acked = new Map<string, number>();
      let n = 0;
      let stop = false;
      const workers = Array.from({ length: 16 }, async () => {
        while (!stop) {
          const data = `op-${n++}`;
          try {
            const { status, json } = await h.call<{ index: number }>(leader, "POST", "/p", data);
            if (status === 200) acked.set(data, json.index);
          } catch {
            // the leader died under us: outcome unknown, not counted
          }
        }
      });
      await waitFor("100 acknowledged proposals", () => acked.size >= 100, 30_000);
      await h.kill(leader);
      stop = true;
      await Promise.all(workers);
      assert.ok(acked.size >= 100);

      const survivors = ids.filter((x) => x !== leader);
      const newLeader = await h.leader(survivors);
      // Commit a fresh entry so every survivor has applied everything before it.
      const fresh = await h.call<{ index: number }>(newLeader, "POST", "/p", "after-failover");
      assert.equal(fresh.status, 200);
      for (const id of survivors) {
        await waitFor(`${id} to apply ${fresh.json.index}`, async () => (await h.applied(id)).some(([i]) => i >= fresh.json.index));
        const applied = await h.applied(id);
        assertOrderedOnce(applied, id);
        const have = new Map(applied.map(([i, d]) => [d, i]));
        for (const [data, index] of acked) assert.equal(have.get(data), index, `${id} lost acknowledged ${data}@${index}`);
      }

      // The killed member comes back from its data directory alone.
      await h.start(leader, h.members.get(leader)!.port, RT, []);
      await waitFor(`${leader} to catch up`, async () => (await h.applied(leader)).some(([i]) => i >= fresh.json.index), 30_000);
      const applied = await h.applied(leader);
      assertOrderedOnce(applied, leader);
      const have = new Map(applied.map(([i, d]) => [d, i]));
      for (const [data, index] of acked) assert.equal(have.get(data), index, `restarted ${leader} lost ${data}@${index}`);

      // Hostile peer RPCs are refused and change nothing.
      const target = h.members.get(survivors[0]!)!;
      for (const [body, headers, want] of [
        [new Uint8Array([1, 2, 3]), { "x-raft-cluster": "nope", "x-raft-from": "z" }, 403],
        [new Uint8Array(0), {}, 403],
      ] as const) {
        const res = await fetch(`${target.url}/raft/v1/messages`, { method: "POST", body, headers });
        assert.equal(res.status, want);
      }
      const still = await h.call<{ index: number }>(newLeader, "POST", "/p", "still-alive");
      assert.equal(still.status, 200);
    });
  });

  it("the seed's compaction drops old segments, a restart loses nothing, a new member joins by snapshot, then removals (the leader last)", async () => {
    await withCluster("compaction", async (h) => {
      const ids = ["a", "b", "c"];
      const ports = await freePorts(4);
      const flag = membersFlag(ids, ports);
      const seg = ["--segment-bytes", "4096"];
      for (let i = 0; i < 3; i++) await h.start(ids[i]!, ports[i]!, RT, ["--id", ids[i]!, "--port", String(ports[i]), "--members", flag, ...seg]);
      const leader = await h.leader(ids);
      const payload = "x".repeat(200);
      for (let i = 0; i < 300; i++) assert.equal((await h.call(leader, "POST", "/p", `${i}:${payload}`)).status, 200);

      const logDir = (id: string) => path.join(h.members.get(id)!.dataDir, "log");
      const before = fs.readdirSync(logDir(leader)).length;
      const { json: compacted } = await h.call<{ marker: number; firstIndex: number }>(leader, "POST", "/compact");
      assert.ok(compacted.firstIndex > 1, `firstIndex ${compacted.firstIndex} after compaction`);
      assert.ok(fs.readdirSync(logDir(leader)).length < before, "whole segments were deleted");

      // Restart the compacted leader: nothing lost.
      const appliedBefore = await h.applied(leader);
      await h.kill(leader);
      await h.start(leader, h.members.get(leader)!.port, RT, seg);
      const appliedAfter = await h.applied(leader);
      assert.deepEqual(appliedAfter.slice(0, appliedBefore.length), appliedBefore);

      // Compact every member, then a fourth joins with an empty data dir: only a snapshot can catch it up.
      const lead2 = await h.leader(ids);
      for (const id of ids) await h.call(id, "POST", "/compact");
      await h.start("d", ports[3]!, RT, ["--id", "d", "--port", String(ports[3]), "--join", h.members.get(lead2)!.url, ...seg]);
      const leaderApplied = await h.applied(lead2);
      await waitFor("d to hold everything", async () => (await h.applied("d")).length >= leaderApplied.length, 30_000);
      assert.deepEqual((await h.applied("d")).slice(0, leaderApplied.length), leaderApplied);

      // Remove a follower, then the leader removes itself; the rest elect a new leader and keep working.
      const follower = ids.find((x) => x !== lead2)!;
      assert.equal((await h.call(lead2, "POST", "/members/remove", JSON.stringify({ id: follower }))).status, 200);
      assert.equal((await h.call(lead2, "POST", "/members/remove", JSON.stringify({ id: lead2 }))).status, 200);
      const rest = ["a", "b", "c", "d"].filter((x) => x !== follower && x !== lead2);
      const lead3 = await h.leader(rest);
      assert.equal((await h.call(lead3, "POST", "/p", "after-removals")).status, 200);
      const { json: st } = await h.call<{ members: { id: string }[] }>(lead3, "GET", "/st");
      assert.deepEqual(st.members.map((m) => m.id).sort(), rest.sort());
    });
  });

  if (RT === ONCE_PER_SUITE) {
    it("a mixed-runtime cluster (Node, Deno, Bun) replicates and fails over", async () => {
      await withCluster("mixed", async (h) => {
        const ids = ["n", "d", "b"];
        const rts: RuntimeName[] = ["node", "deno", "bun"];
        const ports = await freePorts(3);
        const flag = membersFlag(ids, ports);
        for (let i = 0; i < 3; i++) await h.start(ids[i]!, ports[i]!, rts[i]!, ["--id", ids[i]!, "--port", String(ports[i]), "--members", flag]);
        const leader = await h.leader(ids);
        for (let i = 0; i < 50; i++) assert.equal((await h.call(leader, "POST", "/p", `m${i}`)).status, 200);
        await h.kill(leader);
        const survivors = ids.filter((x) => x !== leader);
        const next = await h.leader(survivors);
        const { json } = await h.call<{ index: number }>(next, "POST", "/p", "after");
        for (const id of survivors) {
          await waitFor(`${id} to apply`, async () => (await h.applied(id)).some(([i]) => i >= json.index));
          const data = (await h.applied(id)).map(([, d]) => d);
          for (let i = 0; i < 50; i++) assert.ok(data.includes(`m${i}`), `${id} lost m${i}`);
        }
      });
    });
  }
});
