/**
 * End to end with real processes on this runtime: bootstrap one member,
 * fill it past a snapshot, join two more (caught up from the snapshot),
 * put through a follower, get, CAS, SIGKILL the leader and watch `raft
 * status` report a new one with every acknowledged write present, restart
 * with `--data` only, remove a member, `leave`, and restart with the first
 * start's command line (`--bootstrap` ignored). Then a static cluster from
 * `raft bootstrap` with a shared secret (peers sign their RPCs, clients need
 * the bearer secret, `status` does not). A failing step prints the ports,
 * data directories and the members' stderr tails.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { heartbeatWithTerm, postMessages } from "../helpers/peer-requests.ts";
import { pool, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";
import { httpGet, httpPut } from "../helpers/kv-http.ts";

const FILL_KEYS = 400;

function cliOk(r: CliRun, code = 0): CliRun {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

describe(`raft cluster end to end on ${RUNTIME}`, () => {
  let c: Cluster;
  let n1: MemberProcess;
  let n2: MemberProcess;
  let n3: MemberProcess;
  let firstStartN1: string[] = [];
  /** Every write the cluster acknowledged: key -> value. */
  const acked = new Map<string, string>();

  /** Runs a step; on failure, appends the cluster's diagnostics, and later steps give up at once. */
  const step = stepper(() => `--- cluster on ${RUNTIME} ---\n${c.diagnostics()}`);

  const voters = async (m: MemberProcess) => {
    const s = await m.status();
    return (s?.members as { id: string; voter: boolean }[] | undefined)?.filter((x) => x.voter).map((x) => x.id).sort() ?? [];
  };

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3"], RUNTIME);
    [n1, n2, n3] = c.members as [MemberProcess, MemberProcess, MemberProcess];
  });

  after(async () => {
    await c.destroy();
  });

  it("bootstraps one member, fills it past a snapshot, and two members join, caught up from it", step(async () => {
    firstStartN1 = ["--id", "n1", "--data", n1.dir, "--listen", `127.0.0.1:${n1.port}`, "--bootstrap", "--snapshot-log-bytes", "16384"];
    n1.start(firstStartN1);
    await n1.ready();
    await c.waitLeader([n1]);
    await pool(32, Array.from({ length: FILL_KEYS }, (_, i) => async () => {
      await httpPut(n1.url, `key${i}`, `value-${i}-${"x".repeat(40)}`);
      acked.set(`key${i}`, `value-${i}-${"x".repeat(40)}`);
    }));
    await waitFor("n1 to compact its log after a snapshot", async () => ((await n1.status())?.firstIndex as number) > 1);
    for (const m of [n2, n3]) m.start(["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--join", n1.url]);
    await Promise.all([n2.ready(), n3.ready()]);
    await waitFor("three voters", async () => (await voters(n1)).join() === "n1,n2,n3", 30_000);
    for (const m of [n2, n3]) {
      await waitFor(`${m.id} to hold the first and last keys`, async () =>
        (await httpGet(m.url, "key0", true)) === acked.get("key0") && (await httpGet(m.url, `key${FILL_KEYS - 1}`, true)) === acked.get(`key${FILL_KEYS - 1}`));
    }
    assert.ok(n1.log.some((l) => /sending snapshot/.test(l)), "the joiners were caught up by a snapshot");
  }));

  it("puts through a follower (the redirect is followed) and gets from another member", step(async () => {
    const leader = await c.waitLeader();
    const [f1, f2] = c.members.filter((m) => m !== leader) as [MemberProcess, MemberProcess];
    const put = cliOk(await runCli(["put", "greeting", "hello", "--cluster", f1.url]));
    assert.match(put.stdout, /^OK \(index \d+\)\n$/);
    acked.set("greeting", "hello");
    const get = cliOk(await runCli(["get", "greeting", "--cluster", f2.url]));
    assert.equal(get.stdout, "hello");
    cliOk(await runCli(["get", "no-such-key", "--cluster", f2.url]), 3);
  }));

  it("without a secret: a stranger's heartbeat at term 2^53 - 1 and its AppendEntries are refused (403), a member's at the term limit too (400); nothing changes", step(async () => {
    const leader = await c.waitLeader();
    const f = c.members.find((m) => m !== leader)!;
    const { clusterId } = (await (await fetch(`${f.url}/raft/v1/info`)).json()) as { clusterId: string };
    const as = (from: string) => ({ clusterId, secret: null, from, to: f.id });
    assert.equal((await postMessages(f.url, as("evil"), heartbeatWithTerm("evil", f.id, Number.MAX_SAFE_INTEGER))).status, 403);
    assert.equal((await postMessages(f.url, as(leader.id), heartbeatWithTerm(leader.id, f.id, Number.MAX_SAFE_INTEGER))).status, 400);
    const term = (await f.status())!.term as number;
    const evil = await postMessages(f.url, as("evil"), [{
      type: "MsgApp", from: "evil", to: f.id, term: term + 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0,
      entries: [{ index: 1, term: term + 1, type: "normal", data: new TextEncoder().encode("evil") }],
    }]);
    assert.equal(evil.status, 403);
    for (const m of c.members) assert.ok(((await m.status())?.term as number) < 1000, `${m.id} kept a small term`);
    // The steps that follow (writes, a failover, restarts) run on this same cluster.
  }));

  it("CAS succeeds on the expected value and reports the current one on a conflict; a retried Idempotency-Key applies once", step(async () => {
    const url = n2.url;
    cliOk(await runCli(["cas", "greeting", "bonjour", "--expect", "hello", "--cluster", url]));
    acked.set("greeting", "bonjour");
    const conflict = cliOk(await runCli(["cas", "greeting", "hola", "--expect", "hello", "--cluster", url]), 3);
    assert.match(conflict.stderr, /current value is "bonjour"/);
    cliOk(await runCli(["cas", "fresh", "new", "--absent", "--cluster", url]));
    acked.set("fresh", "new");
    const leader = await c.waitLeader();
    const first = await httpPut(leader.url, "once", "1", { "idempotency-key": "e2e-once" });
    await httpPut(leader.url, "once", "2");
    const retry = await httpPut(leader.url, "once", "1", { "idempotency-key": "e2e-once" });
    assert.equal(retry, first);
    assert.equal(await httpGet(leader.url, "once"), "2");
    acked.set("once", "2");
  }));

  it("SIGKILL the leader: raft status reports a new leader and every acknowledged write is present", step(async () => {
    const old = await c.waitLeader();
    await old.stop("SIGKILL");
    const survivors = c.members.filter((m) => m !== old);
    const cluster = survivors.map((m) => m.url).join(",");
    const st = await waitFor("raft status to report a new leader", async () => {
      const r = await runCli(["status", "--cluster", cluster]);
      return r.code === 0 ? r : undefined;
    }, 30_000);
    const newLeader = /leader (n\d)/.exec(st.stdout)?.[1];
    assert.ok(newLeader !== undefined && newLeader !== old.id, st.stdout);
    assert.match(st.stdout, new RegExp(`^${old.id} .* no\\b`, "m"), "the killed member shows as unreachable");
    assert.match(st.stdout, new RegExp(`Member ${old.id} .* does not answer`), "and the problem is said in words");
    const leader = c.member(newLeader);
    const missing: string[] = [];
    await pool(16, [...acked].map(([k, v]) => async () => {
      if ((await httpGet(leader.url, k)) !== v) missing.push(k);
    }));
    assert.deepEqual(missing, [], "acknowledged writes lost after the failover");
    const json = JSON.parse(cliOk(await runCli(["status", "--json", "--cluster", cluster])).stdout) as { leader: { id: string }; members: { id: string; reachable: boolean }[] };
    assert.equal(json.leader.id, newLeader);
    assert.equal(json.members.find((m) => m.id === old.id)?.reachable, false);
  }));

  it("restarts the killed member with --data alone; it catches up and takes over leadership on request", step(async () => {
    const down = c.members.find((m) => m.child === null)!;
    down.start(["--data", down.dir]);
    await down.ready();
    const leader = await c.waitLeader();
    const commit = (await leader.status())!.commitIndex as number;
    await waitFor(`${down.id} to apply up to ${commit}`, async () => ((await down.status())?.lastApplied as number) >= commit, 30_000);
    assert.equal(await httpGet(down.url, "greeting", true), "bonjour");
    // The leader marks a member reachable once it hears from it within an election timeout (CheckQuorum's
    // window), so right after the restart `status` may still report it: wait for the report to clear.
    let last = "";
    await waitFor("status to report no problems after the restart", async () => {
      last = cliOk(await runCli(["status", "--cluster", down.url])).stdout;
      return !/problems:/.test(last);
    }, 30_000).catch((err) => assert.fail(`${(err as Error).message}; last status:\n${last}`));
    const t = cliOk(await runCli(["transfer", down.id, "--cluster", down.url]));
    assert.match(t.stdout, new RegExp(`^leader is now ${down.id} `));
    assert.equal((await c.waitLeader()).id, down.id);
  }));

  it("removes a member: it leaves the configuration and its process stops", step(async () => {
    const r = cliOk(await runCli(["members", "remove", "n3", "--cluster", n1.url]));
    assert.doesNotMatch(r.stdout, /^n3 /m);
    assert.equal(await n3.waitExit(), 0, "a removed member exits cleanly");
    await waitFor("n1 to see two voters", async () => (await voters(n1)).join() === "n1,n2");
  }));

  it("leave: a member removes itself cleanly (handing over leadership first if it leads)", step(async () => {
    const r = cliOk(await runCli(["leave", "--cluster", n2.url]));
    assert.match(r.stdout, /n2 left the cluster/);
    assert.equal(await n2.waitExit(), 0);
    await waitFor("n1 alone and leading", async () => (await voters(n1)).join() === "n1" && (await n1.status())?.role === "leader");
    const members = cliOk(await runCli(["members", "--cluster", n1.url]));
    assert.match(members.stdout, /^ID +URL +KIND +LEADER\nn1 +http:\/\/127\.0\.0\.1:\d+ +voter +yes\n$/);
  }));

  it("restarts with the first start's command line (--bootstrap is ignored) and keeps the data", step(async () => {
    await n1.stop("SIGTERM");
    // (A Deno parent reports a child it signalled as killed, exit code null, even when the child exits by itself.)
    assert.ok(n1.exitCode === 0 || n1.exitCode === null, `exit code ${n1.exitCode}`);
    assert.ok(n1.log.some((l) => /SIGTERM: closing/.test(l)), "SIGTERM closes the member cleanly");
    n1.start(firstStartN1);
    await n1.ready();
    await c.waitLeader([n1]);
    for (const k of ["key0", `key${FILL_KEYS - 1}`, "greeting", "fresh", "once"]) assert.equal(await httpGet(n1.url, k), acked.get(k), k);
  }));
});

describe(`raft bootstrap (a static cluster) with a shared secret on ${RUNTIME}`, () => {
  let c: Cluster;
  let secretFile = "";

  before(async () => {
    c = await Cluster.create(["s1", "s2"], RUNTIME);
    secretFile = `${c.root}/secret`;
    fs.writeFileSync(secretFile, "0123456789abcdef0123456789abcdef\n", { mode: 0o600 });
  });

  after(async () => {
    await c.destroy();
  });

  it("prepares one directory per member; started with --data alone they elect a leader (peers sign RPCs); clients need the client token, except for status; the secret is no client credential", async () => {
    const [s1, s2] = c.members as [MemberProcess, MemberProcess];
    try {
      const list = c.members.map((m) => `${m.id}=${m.url}`).join(",");
      const prepared = await pool(3, [
        ...c.members.map((m) => () => runCli(["bootstrap", "--data", m.dir, "--id", m.id, "--members", list])),
      ]);
      for (const r of prepared) assert.match(cliOk(r).stdout, /^prepared .* of a 2-member cluster; start it with: raft start --data /);
      assert.match(cliOk(await runCli(["bootstrap", "--data", s1.dir, "--id", "s1", "--members", list]), 1).stderr, /already holds a member/);
      for (const m of c.members) m.start(["--data", m.dir, "--secret-file", secretFile]);
      await Promise.all(c.members.map((m) => m.ready()));
      await c.waitLeader();
      const without = cliOk(await runCli(["put", "k", "v", "--cluster", s2.url]), 1);
      assert.match(without.stderr, /Bearer|secret/i);
      cliOk(await runCli(["put", "k", "v", "--cluster", s2.url, "--secret-file", secretFile]));
      const got = cliOk(await runCli(["get", "k", "--cluster", s1.url, "--secret-file", secretFile]));
      assert.equal(got.stdout, "v");
      const st = cliOk(await runCli(["status", "--cluster", s1.url]));
      assert.match(st.stdout, /^s\d .* follower /m);
      const wrong = await fetch(`${s1.url}/kv/k`, { headers: { authorization: "Bearer not-the-secret" } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      // The peer key itself is refused as a bearer token: clients hold only the token derived from it.
      const rawSecret = await fetch(`${s1.url}/kv/k`, { headers: { authorization: "Bearer 0123456789abcdef0123456789abcdef" } });
      assert.equal(rawSecret.status, 401);
      await rawSecret.body?.cancel();
      const token = cliOk(await runCli(["token", "--secret-file", secretFile])).stdout.trim();
      assert.match(token, /^[0-9a-f]{64}$/);
      const tokenFile = `${c.root}/token`;
      fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      assert.equal(cliOk(await runCli(["get", "k", "--cluster", s2.url, "--token-file", tokenFile])).stdout, "v");
      // A credential file other users can read is refused.
      const loose = `${c.root}/loose`;
      fs.writeFileSync(loose, "0123456789abcdef0123456789abcdef\n", { mode: 0o644 });
      fs.chmodSync(loose, 0o644);
      assert.match(cliOk(await runCli(["get", "k", "--cluster", s2.url, "--secret-file", loose]), 2).stderr, /chmod 600/);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message = `${e.message}\n--- cluster on ${RUNTIME} ---\n${c.diagnostics()}`;
      throw e;
    }
  });
});
