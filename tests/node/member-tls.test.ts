/**
 * A member's TLS in one process: option checks that name what is wrong,
 * warnings for expired and misnamed certificates, the TLS file paths kept
 * with the identity, and `RaftNode.start({ tls })`: an https URL, peer
 * routes refused without a certificate from the CA (with the reason), client
 * routes open unless `requireClientCert`, and `reloadTls`.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runtime } from "../../adapters/mod.ts";
import type { TlsClientOptions } from "../../adapters/types.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { readIdentity, saveIdentityTls, writeIdentity } from "../../src/node/identity.ts";
import { tlsMaterial, tlsWarnings } from "../../src/node/member-tls.ts";
import { RaftNode } from "../../src/node/raft-node.ts";
import { readTlsFiles } from "../../src/node/tls-files.ts";
import { makeTestCerts, type TestCerts } from "../helpers/certs.ts";
import { waitFor } from "../helpers/wait.ts";

let certs: TestCerts;
let tmp: string;
before(() => {
  certs = makeTestCerts();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), `raft-member-tls-${runtime.name}-`));
});
after(() => {
  certs.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const invalid = (re: RegExp) => (err: unknown) => err instanceof InvalidArgumentError && re.test(err.message);

async function get(url: string, tls: TlsClientOptions): Promise<{ status: number; text: string }> {
  const client = runtime.httpClient(tls);
  try {
    const res = await client.request({ method: "GET", url, timeoutMs: 10_000 });
    return { status: res.status, text: new TextDecoder().decode(res.body) };
  } finally {
    client.close();
  }
}

describe(`member TLS (${runtime.name})`, () => {
  it("tlsMaterial() names what is wrong: not a certificate, not a key, a key of another certificate, client auth without a CA", () => {
    const { cert, key } = certs.member;
    assert.throws(() => tlsMaterial({ cert: "nonsense", key }), invalid(/^The certificate in tls\.cert is not a PEM certificate/));
    assert.throws(() => tlsMaterial({ cert, key: "nonsense" }), invalid(/^The key in tls\.key is not a PEM private key/));
    assert.throws(() => tlsMaterial({ cert, key: certs.client.key }, { cert: "/c.pem", key: "/k.pem", ca: "/ca.pem" }), invalid(/^The key in \/k\.pem does not belong to the certificate in \/c\.pem/));
    assert.throws(() => tlsMaterial({ cert, key, ca: "nonsense" }), invalid(/^The CA certificate in tls\.ca is not a PEM certificate/));
    assert.throws(() => tlsMaterial({ cert, key, requireClientCert: true }), invalid(/needs a trusted CA/));
    const m = tlsMaterial({ cert: new TextEncoder().encode(cert), key, ca: certs.ca.cert, requireClientCert: true });
    assert.equal(m.cert, cert, "bytes are taken as PEM text");
    assert.equal(m.requireClientCert, true);
  });

  it("tlsWarnings() warns about an expired certificate and one that does not name the host; none for a good one", () => {
    const now = Date.now();
    assert.deepEqual(tlsWarnings(tlsMaterial(certs.member), "127.0.0.1", now), []);
    assert.deepEqual(tlsWarnings(tlsMaterial(certs.member), "localhost", now), []);
    assert.match(tlsWarnings(tlsMaterial(certs.expired), "127.0.0.1", now).join("\n"), /expired on \d{4}-/);
    assert.match(tlsWarnings(tlsMaterial(certs.wrongName), "127.0.0.1", now).join("\n"), /does not name 127\.0\.0\.1 \(its subjectAltName: DNS:elsewhere\.example\)/);
  });

  it("the identity keeps the TLS file paths, and readTlsFiles() names a missing file", async () => {
    const dir = path.join(tmp, "identity");
    fs.mkdirSync(dir);
    await writeIdentity(dir, { id: "n1", url: "https://127.0.0.1:1", host: "127.0.0.1", port: 1, clusterId: "c" });
    const files = { certFile: certs.member.certFile, keyFile: certs.member.keyFile, caFile: certs.ca.certFile, clientCertAuth: true };
    await saveIdentityTls(dir, files);
    assert.deepEqual((await readIdentity(dir))?.tls, files);
    assert.deepEqual(readTlsFiles(files), { cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert, requireClientCert: true });
    const missing = path.join(tmp, "gone.pem");
    assert.throws(() => readTlsFiles({ ...files, keyFile: missing }), invalid(new RegExp(`^Cannot read the TLS key file ${missing}: ENOENT`)));
    await saveIdentityTls(dir, null);
    assert.equal((await readIdentity(dir))?.tls, undefined);
  });

  for (const thread of ["caller", "worker"] as const) {
    it(`RaftNode.start({ tls }) (${thread} thread): an https URL, peer routes need a certificate from the CA, reloadTls takes a new one`, async () => {
      const lines: string[] = [];
      const node = await RaftNode.start({
        dataDir: path.join(tmp, `node-${thread}`),
        id: "n1",
        host: "127.0.0.1",
        port: 0,
        bootstrap: true,
        thread,
        stateMachine: { apply: () => null, lastApplied: () => 0 },
        tls: { cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert },
        logger: (l) => lines.push(l),
      });
      try {
        assert.match(node.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const info = `${node.url}/raft/v1/info`;
        const asPeer = { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key };
        assert.equal((await get(info, asPeer)).status, 200);
        const refused = await get(info, { ca: certs.ca.cert });
        assert.equal(refused.status, 403);
        assert.match(refused.text, /accepts peer requests only with a client certificate signed by its trusted CA.*no client certificate/);
        // In worker mode the line crosses from the worker's thread: it may arrive after the answer.
        await waitFor(`the refusal logged (so far: ${lines.join(" | ")})`, () => lines.some((l) => /^refused GET \/raft\/v1\/info from 127\.0\.0\.1:\d+: no client certificate/.test(l)), 10_000);
        await assert.rejects(node.reloadTls({ cert: certs.member.cert, key: certs.client.key }), invalid(/does not belong to the certificate/));
        await node.reloadTls({ cert: certs.renewed.cert, key: certs.renewed.key, ca: certs.ca.cert });
        assert.equal((await get(info, asPeer)).status, 200, "served with the renewed certificate");
      } finally {
        await node.close();
      }
    });
  }

  it("a member created without TLS refuses to start with it, and one created with TLS refuses to start without", async () => {
    const dir = path.join(tmp, "plain");
    const sm = { apply: () => null, lastApplied: () => 0 };
    const plain = await RaftNode.start({ dataDir: dir, id: "p1", host: "127.0.0.1", port: 0, bootstrap: true, thread: "caller", stateMachine: sm, logger: () => {} });
    await assert.rejects(plain.reloadTls({ cert: certs.member.cert, key: certs.member.key }), invalid(/started without TLS/));
    await plain.close();
    await assert.rejects(
      RaftNode.start({ dataDir: dir, thread: "caller", stateMachine: sm, tls: { cert: certs.member.cert, key: certs.member.key }, logger: () => {} }),
      invalid(/is plain http:\/\/ but TLS is on/),
    );
    const tlsDir = path.join(tmp, "tls");
    const secure = await RaftNode.start({ dataDir: tlsDir, id: "t1", host: "127.0.0.1", port: 0, bootstrap: true, thread: "caller", stateMachine: sm, tls: { cert: certs.member.cert, key: certs.member.key }, logger: () => {} });
    await secure.close();
    await assert.rejects(RaftNode.start({ dataDir: tlsDir, thread: "caller", stateMachine: sm, logger: () => {} }), invalid(/is https:\/\/ but no TLS certificate was given/));
  });
});
