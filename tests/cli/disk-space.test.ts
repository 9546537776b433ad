/**
 * `raft start --min-free-bytes N` with real processes on this runtime: a
 * follower whose disk is "low" (a minimum above the disk's free space)
 * refuses new entries while the other two commit without it, and catches up
 * once restarted with room; a one-member cluster's leader whose disk is low
 * answers 507 (not applied, naming the figures) and the key stays absent. A failing step
 * prints the ports, data directories and the members' stderr tails.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { RUNTIME } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";

/** More free bytes than any test machine's disk has. */
const NO_DISK_HAS = String(2 ** 52);

async function put(base: string, key: string, value: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}/kv/${encodeURIComponent(key)}`, { method: "PUT", body: value, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: await res.text() };
}

async function getStale(base: string, key: string): Promise<string | null> {
  const res = await fetch(`${base}/kv/${encodeURIComponent(key)}?stale`, { signal: AbortSignal.timeout(15_000) });
  const body = await res.text();
  return res.status === 200 ? body : null;
}

describe(`raft start --min-free-bytes on ${RUNTIME}`, () => {
  let c: Cluster;
  let n1: MemberProcess;
  let n2: MemberProcess;
  let n3: MemberProcess;
  let solo: MemberProcess;
  const listen = (m: MemberProcess) => ["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`];
  const step = stepper(() => `--- cluster on ${RUNTIME} ---\n${c.diagnostics()}`);

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3", "solo"], RUNTIME);
    [n1, n2, n3, solo] = c.members as [MemberProcess, MemberProcess, MemberProcess, MemberProcess];
  });
  after(async () => {
    await c.destroy();
  });

  it("a follower below its minimum refuses entries; the others commit; with room again it catches up", step(async () => {
    n1.start([...listen(n1), "--bootstrap"]);
    await n1.ready();
    await c.waitLeader([n1]);
    for (const m of [n2, n3]) {
      m.start([...listen(m), "--join", n1.url]);
      await m.ready();
    }
    const r0 = await put(n1.url, "before", "1");
    assert.equal(r0.status, 200, r0.body);
    await waitFor("n3 to hold the first key", async () => (await getStale(n3.url, "before")) === "1");

    await n3.stop("SIGTERM");
    n3.start([...listen(n3), "--min-free-bytes", NO_DISK_HAS]);
    await n3.ready();
    const heldBefore = ((await n3.status())?.lastIndex as number);
    for (let i = 0; i < 5; i++) {
      const r = await put(n1.url, `low${i}`, `v${i}`);
      assert.equal(r.status, 200, `a write commits on n1 and n2 while n3 refuses entries: ${r.status} ${r.body}`);
    }
    await waitFor("n3 to log why it refuses entries", () => n3.log.some((l) => /below the free-space minimum/.test(l) || /disk space low/.test(l)));
    const s3 = await n3.status();
    assert.equal(s3?.lastIndex, heldBefore, "n3 appended nothing while below its minimum");
    assert.equal(await getStale(n3.url, "low4"), null);
    assert.equal(s3?.role, "follower", "heartbeats keep it a follower");

    await n3.stop("SIGTERM");
    n3.start(listen(n3));
    await n3.ready();
    await waitFor("n3 to catch up once it has room", async () => (await getStale(n3.url, "low4")) === "v4");
  }));

  it("a leader below its minimum answers 507, names the figures, and applies nothing", step(async () => {
    solo.start([...listen(solo), "--bootstrap", "--min-free-bytes", NO_DISK_HAS]);
    await solo.ready();
    await c.waitLeader([solo]);
    const r = await put(solo.url, "refused", "x");
    assert.equal(r.status, 507, `${r.status} ${r.body}`);
    assert.match(r.body, /below the minimum of \d+/);
    assert.match(r.body, /not-applied/);
    assert.equal(await getStale(solo.url, "refused"), null, "the refused key is absent");
    await solo.stop("SIGTERM");
    solo.start(listen(solo));
    await solo.ready();
    await c.waitLeader([solo]);
    assert.equal(await getStale(solo.url, "refused"), null, "and stays absent after a restart");
    const ok = await put(solo.url, "accepted", "y");
    assert.equal(ok.status, 200, `with room again a write commits: ${ok.status} ${ok.body}`);
  }));
});
