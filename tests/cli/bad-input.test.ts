/**
 * The CLI as a real process on this runtime: every kind of bad input gets
 * exit code 2 and a one-line `raft: ...` message followed by the usage;
 * `--help` works on every command; a cluster that cannot be reached gives
 * exit code 1 and says so.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePorts } from "../helpers/ports.ts";
import { pool, runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "raft-cli-bad-"));
const D = path.join(tmp, "data");
const LISTEN = ["--id", "n1", "--data", D, "--listen", "127.0.0.1:7999"];

/** [what, argv, a fragment the message must contain] */
const BAD: readonly [string, readonly string[], RegExp][] = [
  ["no command", [], /missing command/i],
  ["an unknown command", ["frobnicate"], /unknown command "frobnicate"/i],
  ["an unknown flag", ["put", "k", "v", "--bogus"], /bogus/],
  ["a missing argument", ["put", "k"], /missing argument/i],
  ["an extra argument", ["del", "k", "extra"], /unexpected argument "extra"/i],
  ["a missing flag value", ["get", "k", "--cluster"], /cluster/],
  ["a malformed --cluster URL", ["get", "k", "--cluster", "not a url"], /malformed --cluster URL/i],
  ["a malformed --timeout", ["status", "--timeout", "soon"], /--timeout/],
  ["an unreadable --secret-file", ["put", "k", "v", "--secret-file", path.join(tmp, "nope")], /secret file/i],
  ["cas without --expect or --absent", ["cas", "k", "v"], /--expect/],
  ["members with an unknown subcommand", ["members", "frob"], /unknown subcommand/i],
  ["members add without a URL", ["members", "add", "n4"], /needs ID and URL/],
  ["members add with a malformed URL", ["members", "add", "n4", "127.0.0.1:7004"], /malformed member URL/i],
  ["transfer to a malformed id", ["transfer", "n/1"], /invalid member id/i],
  ["start without --data", ["start", "--id", "n1"], /--data/],
  ["start with an address without a port", ["start", "--id", "n1", "--data", D, "--listen", "127.0.0.1", "--bootstrap"], /malformed address/i],
  ["start with a malformed --join URL", ["start", ...LISTEN, "--join", "http://"], /join/],
  ["start with both --bootstrap and --join", ["start", ...LISTEN, "--bootstrap", "--join", "http://127.0.0.1:7000"], /not both/],
  ["a first start without --bootstrap or --join", ["start", ...LISTEN], /--bootstrap/],
  ["a first start with --data only", ["start", "--data", D], /holds no member/],
  ["start with an unknown --log-format", ["start", ...LISTEN, "--bootstrap", "--log-format", "xml"], /log-format/],
  ["start on a non-loopback address without a secret", ["start", "--id", "n1", "--data", D, "--listen", "0.0.0.0:7999", "--bootstrap"], /--insecure/],
  ["start with a non-loopback client listener without a secret", ["start", ...LISTEN, "--bootstrap", "--listen-client", "0.0.0.0:7998"], /--insecure/],
  ["start with a malformed --listen-client", ["start", ...LISTEN, "--bootstrap", "--listen-client", "nope"], /malformed address/i],
  ["a client command with both --token-file and --secret-file", ["get", "k", "--token-file", path.join(tmp, "t"), "--secret-file", path.join(tmp, "s")], /not both/],
  ["token without --secret-file", ["token"], /--secret-file/],
  ["bootstrap with a malformed member URL", ["bootstrap", "--data", D, "--id", "n1", "--members", "n1=127.0.0.1:7001"], /malformed URL of n1/i],
  ["bootstrap of a member not in the list", ["bootstrap", "--data", D, "--id", "n9", "--members", "n1=http://127.0.0.1:7001"], /does not list/],
];

const HELP = ["start", "bootstrap", "status", "health", "members", "transfer", "leave", "put", "get", "del", "cas", "token"];

describe(`raft CLI on ${RUNTIME}: bad input`, () => {
  let bad: CliRun[] = [];
  let help: CliRun[] = [];
  let unreachable: CliRun[] = [];
  let dead = "";

  before(async () => {
    const [port] = await freePorts(1);
    dead = `http://127.0.0.1:${port}`;
    const tasks = [
      ...BAD.map(([, args]) => () => runCli(args)),
      ...HELP.map((cmd) => () => runCli([cmd, "--help"])),
      () => runCli(["--help"]),
      () => runCli(["get", "k", "--cluster", dead, "--timeout", "20"]),
      () => runCli(["put", "k", "v", "--cluster", dead, "--timeout", "20"]),
      () => runCli(["status", "--cluster", `${dead},${dead.replace("127.0.0.1", "localhost")}`, "--timeout", "20"]),
    ];
    const runs = await pool(4, tasks);
    bad = runs.slice(0, BAD.length);
    help = runs.slice(BAD.length, BAD.length + HELP.length + 1);
    unreachable = runs.slice(BAD.length + HELP.length + 1);
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  BAD.forEach(([what, , message], i) => {
    it(`${what}: exit code 2, a one-line error, then the usage`, () => {
      const r = bad[i]!;
      const why = `${r.cmd}\nexit ${r.code}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`;
      assert.equal(r.code, 2, why);
      const [first, second] = r.stderr.split("\n");
      assert.match(first ?? "", /^raft: \S/, why);
      assert.match(first ?? "", message, why);
      assert.match(second ?? "", /^usage: raft/, why);
      assert.equal(r.stdout, "", why);
    });
  });

  it("--help on every command prints its usage and exits 0", () => {
    for (const r of help) {
      assert.equal(r.code, 0, `${r.cmd}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: raft/, r.cmd);
    }
    HELP.forEach((cmd, i) => assert.match(help[i]!.stdout, new RegExp(`raft ${cmd}`), help[i]!.cmd));
  });

  it("a cluster that cannot be reached: exit code 1 and one line that reads the same on every runtime", () => {
    const local = dead.replace("127.0.0.1", "localhost");
    const expected = [`${dead}: connection refused`, `${dead}: connection refused`, `${dead}: connection refused; ${local}: connection refused`];
    unreachable.forEach((r, i) => {
      const why = `${r.cmd}\nexit ${r.code}\nstderr: ${r.stderr}`;
      assert.equal(r.code, 1, why);
      assert.equal(r.stderr, `raft: Cannot reach the cluster (${expected[i]})\n`, why);
    });
  });
});
