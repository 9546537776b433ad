/**
 * Recovery after losing quorum, end to end with real processes on this
 * runtime: a 3-member cluster takes writes; two members are SIGKILLed and
 * their data deleted; the survivor (the leader, so every acknowledged write
 * is applied there), stopped, restarts with `--force-new-cluster` as a
 * one-member cluster that serves every acknowledged write, says loudly
 * what it removed, stays a one-member cluster on a plain restart, and takes
 * two fresh members (new ids, empty directories) that catch up. A failing
 * step prints the ports, data directories and the members' stderr tails.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import { pool, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";
import { httpGet, httpPut } from "../helpers/kv-http.ts";

function cliOk(r: CliRun, code = 0): CliRun {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

describe(`raft start --force-new-cluster on ${RUNTIME}`, () => {
  let c: Cluster;
  const acked = new Map<string, string>();
  const step = stepper(() => c.diagnostics());

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3", "n4", "n5"], RUNTIME);
    const first = c.members.slice(0, 3);
    const list = first.map((m) => `${m.id}=${m.url}`).join(",");
    await pool(3, first.map((m) => async () => void cliOk(await runCli(["bootstrap", "--data", m.dir, "--id", m.id, "--members", list]))));
    for (const m of first) m.start(["--data", m.dir]);
    await Promise.all(first.map((m) => m.ready()));
  });

  after(() => c.destroy());

  it("SIGKILL two of three and delete their data; the survivor restarts with --force-new-cluster and serves every acknowledged write", step(async () => {
    const survivor = await c.waitLeader(c.members.slice(0, 3));
    const lost = c.members.slice(0, 3).filter((m) => m !== survivor);
    await pool(4, Array.from({ length: 60 }, (_, i) => async () => {
      await httpPut(survivor.url, `k${i}`, `v${i}`);
      acked.set(`k${i}`, `v${i}`);
    }));
    for (const m of lost) {
      await m.stop("SIGKILL");
      fs.rmSync(m.dir, { recursive: true, force: true });
    }
    // Without a quorum nothing commits: a write now is appended (or refused) but never acknowledged.
    const noQuorum = await fetch(`${survivor.url}/kv/no-quorum`, { method: "PUT", body: "x", signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => "no answer");
    assert.notEqual(noQuorum, 200, "a write without a quorum is not acknowledged");
    await survivor.stop("SIGTERM");
    survivor.start(["--data", survivor.dir, "--force-new-cluster"]);
    await survivor.ready();
    const warning = survivor.log.find((l) => /WARNING --force-new-cluster/.test(l));
    assert.ok(warning !== undefined, "the recovery is logged loudly");
    for (const m of lost) assert.ok(warning.includes(`${m.id} (${m.url})`), `names the removed member ${m.id}: ${warning}`);
    assert.match(warning, /Kept the log through index \d+/);
    const st = await waitFor("the survivor to lead alone", async () => {
      const s = await survivor.status();
      return s?.role === "leader" ? s : undefined;
    });
    assert.deepEqual((st.members as { id: string }[]).map((m) => m.id), [survivor.id]);
    for (const [k, v] of acked) assert.equal(await httpGet(survivor.url, k), v, `acknowledged write ${k}`);
    // The write made without a quorum was never committed: it is dropped, not revived.
    assert.equal(await httpGet(survivor.url, "no-quorum"), null);
    await httpPut(survivor.url, "after-recovery", "yes");
    acked.set("after-recovery", "yes");
  }));

  it("a plain restart stays a one-member cluster", step(async () => {
    const survivor = (await c.leader(c.members.slice(0, 3)))!;
    await survivor.stop("SIGTERM");
    survivor.start(["--data", survivor.dir]);
    await survivor.ready();
    const st = await waitFor("the survivor to lead alone again", async () => {
      const s = await survivor.status();
      return s?.role === "leader" ? s : undefined;
    });
    assert.deepEqual((st.members as { id: string }[]).map((m) => m.id), [survivor.id]);
    assert.ok(!survivor.log.slice(survivor.log.findLastIndex((l) => l.startsWith("--- "))).some((l) => /force-new-cluster/.test(l)));
  }));

  it("two fresh members join it and catch up", step(async () => {
    const survivor = (await c.leader(c.members.slice(0, 3)))!;
    for (const id of ["n4", "n5"]) {
      const m = c.member(id);
      m.start(["--id", id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--join", survivor.url]);
      await m.ready(60_000);
    }
    const st = (await survivor.status())!;
    assert.deepEqual((st.members as { id: string; voter: boolean }[]).map((m) => `${m.id}:${m.voter}`).sort(), [`${survivor.id}:true`, "n4:true", "n5:true"]);
    for (const id of ["n4", "n5"]) {
      const m = c.member(id);
      for (const [k, v] of acked) {
        const got = await waitFor(`${id} to hold ${k}`, async () => (await httpGet(m.url, k, true)) ?? undefined);
        assert.equal(got, v, `${id} holds ${k}`);
      }
    }
  }));
});
