/**
 * Tests of the CLI's HTTP client (`ApiClient`) against a real local server
 * on this runtime: 307s followed with the same method and body (at most 5),
 * 503 retried, 504 retried until the deadline, the bearer secret sent, an
 * unreachable cluster reported at once rather than after the timeout, and a
 * server that is not a member (no member header) named as such.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import type { HttpServer } from "../../adapters/types.ts";
import { ApiClient, replyMessage } from "../../src/api/client.ts";
import { CLUSTER_ID_HEADER } from "../../src/api/http.ts";
import { freePorts } from "../helpers/ports.ts";

describe("ApiClient", () => {
  let server: HttpServer;
  let other: HttpServer;
  let base = "";
  let otherBase = "";
  let flaky = 0;
  const seen: string[] = [];

  before(async () => {
    const app = new Hono();
    // What apiRoutes does on a member.
    app.use("*", async (c, next) => {
      await next();
      c.header(CLUSTER_ID_HEADER, "c0ffee");
    });
    app.put("/hop/:n", async (c) => {
      const n = Number(c.req.param("n"));
      if (n > 0) return c.body(null, 307, { location: `/hop/${n - 1}` });
      seen.push(`${c.req.method} ${await c.req.text()} ${c.req.header("authorization") ?? "-"}`);
      return c.json({ index: 7 });
    });
    app.get("/abs", (c) => c.body(null, 307, { location: `${base}/hop-get` }));
    app.get("/hop-get", (c) => c.text("there"));
    app.get("/flaky", (c) => (++flaky < 3 ? c.json({ error: "no leader yet" }, 503, { "retry-after": "1" }) : c.text("ok")));
    app.get("/unknown", (c) => c.json({ error: "The write's outcome is unknown" }, 504));
    server = await runtime.serve(app, "127.0.0.1", 0);
    base = `http://127.0.0.1:${server.port}`;
    // Some other web server.
    const web = new Hono();
    web.get("/starting", (c) => c.text("Member is starting; retry shortly\n", 503, { "Retry-After": "1" }));
    web.all("*", (c) => c.html("<html><body>Not here</body></html>", 404));
    other = await runtime.serve(web, "127.0.0.1", 0);
    otherBase = `http://127.0.0.1:${other.port}`;
  });

  after(async () => {
    await server.close();
    await other.close();
  });

  it("follows up to 5 redirects, resending the method, the body and the secret", async () => {
    const client = new ApiClient({ urls: [base], secret: "s3cr3t", timeoutMs: 5000 });
    const r = await client.call("PUT", "/hop/5", { body: "payload" });
    assert.ok(r.ok);
    assert.equal(r.res.status, 200);
    assert.equal(r.res.url, `${base}/hop/0`);
    assert.deepEqual(seen, ["PUT payload Bearer s3cr3t"]);
    const abs = await client.call("GET", "/abs");
    assert.ok(abs.ok);
    assert.equal(new TextDecoder().decode(abs.res.body), "there");
  });

  it("gives up on a sixth redirect with a message saying so", async () => {
    const client = new ApiClient({ urls: [base], secret: null, timeoutMs: 5000 });
    const r = await client.call("PUT", "/hop/6", { body: "x" });
    assert.ok(!r.ok);
    assert.match(r.error, /More than 5 redirects/);
  });

  it("retries a 503 (nothing was applied) until it succeeds", async () => {
    const client = new ApiClient({ urls: [base], secret: null, timeoutMs: 10_000 });
    const r = await client.call("GET", "/flaky");
    assert.ok(r.ok);
    assert.equal(r.res.status, 200);
    assert.equal(flaky, 3);
  });

  it("retries a 504 until the deadline, then returns it with its message", async () => {
    const client = new ApiClient({ urls: [base], secret: null, timeoutMs: 600 });
    const r = await client.call("GET", "/unknown");
    assert.ok(r.ok);
    assert.equal(r.res.status, 504);
    assert.match(replyMessage(r.res), /outcome is unknown/);
  });

  it("tries the next URL when a member is down, and fails at once when none answers", async () => {
    const [dead] = await freePorts(1);
    const deadUrl = `http://127.0.0.1:${dead}`;
    const viaNext = await new ApiClient({ urls: [deadUrl, base], secret: null, timeoutMs: 5000 }).call("GET", "/hop-get");
    assert.ok(viaNext.ok);
    const started = Date.now();
    const none = await new ApiClient({ urls: [deadUrl], secret: null, timeoutMs: 60_000 }).call("GET", "/x");
    assert.ok(!none.ok);
    assert.match(none.error, /^Cannot reach the cluster \(http:\/\/127\.0\.0\.1:\d+: /);
    assert.ok(Date.now() - started < 30_000, "did not wait out the 60 s timeout");
  });

  it("names a URL that answers without the member header as not a raft member, and tries the next URL", async () => {
    const alone = await new ApiClient({ urls: [otherBase], secret: null, timeoutMs: 5000 }).call("GET", "/kv/k");
    assert.ok(!alone.ok);
    assert.equal(alone.notMember, true);
    assert.equal(alone.error, `${otherBase} is not a raft member: GET /kv/k answered HTTP 404 (text/html), without the ${CLUSTER_ID_HEADER} header of a member`);
    const json = await new ApiClient({ urls: [otherBase], secret: null, timeoutMs: 5000 }).getJson(`${otherBase}/status`, 5000);
    assert.deepEqual(json, { ok: false, notMember: true, error: `${otherBase} is not a raft member: GET /status answered HTTP 404 (text/html), without the ${CLUSTER_ID_HEADER} header of a member` });
    const viaNext = await new ApiClient({ urls: [otherBase, base], secret: null, timeoutMs: 5000 }).call("GET", "/hop-get");
    assert.ok(viaNext.ok);
    assert.equal(new TextDecoder().decode(viaNext.res.body), "there");
  });

  it("retries a 503 with Retry-After even without the member header (a member still mounting its routes)", async () => {
    const r = await new ApiClient({ urls: [otherBase], secret: null, timeoutMs: 700 }).call("GET", "/starting");
    assert.ok(r.ok);
    assert.equal(r.res.status, 503);
  });
});
