/**
 * What an operator meets first, with real processes on this runtime: one
 * member started through the `raft` launcher (bin/raft), which must be the
 * member process itself (exec, no wrapper left behind), and a plain web
 * server that is not a raft member. Checks `raft --version`, `RAFT_CLUSTER`,
 * `--cluster HOST:PORT` without a scheme, `raft members` (header row,
 * `--json`), and clear "... is not a raft member" errors for client commands
 * and for `--join`.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { freePorts } from "../helpers/ports.ts";
import { REPO_ROOT } from "../helpers/runtimes.ts";
import { exited, trackExit, waitFor } from "../helpers/wait.ts";
import { pool, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "raft-cli-operator-"));
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

const ok = (r: CliRun, code = 0) => {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
};

describe(`raft CLI on ${RUNTIME}: what operators meet first`, () => {
  let port = 0;
  let foreignPort = 0;
  let joinPort = 0;
  let member: ChildProcess;
  let stderr = "";
  /** From the exit event (Deno's child_process leaves exitCode null after a kill()). */
  let exit: { code: number | null; signal: string | null } | null = null;
  let foreign: http.Server;
  const dataDir = path.join(tmp, "m1");
  const url = () => `http://127.0.0.1:${port}`;
  const foreignUrl = () => `http://127.0.0.1:${foreignPort}`;
  const diag = () => `member ${url()} (pid ${member.pid}, data ${dataDir}) stderr:\n${stderr.slice(-3000)}`;

  before(async () => {
    [port, foreignPort, joinPort] = (await freePorts(3)) as [number, number, number];
    // Any other web server: answers every request with an HTML 404.
    foreign = http.createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
      res.end("<!doctype html><html><body><h1>404 Not Found</h1><p>nothing here</p></body></html>\n");
    });
    await new Promise<void>((r) => foreign.listen(foreignPort, "127.0.0.1", () => r()));
    // Through the launcher, as a user runs it (on Bun it picks Bun: its parent, this runner, is bun).
    member = trackExit(spawn(path.join(REPO_ROOT, "bin", "raft"), ["start", "--id", "m1", "--data", dataDir, "--listen", `127.0.0.1:${port}`, "--bootstrap"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    }));
    member.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    member.once("exit", (code, signal) => (exit = { code, signal }));
    await waitFor("the member to serve", () => {
      if (exit !== null) throw new Error(`the member exited (${JSON.stringify(exit)})\n${diag()}`);
      return / serving the KV store at /.test(stderr);
    }, 60_000);
  });

  after(async () => {
    if (exit === null) {
      member.kill("SIGKILL");
      await exited(member);
    }
    await new Promise<void>((r) => foreign.close(() => r()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("raft start through the launcher is the member process itself: the pid it was started as holds the data directory's lock", () => {
    const holder = Number(fs.readFileSync(path.join(dataDir, "LOCK"), "utf8").trim());
    assert.equal(holder, member.pid, `the lock is held by pid ${holder}, the launcher was started as pid ${member.pid}\n${diag()}`);
    const comm = fs.readFileSync(`/proc/${member.pid}/comm`, "utf8").trim();
    assert.match(comm, /^(node|bun|MainThread)$/, `pid ${member.pid} runs ${comm}, not the runtime`);
  });

  it("raft --version and raft version print the package's version", async () => {
    const [a, b] = await pool(2, [() => runCli(["--version"]), () => runCli(["version"])]);
    for (const r of [a!, b!]) assert.equal(ok(r).stdout, `raft ${VERSION}\n`, r.cmd);
  });

  it("RAFT_CLUSTER stands in for --cluster, and --cluster wins over it", async () => {
    const env = { RAFT_CLUSTER: url() };
    ok(await runCli(["put", "greeting", "hello"], { env }));
    const [dead] = await freePorts(1);
    const deadEnv = { RAFT_CLUSTER: `http://127.0.0.1:${dead}` };
    const [got, flagWins, wrong] = (await pool(3, [
      () => runCli(["get", "greeting"], { env }),
      () => runCli(["get", "greeting", "--cluster", url()], { env: deadEnv }),
      () => runCli(["get", "greeting", "--timeout", "2"], { env: deadEnv }),
    ])) as [CliRun, CliRun, CliRun];
    assert.equal(ok(got).stdout, "hello");
    assert.equal(ok(flagWins).stdout, "hello");
    assert.equal(ok(wrong, 1).stderr, `raft: Cannot reach the cluster (http://127.0.0.1:${dead}: connection refused)\n`, wrong.cmd);
  });

  it("--cluster HOST:PORT without a scheme means http://HOST:PORT", async () => {
    const [put, get] = (await pool(2, [
      () => runCli(["put", "bare", "yes", "--cluster", `127.0.0.1:${port}`]),
      () => runCli(["get", "greeting", "--cluster", `localhost:${port}`]),
    ])) as [CliRun, CliRun];
    assert.match(ok(put).stdout, /^OK \(index \d+\)\n$/);
    assert.equal(ok(get).stdout, "hello");
  });

  it("raft members prints a header row; raft members --json prints the leader and the members", async () => {
    const [table, json] = await pool(2, [() => runCli(["members", "--cluster", url()]), () => runCli(["members", "--json", "--cluster", url()])]);
    assert.equal(ok(table!).stdout, `ID  URL${" ".repeat(url().length - 1)}KIND   LEADER\nm1  ${url()}  voter  yes\n`);
    assert.deepEqual(JSON.parse(ok(json!).stdout), { leader: { id: "m1", url: url() }, members: [{ id: "m1", url: url(), voter: true }] });
  });

  it("a URL that is not a raft member gets a one-line error naming it, never 'key not found' or the page it served", async () => {
    const runs = await pool(4, [
      () => runCli(["get", "greeting", "--cluster", foreignUrl()]),
      () => runCli(["put", "k", "v", "--cluster", foreignUrl()]),
      () => runCli(["status", "--cluster", foreignUrl()]),
      () => runCli(["members", "--cluster", foreignUrl()]),
    ]);
    const paths = ["GET /kv/greeting", "PUT /kv/k", "GET /status", "GET /cluster/members"];
    runs.forEach((r, i) => {
      ok(r, 1);
      assert.equal(r.stderr, `raft: ${foreignUrl()} is not a raft member: ${paths[i]} answered HTTP 404 (text/html), without the x-raft-cluster-id header of a member\n`, r.cmd);
      assert.equal(r.stdout, "", r.cmd);
    });
    // Beside a real member, the command goes through the member.
    assert.equal(ok(await runCli(["get", "greeting", "--cluster", `${foreignUrl()},${url()}`])).stdout, "hello");
  });

  it("raft start --join to a server that is not a raft member stops with exit code 1, naming it, instead of retrying", async () => {
    const r = await runCli(["start", "--id", "j1", "--data", path.join(tmp, "j1"), "--listen", `127.0.0.1:${joinPort}`, "--join", `127.0.0.1:${foreignPort}`], { timeoutMs: 60_000 });
    ok(r, 1);
    assert.match(r.stderr, new RegExp(`^raft: Cannot join: ${foreignUrl()} is not a raft member: GET /raft/v1/info answered HTTP 404 \\(text/html\\)$`, "m"), r.cmd);
    assert.doesNotMatch(r.stderr, /<html|<h1/, r.cmd);
  });

  it("SIGTERM to the pid the launcher was started as stops the member, leaving nothing behind", async () => {
    const pid = member.pid!;
    member.kill("SIGTERM");
    await exited(member);
    // The member itself got the signal and closed cleanly (exit code 0; Deno's child_process reports the signal instead).
    assert.match(stderr, / SIGTERM: closing\n/, diag());
    if (RUNTIME !== "deno") assert.deepEqual(exit, { code: 0, signal: null }, diag());
    assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} is still alive`);
    const st = await runCli(["status", "--cluster", url(), "--timeout", "1"]);
    assert.match(ok(st, 1).stderr, /connection refused/, st.cmd);
  });
});
