/**
 * What TLS refuses, and says, with real processes on this runtime:
 * `--client-cert-auth` refuses a client without a certificate (or with one
 * from another CA) and serves one with a valid certificate; a member whose
 * certificate comes from another CA cannot join, and the existing member's
 * log says why (so does the joiner's); an expired certificate and one for
 * another name give one-line messages naming the member and the reason; a
 * renewed certificate is picked up when the files change and on SIGHUP; a
 * missing certificate file stops a restart, naming the file. Single-member
 * clusters, certificates made once for the file.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { makeTestCerts, type TestCerts, type TestPem } from "../helpers/certs.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { runCli, RUNTIME } from "./run-cli.ts";
import type { CliRun } from "./run-cli.ts";

let certs: TestCerts;
let c: Cluster;
before(async () => {
  certs = makeTestCerts();
  c = await Cluster.create(["a1", "r1", "r2", "e1", "w1", "q1"], RUNTIME, null);
});
after(async () => {
  await c.destroy();
  certs.remove();
});

const tlsFlags = (pem: TestPem, ca: TestPem | null) => ["--cert-file", pem.certFile, "--key-file", pem.keyFile, ...(ca === null ? [] : ["--trusted-ca-file", ca.certFile])];
const bootstrap = (m: MemberProcess) => ["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--bootstrap"];
const cacert = () => ["--cacert", certs.ca.certFile];

function expect(r: CliRun, code: number): CliRun {
  assert.equal(r.code, code, `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** The one line a failed command printed. */
function oneLine(r: CliRun): string {
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected from ${r.cmd}:\n${r.stderr}`);
  return lines[0]!;
}

/** Runs a test, printing the members' logs if it fails. */
const withLogs = (fn: () => Promise<void>) => async () => {
  try {
    await fn();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    e.message = `${e.message}\n--- certificates in ${certs.dir} ---\n${c.diagnostics()}`;
    throw e;
  }
};

describe(`raft TLS refusals and reloads on ${RUNTIME}`, () => {
  it("--client-cert-auth: a client without a certificate, or with one from another CA, is refused with a reason; one with a certificate from the CA is served", withLogs(async () => {
    const a1 = c.member("a1");
    a1.tls = { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key };
    a1.start([...bootstrap(a1), ...tlsFlags(certs.member, certs.ca), "--client-cert-auth"]);
    await a1.ready();
    const none = oneLine(expect(await runCli(["put", "k", "v", "--cluster", a1.url, ...cacert()]), 1));
    assert.match(none, /put failed: This member requires a client certificate signed by its trusted CA \(give --cert and --key\): no client certificate \(HTTP 403 from https:/);
    await waitFor("a1 to log the refusal", () => a1.log.some((l) => /refused PUT \/kv\/k from 127\.0\.0\.1:\d+: no client certificate/.test(l)), 10_000);
    const other = oneLine(expect(await runCli(["put", "k", "v", "--cluster", a1.url, ...cacert(), "--cert", certs.otherMember.certFile, "--key", certs.otherMember.keyFile]), 1));
    assert.match(other, /its certificate is not signed by this member's trusted CA/);
    const withCert = ["--cluster", a1.url, ...cacert(), "--cert", certs.client.certFile, "--key", certs.client.keyFile];
    assert.match(expect(await runCli(["put", "k", "v", ...withCert]), 0).stdout, /^OK \(index \d+\)/);
    assert.equal(expect(await runCli(["get", "k", ...withCert]), 0).stdout, "v");
  }));

  it("a member whose certificate is signed by another CA cannot join; the existing member logs why, and so does the joiner", withLogs(async () => {
    const a1 = c.member("a1");
    const r1 = c.member("r1");
    const r2 = c.member("r2");
    const join = (m: MemberProcess) => ["--id", m.id, "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--join", a1.url];
    // r1 trusts a1's CA, but its own certificate is from the other CA: a1 refuses its requests.
    r1.start([...join(r1), ...tlsFlags(certs.otherMember, certs.ca)]);
    // r2 trusts only the other CA: it refuses a1's certificate.
    r2.start([...join(r2), ...tlsFlags(certs.otherMember, certs.otherCa)]);
    await waitFor("a1 to log why it refused r1", () => a1.log.some((l) => /refused GET \/raft\/v1\/info from 127\.0\.0\.1:\d+( \(CN=other-member\))?: its certificate is not signed by this member's trusted CA/.test(l)), 30_000);
    await waitFor("r1 to log why it cannot join", () => r1.log.some((l) => /join: https:\/\/127\.0\.0\.1:\d+ answered 403: This member accepts peer requests only with a client certificate signed by its trusted CA/.test(l)), 30_000);
    await waitFor("r2 to log why it cannot join", () => r2.log.some((l) => new RegExp(`join: cannot talk to ${a1.url}: TLS: its certificate is not signed by a CA this side trusts`).test(l)), 30_000);
    // Bun's node:tls reports no failed handshakes (see adapters/bun/mod.ts); Node and Deno members log them.
    if (RUNTIME !== "bun") await waitFor("a1 to log r2's failed handshake", () => a1.log.some((l) => /TLS handshake with .* failed: the client/.test(l)), 30_000);
    const st = await a1.status();
    assert.deepEqual((st?.members as { id: string }[]).map((m) => m.id), ["a1"]);
    await Promise.all([r1.stop("SIGKILL"), r2.stop("SIGKILL")]);
  }));

  it("an expired certificate, and one for another name: a warning at start, and one-line client errors naming the member and the reason", withLogs(async () => {
    const e1 = c.member("e1");
    const w1 = c.member("w1");
    // No --trusted-ca-file: these serve with the runtime's own TLS server (Deno.serve, Bun.serve, node:https).
    e1.start([...bootstrap(e1), ...tlsFlags(certs.expired, null)]);
    w1.start([...bootstrap(w1), ...tlsFlags(certs.wrongName, null)]);
    await Promise.all([e1.ready(), w1.ready()]);
    assert.ok(e1.log.some((l) => /warning: the certificate expired on \d{4}-/.test(l)), "e1 warns that its certificate expired");
    assert.ok(w1.log.some((l) => /warning: the certificate does not name 127\.0\.0\.1 \(its subjectAltName: DNS:elsewhere\.example\)/.test(l)), "w1 warns about the name");
    const url = (m: MemberProcess) => `https://127.0.0.1:${m.port}`;
    const expired = oneLine(expect(await runCli(["status", "--cluster", url(e1), ...cacert()]), 1));
    assert.match(expired, new RegExp(`${url(e1)}.*TLS: its certificate has expired`));
    const wrong = oneLine(expect(await runCli(["get", "k", "--cluster", url(w1), ...cacert()]), 1));
    assert.match(wrong, new RegExp(`${url(w1)}: TLS: its certificate does not name 127\\.0\\.0\\.1`));
    await Promise.all([e1.stop("SIGTERM"), w1.stop("SIGTERM")]);
  }));

  it("a renewed certificate is taken when the files change and on SIGHUP; a restart whose key file is gone stops, naming it", withLogs(async () => {
    const q1 = c.member("q1");
    q1.tls = { ca: certs.ca.cert };
    const certFile = path.join(c.root, "q1-cert.pem");
    const keyFile = path.join(c.root, "q1-key.pem");
    const install = (pem: TestPem) => {
      fs.writeFileSync(certFile, pem.cert);
      fs.writeFileSync(keyFile, pem.key);
    };
    install(certs.member);
    q1.start([...bootstrap(q1), "--cert-file", certFile, "--key-file", keyFile]);
    await q1.ready();
    expect(await runCli(["status", "--cluster", q1.url, ...cacert()]), 0);
    const reloaded = (re: RegExp) => waitFor(`q1 to log ${re}`, () => q1.log.some((l) => re.test(l)), 20_000);
    install(certs.expired);
    await reloaded(/reloaded the TLS certificate \(.* changed\): CN=expired/);
    assert.match(oneLine(expect(await runCli(["status", "--cluster", q1.url, ...cacert()]), 1)), /its certificate has expired/);
    install(certs.renewed);
    await reloaded(/reloaded the TLS certificate \(.* changed\): CN=renewed/);
    await waitFor("the renewed certificate to be served", async () => (await runCli(["status", "--cluster", q1.url, ...cacert()])).code === 0, 20_000);
    // process.kill, not child.kill: Deno's ChildProcess.kill() ignores every call after the first (Deno 2.9), so the SIGTERM below would never be sent.
    process.kill(q1.child!.pid!, "SIGHUP");
    await reloaded(/reloaded the TLS certificate \(SIGHUP\): CN=renewed/);
    await q1.stop("SIGTERM");
    fs.rmSync(keyFile);
    q1.start(["--data", q1.dir]);
    assert.equal(await q1.waitExit(), 2);
    assert.ok(q1.log.some((l) => l.includes(`Cannot read the TLS key file ${keyFile}: ENOENT`)), "the restart names the missing key file");
  }));
});
