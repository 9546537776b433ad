/**
 * Answers never lie while a leader stops under concurrent writes, whatever
 * way it stops: SIGTERM, SIGINT, `raft leave`, and removing itself through
 * the API (issue "The production driver under the simulator", defect 5:
 * Deno answered pending requests with one shared 503 although the writes
 * had been applied). Real `raft start` processes on this runtime; each
 * answer is checked against what the surviving cluster holds: a 200 is
 * there, a 307, 503 or 4xx is not, a 504 or a closed connection may be
 * either. `close()` on the library is checked in-process the same way.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import { apiRoutes } from "../../src/api/routes.ts";
import { RaftNode } from "../../src/node/raft-node.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { runCli, RUNTIME } from "./run-cli.ts";

const WRITES = 50;

interface Answer {
  readonly key: string;
  readonly value: string;
  /** HTTP status, or "closed" when the connection failed without one. */
  readonly status: number | "closed";
}

/** Fires `WRITES` concurrent PUTs at `base` (no redirect following: a 307 is an answer). */
function burst(base: string, prefix: string): Promise<Answer[]> {
  const out: Promise<Answer>[] = [];
  for (let i = 0; i < WRITES; i++) {
    const key = `${prefix}-${i}`;
    const value = `v-${prefix}-${i}`;
    out.push((async () => {
      try {
        const res = await fetch(`${base}/kv/${key}`, { method: "PUT", body: value, redirect: "manual", signal: AbortSignal.timeout(30_000) });
        await res.arrayBuffer().catch(() => {});
        return { key, value, status: res.status };
      } catch {
        return { key, value, status: "closed" as const };
      }
    })());
  }
  return Promise.all(out);
}

/** Reads `key` linearizably at `base` (following redirects to the leader); null when absent. */
async function read(base: string, key: string): Promise<string | null> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/kv/${key}`, { signal: AbortSignal.timeout(15_000) });
    const body = await res.text();
    if (res.status === 200) return body;
    if (res.status === 404) return null;
    if (attempt > 50) throw new Error(`GET ${key} at ${base}: ${res.status} ${body}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Checks every answer against the cluster's state; returns a summary of the answers seen. */
async function checkAnswers(answers: readonly Answer[], readBase: string, ctx: () => string): Promise<string> {
  const seen = new Map<string, number>();
  for (const a of answers) {
    seen.set(String(a.status), (seen.get(String(a.status)) ?? 0) + 1);
    const got = await read(readBase, a.key);
    const where = `${a.key} answered ${a.status}, the cluster holds ${got === null ? "nothing" : JSON.stringify(got)}`;
    if (a.status === 200) assert.equal(got, a.value, `${where}: an acknowledged write is lost\n${ctx()}`);
    else if (a.status === 307 || a.status === 503 || (typeof a.status === "number" && a.status >= 400 && a.status < 500)) {
      assert.equal(got, null, `${where}: ${a.status} promised it was not applied\n${ctx()}`);
    } else assert.ok(a.status === 504 || a.status === "closed", `${where}: an answer that is neither a result, a refusal nor "unknown"\n${ctx()}`);
  }
  return [...seen].map(([s, n]) => `${n}x${s}`).join(" ");
}

describe(`a leader stopping under concurrent writes answers honestly (${RUNTIME})`, () => {
  let c: Cluster;
  const ctx = () => c.diagnostics();

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3", "n4", "n5"], RUNTIME);
    const [n1, ...rest] = c.members as [MemberProcess, ...MemberProcess[]];
    n1.start(["--id", "n1", "--data", n1.dir, "--listen", `127.0.0.1:${n1.port}`, "--bootstrap"]);
    await n1.ready();
    for (const m of rest) {
      m.start(["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--join", n1.url]);
      await m.ready(60_000);
    }
  });
  after(async () => {
    await c.destroy();
  });

  const ways: readonly { name: string; stop: (leader: MemberProcess) => Promise<void> }[] = [
    { name: "SIGTERM", stop: (l) => l.stop("SIGTERM") },
    {
      name: "raft leave",
      stop: async (l) => {
        const r = await runCli(["leave", "--cluster", l.url], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, `${r.cmd}: ${r.stderr}\n${ctx()}`);
        assert.equal(await l.waitExit(), 0);
      },
    },
    {
      name: "removing itself",
      stop: async (l) => {
        const res = await fetch(`${l.url}/cluster/members/${l.id}`, { method: "DELETE", signal: AbortSignal.timeout(60_000) }).catch(() => null);
        if (res !== null) await res.arrayBuffer().catch(() => {});
        assert.equal(await l.waitExit(), 0);
      },
    },
    { name: "SIGINT", stop: (l) => l.stop("SIGINT") },
  ];

  for (const [round, way] of ways.entries()) {
    it(`stopped by ${way.name}`, async () => {
      const alive = () => c.members.filter((m) => m.child !== null);
      const leader = await c.waitLeader(alive());
      const writes = burst(leader.url, `r${round}`);
      await new Promise((r) => setTimeout(r, 5));
      await way.stop(leader);
      const answers = await writes;
      const next = await c.waitLeader(alive(), 30_000);
      const summary = await checkAnswers(answers, next.url, ctx);
      assert.ok(summary.length > 0, summary);
      if (way.name === "SIGTERM") {
        // Back in the cluster with its data: two more ways of stopping still leave a quorum.
        leader.start(["--data", leader.dir]);
        await leader.ready(60_000);
      }
    });
  }
});

describe(`close() under concurrent writes answers honestly (${RUNTIME}, in process)`, () => {
  for (const thread of ["worker", "caller"] as const) {
    it(`thread: ${thread}`, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "raft-close-writes-"));
      try {
        const kv = new KvStateMachine();
        const node = await RaftNode.start({ id: "n1", dataDir, host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: kv, thread, logger: () => {}, routes: (app, n) => apiRoutes(app, n, kv) });
        await waitFor("a leader", () => node.status().role === "leader", 20_000);
        const writes = burst(node.url, thread);
        await new Promise((r) => setTimeout(r, 5));
        await node.close();
        const answers = await writes;
        const again = new KvStateMachine();
        const reopened = await RaftNode.start({ dataDir, stateMachine: again, thread, logger: () => {}, routes: (app, n) => apiRoutes(app, n, again) });
        try {
          await waitFor("a leader", () => reopened.status().role === "leader", 20_000);
          await checkAnswers(answers, reopened.url, () => `data ${dataDir}`);
        } finally {
          await reopened.close();
        }
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
