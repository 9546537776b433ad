/**
 * The consensus loop on its own thread (`thread: "worker"`): a leader whose
 * state machine blocks its thread for three election timeouts keeps its
 * leadership and loses nothing, while the same run on one thread
 * ("caller") changes leader; and a worker that throws or is terminated
 * rejects every pending call, releases the lock, and a restart recovers
 * everything acknowledged.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runtime } from "../../adapters/mod.ts";
import { bootstrapDataDir, RaftNode } from "../../src/node/raft-node.ts";
import { APPLY_ACK_EVERY, APPLY_WINDOW } from "../../src/node/worker/protocol.ts";
import type { NodeEvent } from "../../src/node/types.ts";
import { freePorts } from "../helpers/ports.ts";
import type { RuntimeName } from "../helpers/runtimes.ts";
import { waitFor } from "../helpers/wait.ts";
import { Harness } from "./harness.ts";

const RT = runtime.name as RuntimeName;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-worker-"));
let keep = false;
after(() => {
  if (!keep) fs.rmSync(root, { recursive: true, force: true });
});

/** Runs a 3-member cluster whose leader blocks on every 100th apply; returns what happened. */
async function blockingRun(thread: "worker" | "caller"): Promise<{ termChanged: boolean; leaderBlocks: number }> {
  const h = new Harness(`block-${thread}`);
  try {
    const ids = ["a", "b", "c"];
    const ports = await freePorts(3);
    const flag = ids.map((id, i) => `${id}=http://127.0.0.1:${ports[i]}`).join(",");
    for (let i = 0; i < 3; i++) {
      await h.start(ids[i]!, ports[i]!, RT, ["--id", ids[i]!, "--port", String(ports[i]), "--members", flag, "--thread", thread, "--block-every", "100"]);
    }
    let leader = await h.leader(ids);
    const termOf = async (id: string) => (await h.call<{ term: number }>(id, "GET", "/st")).json.term;
    const startTerm = await termOf(leader);
    const acked = new Map<string, number>();
    let n = 0;
    // 250 acknowledged proposals: the leader applies ids 100 and 200 (at least) while leading.
    while (acked.size < 250) {
      const data = `w-${n++}`;
      let res: { status: number; json: { index: number } } | null = null;
      try {
        res = await h.call<{ index: number }>(leader, "POST", "/p", data);
      } catch {
        // timed out: outcome unknown, not counted
      }
      if (res !== null && res.status === 200) acked.set(data, res.json.index);
      else leader = await h.leader(ids);
    }
    const last = Math.max(...acked.values());
    let termChanged = false;
    let leaderBlocks = 0;
    for (const id of ids) {
      await waitFor(`${id} to apply ${last}`, async () => (await h.applied(id)).some(([i]) => i >= last), 30_000);
      const applied = await h.applied(id);
      const have = new Map(applied.map(([i, d]) => [d, i]));
      for (const [data, index] of acked) assert.equal(have.get(data), index, `${thread}: ${id} lost acknowledged ${data}@${index}`);
      if ((await termOf(id)) !== startTerm) termChanged = true;
      leaderBlocks += (await h.call<{ blocks: number }>(id, "GET", "/applied")).json.blocks;
    }
    await h.stop(false);
    return { termChanged, leaderBlocks };
  } catch (err) {
    keep = true;
    console.error(`\nblocking run (${thread}, ${RT}) failed; members (data kept under ${h.root}):\n${h.describe()}`);
    await h.stop(true);
    throw err;
  }
}

describe(`RaftNode thread option (${RT})`, () => {
  it("a leader whose state machine blocks for 3 election timeouts keeps leading in worker mode, and loses it in caller mode", async () => {
    const worker = await blockingRun("worker");
    assert.ok(worker.leaderBlocks >= 2, `the leader blocked ${worker.leaderBlocks} times`);
    assert.equal(worker.termChanged, false, "worker mode: no election while the state machine's thread was blocked");
    const caller = await blockingRun("caller");
    assert.ok(caller.leaderBlocks >= 1, `the leader blocked ${caller.leaderBlocks} times`);
    assert.equal(caller.termChanged, true, "caller mode: the blocked leader was deposed (proves the worker is what kept it)");
  });

  it("worker mode with an asynchronous state machine: results in order, a read barrier and routes see every apply before them", async () => {
    const dataDir = path.join(root, "async-sm");
    const order: number[] = [];
    let last = 0;
    const sm = {
      async apply(id: number, data: Uint8Array) {
        await new Promise((r) => setTimeout(r, 0));
        order.push(id);
        last = id;
        return `${id}:${new TextDecoder().decode(data)}`;
      },
      lastApplied: () => last,
    };
    const node = await RaftNode.start({
      id: "n1", dataDir, host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, thread: "worker", tickMs: 50, logger: () => {},
      routes: (app) => app.get("/last", (c) => c.json({ last })),
    });
    try {
      assert.equal(node.thread, "worker");
      await waitFor("n1 to lead", () => node.status().role === "leader", 10_000);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => node.propose(new TextEncoder().encode(`v${i}`))));
      // Each proposal settles with its own entry, and they were logged in the order they were made.
      results.forEach((r, i) => assert.match(r as string, new RegExp(`^\\d+:v${i}$`)));
      const indexes = results.map((r) => Number((r as string).split(":")[0]));
      for (let i = 1; i < indexes.length; i++) assert.ok(indexes[i]! > indexes[i - 1]!, `v${i} at ${indexes[i]}, v${i - 1} at ${indexes[i - 1]}`);
      for (let i = 1; i < order.length; i++) assert.ok(order[i]! > order[i - 1]!, `applied ${order[i]} after ${order[i - 1]}`);
      const writes = Array.from({ length: 20 }, (_, i) => node.propose(new TextEncoder().encode(`w${i}`)));
      const lastIndex = Math.max(...(await Promise.all(writes)).map((r) => Number((r as string).split(":")[0])));
      await node.readBarrier();
      assert.ok(last >= lastIndex && node.status().lastApplied >= lastIndex, `barrier after ${lastIndex}: state machine at ${last}`);
      const viaRoute = await (await fetch(`${node.url}/last`)).json() as { last: number };
      assert.ok(viaRoute.last >= lastIndex);
      // Made in one tick with close(): the proposal before it settles either way, the one after is refused.
      const before = node.propose(new TextEncoder().encode("before-close"));
      const closing = node.close();
      const afterClose = node.propose(new TextEncoder().encode("after-close"));
      await assert.rejects(afterClose, (err: unknown) => err instanceof Error && err.name === "ClosedError");
      let outcome: string | undefined;
      before.then((v) => (outcome = `applied ${v}`), (err: Error) => (outcome = err.name));
      await waitFor("the proposal made just before close() to settle", () => outcome, 20_000);
      await closing;
    } finally {
      await node.close();
    }
  });

  it("worker-mode followers, whose threads make no calls, keep acknowledging applied batches: far more than the apply window reach their state machines", async () => {
    // A follower's caller's thread sends the worker nothing while entries arrive, so the batches it applies are
    // acknowledged on their own, one message per APPLY_ACK_EVERY: were they not, its worker would stop applying
    // after APPLY_WINDOW batches. Proposals one after another: each commit is its own apply batch on every member.
    assert.ok(APPLY_ACK_EVERY <= APPLY_WINDOW);
    const ids = ["f1", "f2", "f3"];
    const ports = await freePorts(3);
    const members = ids.map((id, i) => ({ id, url: `http://127.0.0.1:${ports[i]}`, voter: true }));
    const applied = new Map<string, number>();
    const nodes: RaftNode[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const dataDir = path.join(root, `acks-${ids[i]}`);
        await bootstrapDataDir(dataDir, { id: ids[i]!, host: "127.0.0.1", port: ports[i]!, members });
        let last = 0;
        const sm = {
          apply(index: number) {
            last = index;
            applied.set(ids[i]!, index);
            return index;
          },
          lastApplied: () => last,
        };
        nodes.push(await RaftNode.start({ dataDir, stateMachine: sm, thread: "worker", tickMs: 50, logger: () => {} }));
      }
      const leader = await waitFor("a leader", () => nodes.find((n) => n.status().role === "leader"), 20_000);
      const count = 3 * APPLY_WINDOW + APPLY_ACK_EVERY + 3;
      let lastIndex = 0;
      for (let i = 0; i < count; i++) lastIndex = await leader.propose(new TextEncoder().encode(`e${i}`)) as number;
      await waitFor(`every member to apply up to ${lastIndex}`, () => ids.every((id) => (applied.get(id) ?? 0) >= lastIndex), 20_000)
        .catch((err: Error) => {
          keep = true;
          throw new Error(`${err.message}: applied ${JSON.stringify([...applied])}, ports ${ports.join(",")}, data in ${root}`);
        });
    } finally {
      for (const n of nodes) await n.close();
    }
  });

  for (const kind of ["throw", "terminate"] as const) {
    it(`a worker that ${kind === "throw" ? "throws" : "is terminated"}: pending calls reject, the lock is released, a restart recovers everything acknowledged`, async () => {
      const dataDir = path.join(root, `fault-${kind}`);
      const applied = new Map<number, string>();
      let last = 0;
      const sm = {
        apply(id: number, data: Uint8Array) {
          applied.set(id, new TextDecoder().decode(data));
          last = id;
          return id;
        },
        lastApplied: () => last,
      };
      const enc = (s: string) => new TextEncoder().encode(s);
      const node = await RaftNode.start({ id: "n1", dataDir, host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, thread: "worker", tickMs: 50, logger: () => {} });
      const stopped: NodeEvent[] = [];
      node.on((ev) => {
        if (ev.type === "stopped") stopped.push(ev);
      });
      await waitFor("n1 to lead", () => node.status().role === "leader", 10_000);
      const acked = new Map<string, number>();
      for (let i = 0; i < 100; i++) acked.set(`a${i}`, await node.propose(enc(`a${i}`)) as number);
      // 200 in flight when the worker fails: each settles (no hang), the unresolved ones reject.
      const pending = Array.from({ length: 200 }, (_, i) => node.propose(enc(`p${i}`)).then((index) => acked.set(`p${i}`, index as number)));
      RaftNode.injectWorkerFault(node, kind);
      const outcomes = await Promise.allSettled(pending);
      const rejected = outcomes.filter((o) => o.status === "rejected").length;
      await waitFor("the stopped event", () => stopped.length === 1, 10_000);
      assert.ok(stopped[0]!.type === "stopped" && stopped[0]!.error !== null, "stopped carries the worker's error");
      await assert.rejects(node.propose(enc("late")), Error);
      await assert.rejects(node.readBarrier(), Error);
      assert.ok(rejected + acked.size - 100 === 200, `every pending proposal settled (${rejected} rejected)`);

      // The lock is free (a second start would throw LockedError otherwise); an empty state machine gets everything back.
      applied.clear();
      last = 0;
      const again = await RaftNode.start({ dataDir, stateMachine: sm, thread: "worker", tickMs: 50, logger: () => {} });
      try {
        await waitFor("n1 to lead again", () => again.status().role === "leader", 10_000);
        const fresh = await again.propose(enc("fresh")) as number;
        assert.ok(fresh > Math.max(...acked.values()));
        for (const [data, index] of acked) assert.equal(applied.get(index), data, `restart lost acknowledged ${data}@${index} (${kind}, data ${dataDir})`);
      } finally {
        await again.close();
      }
      await assert.rejects(again.propose(enc("closed")), (err: unknown) => err instanceof Error && err.name === "ClosedError");
    });
  }
});
