/**
 * The TLS half of the adapter contract, on this runtime: `serveTls` with and
 * without client certificates (each request learns what its client proved),
 * `httpClient(tls)` trusting only the given CA and presenting a client
 * certificate, the one-line `TlsError` reasons (expired, wrong name, unknown
 * CA, plain HTTP to TLS and back), failed handshakes reported by the server,
 * and `setTls` taking a new certificate for new connections.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import type { HttpClient, TlsClientOptions, TlsEnv, TlsHttpServer, TlsServerOptions } from "../../adapters/types.ts";
import { TlsError } from "../../src/errors.ts";
import { makeTestCerts, type TestCerts } from "../helpers/certs.ts";
import { waitFor } from "../helpers/wait.ts";

let certs: TestCerts;
before(() => {
  certs = makeTestCerts();
});
after(() => certs.remove());

/** An app that answers with what the connection proved about its client. */
function peerApp(): Hono<{ Bindings: TlsEnv }> {
  const app = new Hono<{ Bindings: TlsEnv }>();
  app.get("/peer", (c) => c.json(c.env.tlsPeer));
  app.get("/", (c) => c.text("ok"));
  return app;
}

/** One request with a fresh client (so a fresh connection), closed afterwards. */
async function once(url: string, tls?: TlsClientOptions): Promise<{ status: number; text: string }> {
  const client: HttpClient = runtime.httpClient(tls);
  try {
    const res = await client.request({ method: "GET", url, timeoutMs: 10_000 });
    return { status: res.status, text: new TextDecoder().decode(res.body) };
  } finally {
    client.close();
  }
}

/** The TlsError a request fails with (fails the test if it succeeds or fails otherwise). */
async function tlsFailure(url: string, tls?: TlsClientOptions): Promise<TlsError> {
  try {
    const r = await once(url, tls);
    assert.fail(`expected a TLS failure from ${url}, got HTTP ${r.status} ${r.text}`);
  } catch (err) {
    if (!(err instanceof TlsError)) throw new Error(`expected a TlsError from ${url}, got ${String(err)}`, { cause: err });
    assert.doesNotMatch(err.message, /\n/, "one line");
    return err;
  }
}

describe(`adapter TLS (${runtime.name})`, () => {
  const servers: { close(): Promise<void> }[] = [];
  const serve = async (tls: TlsServerOptions): Promise<{ server: TlsHttpServer; url: string }> => {
    const server = await runtime.serveTls(peerApp(), "127.0.0.1", 0, tls);
    servers.push(server);
    return { server, url: `https://127.0.0.1:${server.port}` };
  };
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it("serveTls() without a CA serves HTTPS to a client that trusts the CA; requests carry no client information", async () => {
    const { url } = await serve({ cert: certs.member.cert, key: certs.member.key });
    const r = await once(`${url}/peer`, { ca: certs.ca.cert });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text), null);
  });

  it("with a CA, each request says whether its client presented a certificate from that CA", async () => {
    const { url } = await serve({ cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert });
    const good = JSON.parse((await once(`${url}/peer`, { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).text);
    assert.equal(good.verified, true, JSON.stringify(good));
    assert.equal(good.error, null);
    const none = JSON.parse((await once(`${url}/peer`, { ca: certs.ca.cert })).text);
    assert.equal(none.verified, false);
    assert.equal(none.error, "no client certificate");
    const other = JSON.parse((await once(`${url}/peer`, { ca: certs.ca.cert, cert: certs.otherMember.cert, key: certs.otherMember.key })).text);
    assert.equal(other.verified, false);
    assert.match(other.error, /not signed by this member's trusted CA/);
    const expired = JSON.parse((await once(`${url}/peer`, { ca: certs.ca.cert, cert: certs.expired.cert, key: certs.expired.key })).text);
    assert.equal(expired.verified, false);
    assert.match(expired.error, /expired/);
  });

  it("with a CA, every one of 40 fresh connections is judged on its own certificate (alternating good and another CA's)", async () => {
    // Bun has had intermittent client-certificate verification bugs (oven-sh/bun#27985, #33754): check many connections, not one.
    const { url } = await serve({ cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert });
    const wrong: number[] = [];
    for (let i = 0; i < 40; i++) {
      const good = i % 2 === 0;
      const pem = good ? certs.client : certs.otherMember;
      const peer = JSON.parse((await once(`${url}/peer`, { ca: certs.ca.cert, cert: pem.cert, key: pem.key })).text);
      if (peer.verified !== good) wrong.push(i);
    }
    assert.deepEqual(wrong, [], "connections judged wrongly");
  });

  it("a server certificate from another CA, expired, or for another name fails with a one-line reason", async () => {
    const { url: other } = await serve({ cert: certs.otherMember.cert, key: certs.otherMember.key });
    assert.match((await tlsFailure(other, { ca: certs.ca.cert })).reason, /not signed by a CA this side trusts/);
    const { url: expired } = await serve({ cert: certs.expired.cert, key: certs.expired.key });
    assert.match((await tlsFailure(expired, { ca: certs.ca.cert })).reason, /has expired/);
    const { url: wrong } = await serve({ cert: certs.wrongName.cert, key: certs.wrongName.key });
    assert.match((await tlsFailure(wrong, { ca: certs.ca.cert })).reason, /does not name 127\.0\.0\.1/);
    // insecureSkipVerify (tests only) accepts all of them.
    assert.equal((await once(expired, { insecureSkipVerify: true })).status, 200);
  });

  it("plain HTTP to an HTTPS port, and HTTPS to a plain port, say so", async () => {
    const { server } = await serve({ cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert });
    const toTls = await tlsFailure(`http://127.0.0.1:${server.port}/`);
    assert.match(toTls.reason, new RegExp(`speaks HTTPS \\(TLS\\), not plain HTTP: use https://127\\.0\\.0\\.1:${server.port}`));
    const app = new Hono();
    app.get("/", (c) => c.text("plain"));
    const plain = await runtime.serve(app, "127.0.0.1", 0);
    servers.push(plain);
    const toPlain = await tlsFailure(`https://127.0.0.1:${plain.port}/`, { ca: certs.ca.cert });
    assert.match(toPlain.reason, /does not speak TLS/);
    assert.equal(await runtime.speaksTls("127.0.0.1", server.port, 2000), true);
    assert.equal(await runtime.speaksTls("127.0.0.1", plain.port, 2000), false);
  });

  // Bun's node:tls emits no tlsClientError (Bun 1.4.5): its servers cannot say why a handshake failed.
  if (runtime.name !== "bun") it("with a CA, the server reports failed handshakes: a client that does not trust it, plain HTTP", async () => {
    const seen: string[] = [];
    const { url, server } = await serve({ cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert, onHandshakeError: (remote, reason) => seen.push(`${remote} ${reason}`) });
    await tlsFailure(url, { ca: certs.otherCa.cert });
    await waitFor("a handshake failure to be reported", () => seen.length > 0, 5000);
    assert.match(seen[0]!, /^(127\.0\.0\.1:\d+|a client \(address no longer known\)) the client/);
    await tlsFailure(`http://127.0.0.1:${server.port}/`);
    await waitFor("the plain-HTTP request to be reported", () => seen.some((l) => /plain HTTP to this HTTPS port/.test(l)), 5000);
  });

  for (const withCa of [false, true]) {
    it(`setTls() gives new connections the new certificate (${withCa ? "with" : "without"} client certificates)`, async () => {
      const ca = withCa ? { ca: certs.ca.cert } : {};
      const { server, url } = await serve({ cert: certs.member.cert, key: certs.member.key, ...ca });
      assert.equal((await once(url, { ca: certs.ca.cert })).status, 200);
      await server.setTls({ cert: certs.expired.cert, key: certs.expired.key, ...ca });
      assert.match((await tlsFailure(url, { ca: certs.ca.cert })).reason, /has expired/);
      await server.setTls({ cert: certs.renewed.cert, key: certs.renewed.key, ...ca });
      assert.equal((await once(url, { ca: certs.ca.cert })).status, 200);
      assert.equal(server.port, Number(new URL(url).port));
    });
  }
});
