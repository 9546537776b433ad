/**
 * A TLS cluster end to end, with real processes on this runtime: members
 * serve HTTPS and verify each other's certificates against one CA (mutual
 * TLS between members, `--trusted-ca-file`); one bootstraps, two join over
 * https; `raft status`, `put` and `get` work with `--cacert`; plain HTTP to a
 * member fails with a message saying to use https; SIGKILL of the leader
 * elects another; the killed member restarts with `--data` alone and keeps
 * TLS (the file paths are saved with its identity). Once per suite (on the
 * run `ONCE_PER_SUITE` names), the same with one member per runtime (Node,
 * Deno, Bun), bootstrapped statically.
 * Certificates are made once for the file (tests/helpers/certs.ts).
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { runtime } from "../../adapters/mod.ts";
import { makeTestCerts, type TestCerts } from "../helpers/certs.ts";
import { ONCE_PER_SUITE, runCommand, RUNTIMES } from "../helpers/runtimes.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { CLI, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";

let certs: TestCerts;
before(() => {
  certs = makeTestCerts();
});
after(() => certs.remove());

/** The flags of a member with mutual TLS between members. */
const memberTls = () => ["--cert-file", certs.member.certFile, "--key-file", certs.member.keyFile, "--trusted-ca-file", certs.ca.certFile];

/** One KV request over TLS from this process (the CLI is exercised where it matters; bulk traffic goes this way to keep the suite fast). */
async function kv(m: MemberProcess, method: "GET" | "PUT", key: string, value?: string, query = ""): Promise<{ status: number; text: string }> {
  const client = runtime.httpClient({ ca: certs.ca.cert });
  try {
    const req = { method, url: `${m.url}/kv/${encodeURIComponent(key)}${query}`, timeoutMs: 15_000 };
    const res = await client.request(value === undefined ? req : { ...req, body: new TextEncoder().encode(value) });
    return { status: res.status, text: new TextDecoder().decode(res.body) };
  } finally {
    client.close();
  }
}

function cliOk(r: CliRun, code = 0): CliRun {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

describe(`raft over TLS on ${RUNTIME}: three members with mutual TLS`, () => {
  let c: Cluster;
  let n1: MemberProcess;
  let n2: MemberProcess;
  let n3: MemberProcess;
  const acked = new Map<string, string>();
  /** The log index of the last acknowledged write. */
  let lastIndex = 0;
  const step = stepper(() => `--- certificates in ${certs.dir} ---\n${c.diagnostics()}`);
  const client = (m: MemberProcess) => ["--cluster", m.url, "--cacert", certs.ca.certFile];

  before(async () => {
    c = await Cluster.create(["n1", "n2", "n3"], RUNTIME, { ca: certs.ca.cert });
    [n1, n2, n3] = c.members as [MemberProcess, MemberProcess, MemberProcess];
  });
  after(() => c.destroy());

  it("one member bootstraps and two join over https; status, put and get work with --cacert", step(async () => {
    n1.start(["--id", "n1", "--data", n1.dir, "--listen", `127.0.0.1:${n1.port}`, "--bootstrap", ...memberTls()]);
    await n1.ready();
    assert.equal(n1.url, `https://127.0.0.1:${n1.port}`);
    for (const m of [n2, n3]) m.start(["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--join", n1.url, ...memberTls()]);
    await Promise.all([n2.ready(60_000), n3.ready(60_000)]);
    const st = cliOk(await runCli(["status", ...client(n2)]));
    for (const m of [n1, n2, n3]) assert.match(st.stdout, new RegExp(`${m.id}\\s+https://127\\.0\\.0\\.1:${m.port}`), st.stdout);
    assert.match(st.stdout, /leader n1 \(https:/);
    // Through a follower: the 307 to the leader's https URL is followed.
    assert.match(cliOk(await runCli(["put", "k0", "v0", ...client(n3)])).stdout, /^OK \(index \d+\)/);
    acked.set("k0", "v0");
    assert.equal(cliOk(await runCli(["get", "k0", ...client(n2)])).stdout, "v0");
  }));

  it("plain HTTP to a TLS member fails with one line saying it speaks HTTPS", step(async () => {
    const r = cliOk(await runCli(["get", "k0", "--cluster", `http://127.0.0.1:${n2.port}`]), 1);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`http://127\\.0\\.0\\.1:${n2.port}: TLS: it speaks HTTPS \\(TLS\\), not plain HTTP: use https://127\\.0\\.0\\.1:${n2.port}`));
    // Bun's node:tls reports no failed handshakes (see adapters/bun/mod.ts); Node and Deno members log it.
    if (RUNTIME !== "bun") await waitFor("n2 to log the plain-HTTP request", () => n2.log.some((l) => /TLS handshake with .*plain HTTP to this HTTPS port/.test(l)), 10_000);
  }));

  it("SIGKILL of the leader: a new leader is elected over TLS and every acknowledged write is there", step(async () => {
    const leader = await c.waitLeader();
    for (let i = 1; i <= 10; i++) {
      const r = await kv(leader, "PUT", `k${i}`, `v${i}`);
      assert.equal(r.status, 200, r.text);
      acked.set(`k${i}`, `v${i}`);
      lastIndex = (JSON.parse(r.text) as { index: number }).index;
    }
    await leader.stop("SIGKILL");
    const rest = c.members.filter((m) => m !== leader);
    const next = await c.waitLeader(rest, 30_000);
    assert.notEqual(next, leader);
    const st = await runCli(["status", ...client(next)]);
    assert.match(st.stdout, new RegExp(`leader ${next.id} \\(https://`), st.stdout);
    assert.equal(cliOk(await runCli(["get", "k10", ...client(rest.find((m) => m !== next)!)])).stdout, "v10");
    for (const [k, v] of acked) assert.deepEqual(await kv(next, "GET", k), { status: 200, text: v }, `lost ${k}`);
    n1 = leader; // the one to restart next
  }));

  it("the killed member restarts with --data alone, TLS on (its file paths were saved), and catches up", step(async () => {
    n1.start(["--data", n1.dir]);
    await n1.ready();
    const caughtUp = await waitFor(`the restarted member to apply index ${lastIndex}`, async () => {
      const s = await n1.status();
      return s !== null && (s.lastApplied as number) >= lastIndex ? s : undefined;
    }, 30_000);
    assert.equal(caughtUp.url, n1.url);
    // Its own copy (?stale): what it caught up on over TLS.
    assert.deepEqual(await kv(n1, "GET", "k10", undefined, "?stale"), { status: 200, text: "v10" });
  }));
});

if (RUNTIME === ONCE_PER_SUITE) {
  describe("raft over TLS: a mixed Node/Deno/Bun cluster", () => {
    let c: Cluster;
    const step = stepper(() => `--- certificates in ${certs.dir} ---\n${c.diagnostics()}`);

    before(async () => {
      c = await Cluster.create(["node", "deno", "bun"], RUNTIMES, { ca: certs.ca.cert });
    });
    after(() => c.destroy());

    it("bootstrapped statically with https URLs, it elects a leader, replicates, and fails over after SIGKILL", step(async () => {
      const members = c.members.map((m) => `${m.id}=${m.url}`).join(",");
      for (const m of c.members) {
        const [cmd, args] = runCommand(m.rt, CLI, ["bootstrap", "--data", m.dir, "--id", m.id, "--members", members]);
        const r = spawnSync(cmd, args, { encoding: "utf8" });
        assert.equal(r.status, 0, `${m.rt}: raft bootstrap: ${r.stderr}`);
      }
      for (const m of c.members) m.start(["--data", m.dir, ...memberTls()]);
      await Promise.all(c.members.map((m) => m.ready(60_000)));
      const leader = await c.waitLeader(c.members, 30_000);
      // Each runtime's CLI writes through a member of another runtime.
      for (let i = 0; i < 3; i++) {
        const m = c.members[(i + 1) % 3]!;
        cliOk(await runCli(["put", `mixed${i}`, `v${i}`, "--cluster", m.url, "--cacert", certs.ca.certFile], { rt: c.members[i]!.rt }));
      }
      await leader.stop("SIGKILL");
      const rest = c.members.filter((m) => m !== leader);
      const next = await c.waitLeader(rest, 30_000);
      cliOk(await runCli(["put", "after", "failover", "--cluster", next.url, "--cacert", certs.ca.certFile]));
      for (let i = 0; i < 3; i++) assert.deepEqual(await kv(next, "GET", `mixed${i}`), { status: 200, text: `v${i}` });
    }));
  });
}
