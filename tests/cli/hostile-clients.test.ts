/**
 * Hostile clients against real `raft start` members on this runtime (worker
 * mode, the default): bodies far larger than the limit, declared or chunked,
 * with and without credentials; more requests than the member serves at
 * once; bodies that stop short; raw bytes, HTTP/1.0 without Host, bad
 * escapes, long keys, reused idempotency keys, clients that hang up
 * mid-body; a separate client listener; and, under `ulimit -n 256`, more
 * idle connections than the member has descriptors. Scaled down from the
 * measurements of `npm run bench -- hostile`: each still fails if its
 * mechanism is removed. A failure prints ports, data directory and stderr.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import { clientTokenFor } from "../../src/transport/credentials.ts";
import { freePorts } from "../helpers/ports.ts";
import { postPartial } from "../helpers/peer-requests.ts";
import { IdleConnections, rawRequest, requestThenIdle } from "../helpers/raw-http.ts";
import { waitFor } from "../helpers/wait.ts";
import { Cluster } from "./cluster-harness.ts";
import type { MemberProcess } from "./cluster-harness.ts";
import { RUNTIME } from "./run-cli.ts";
import { stepper } from "../helpers/steps.ts";

const SECRET = "hostile-clients-secret-0123456789";
const TOKEN = clientTokenFor(new TextEncoder().encode(SECRET));
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_CLIENT_REQUESTS = 4;

/** A chunked PUT that keeps sending 64 KiB chunks until the member answers or closes; resolves with the status and the bytes sent. */
function chunkedFlood(url: string, headers: Record<string, string>, capBytes: number): Promise<{ status: number | null; sentBytes: number }> {
  const u = new URL(url);
  return new Promise((resolve) => {
    let sent = 0;
    let settled = false;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "PUT", headers: { ...headers, "transfer-encoding": "chunked" } });
    const done = (status: number | null) => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve({ status, sentBytes: sent });
    };
    req.on("response", (res) => {
      res.resume();
      done(res.statusCode ?? null);
    });
    req.on("error", () => done(null));
    const chunk = new Uint8Array(64 * 1024);
    const pump = () => {
      while (!settled && sent < capBytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (!settled) req.end();
    };
    pump();
  });
}

describe(`hostile clients against a member on ${RUNTIME}`, () => {
  let c: Cluster;
  let m: MemberProcess;
  let clientPort = 0;

  const step = stepper(() => `--- member on ${RUNTIME} ---\n${c.diagnostics()}`);

  before(async () => {
    c = await Cluster.create(["h1", "h2"], RUNTIME);
    m = c.member("h1");
    [clientPort] = await freePorts(1) as [number];
    const secretFile = `${c.root}/secret`;
    fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    m.start(["--id", "h1", "--data", m.dir, "--listen", `127.0.0.1:${m.port}`, "--bootstrap", "--secret-file", secretFile,
      "--listen-client", `127.0.0.1:${clientPort}`, "--request-timeout", "2", "--max-client-requests", String(MAX_CLIENT_REQUESTS)]);
    await m.ready();
    await c.waitLeader([m]);
  });

  after(async () => {
    await c.destroy();
  });

  const put = (port: number, key: string, body: string, headers: Record<string, string> = AUTH) =>
    fetch(`http://127.0.0.1:${port}/kv/${key}`, { method: "PUT", body, headers, signal: AbortSignal.timeout(15_000) });

  it("refuses bodies over the limit before reading them: declared (413), unauthenticated (401), chunked (413 after a few MiB at most)", step(async () => {
    const declared = await postPartial(m.url, "/kv/big", { ...AUTH }, 512 * 1024 * 1024, 64 * 1024, 10_000, "PUT");
    assert.ok(declared.status === 413 || declared.status === null, `declared 512 MiB: ${declared.status}`);
    const anonymous = await postPartial(m.url, "/kv/big", {}, 400 * 1024 * 1024, 64 * 1024, 10_000, "PUT");
    // Bun's server refuses a declared body over 128 MiB itself (413), before any route: refused unread either way.
    assert.ok(anonymous.status === 401 || anonymous.status === 413 || anonymous.status === null, `unauthenticated 400 MiB: ${anonymous.status}`);
    const anonymousSmall = await postPartial(m.url, "/kv/big", {}, 100 * 1024 * 1024, 64 * 1024, 10_000, "PUT");
    assert.ok(anonymousSmall.status === 401 || anonymousSmall.status === null, `unauthenticated 100 MiB: ${anonymousSmall.status}`);
    for (const port of [m.port, clientPort]) {
      const flood = await chunkedFlood(`http://127.0.0.1:${port}/kv/big`, AUTH, 256 * 1024 * 1024);
      assert.ok(flood.status === 413 || flood.status === null, `chunked on port ${port}: ${flood.status}`);
      // The value limit is 1 MiB; socket buffers on both sides hold a few MiB more.
      assert.ok(flood.sentBytes <= 32 * 1024 * 1024, `chunked on port ${port}: ${flood.sentBytes} bytes went out before the answer`);
    }
    assert.equal((await put(m.port, "ok", "still-serving")).status, 200);
  }));

  it(`serves ${MAX_CLIENT_REQUESTS} requests at once and answers the next 503 at once; a body that stops short times out instead of hanging`, step(async () => {
    // Requests that declare 1000 bytes and send 10 hold a slot each until the request timeout (2 s):
    // two more than the member serves at once, so two of them are refused at once, whatever the order.
    const answered: (number | null)[] = [];
    const held = Array.from({ length: MAX_CLIENT_REQUESTS + 2 }, () =>
      postPartial(m.url, "/kv/held", { ...AUTH }, 1000, 10, 15_000, "PUT").then((r) => {
        answered.push(r.status);
        return r;
      }));
    await waitFor("two of them to be refused", () => answered.length >= 2, 10_000);
    assert.deepEqual(answered.slice(0, 2), [503, 503], `the first answers: ${answered}`);
    const shed = await put(m.port, "extra", "x");
    assert.equal(shed.status, 503);
    assert.equal(shed.headers.get("retry-after"), "1");
    const rest = (await Promise.all(held)).filter((r) => r.status !== 503);
    assert.equal(rest.length, MAX_CLIENT_REQUESTS);
    for (const r of rest) assert.ok(r.status === 408 || r.status === null, `a short body: ${r.status} after ${Math.round(r.ms)} ms`);
    await waitFor("slots to free up", async () => (await put(m.port, "extra", "x")).status === 200, 10_000);
  }));

  it("answers bad requests with 4xx, never 500: raw bytes, HTTP/1.0 without Host, bad escapes, long keys, a reused Idempotency-Key", step(async () => {
    const raw = await rawRequest(m.port, Buffer.concat([Buffer.from("GET /kv/"), Buffer.from([0xff, 0xfe]), Buffer.from(` HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)]));
    assert.ok(raw.status === null || (raw.status >= 400 && raw.status < 500), `raw 0xFF: ${raw.status}`);
    const old = await rawRequest(m.port, "GET /status HTTP/1.0\r\n\r\n");
    assert.ok(old.status === null || old.status < 500, `HTTP/1.0 without Host: ${old.status}`);
    assert.equal((await put(m.port, "%FF%FE", "v")).status, 400);
    assert.equal((await put(m.port, "%25FF%25FE", "literal")).status, 200);
    assert.equal((await put(m.port, "k".repeat(1025), "v")).status, 413);
    const idem = { ...AUTH, "idempotency-key": "hostile-once" };
    assert.equal((await put(m.port, "idem", "first", idem)).status, 200);
    assert.equal((await put(m.port, "idem", "second", idem)).status, 422);
    const got = await fetch(`${m.url}/kv/idem`, { headers: AUTH });
    assert.equal(await got.text(), "first");
  }));

  it("a client that hangs up mid-body leaves no stack trace and the member serving", step(async () => {
    const before = m.log.length;
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: "127.0.0.1", port: m.port, path: "/kv/gone", method: "PUT", headers: { ...AUTH, "content-length": "100000" } });
        req.on("error", () => resolve());
        req.write(new Uint8Array(70_000), () => {
          req.destroy();
          resolve();
        });
      });
    }
    assert.equal((await put(m.port, "after-hangups", "v")).status, 200);
    const since = m.log.slice(before).join("\n");
    assert.doesNotMatch(since, /Error: aborted|^\s+at /m, since);
  }));

  it("serves the same store on the client listener, with the same credentials", step(async () => {
    assert.equal((await put(clientPort, "via-client-port", "v", {})).status, 401);
    assert.equal((await put(clientPort, "via-client-port", "v")).status, 200);
    const got = await fetch(`${m.url}/kv/via-client-port`, { headers: AUTH });
    assert.equal(await got.text(), "v");
  }));

  // Deno.serve has no idle timeout (Deno 2.9): its quiet connections go only when descriptors run short (the next test).
  const noIdleTimeout = RUNTIME === "deno" ? "Deno.serve has no idle timeout; the member recycles its server when descriptors run short instead" : false;
  it("closes a kept-alive connection that goes quiet after a request, on both listeners", { skip: noIdleTimeout }, step(async () => {
    // The idle timeout is 2 s here (--request-timeout 2); a connection still open after 20 s holds its descriptor for good.
    for (const port of [m.port, clientPort]) {
      const r = await requestThenIdle(port, `PUT /kv/then-idle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1\r\n\r\nv`, 20_000);
      assert.equal(r.status, 200, `port ${port}`);
      assert.ok(r.closedAfterMs !== null, `port ${port}: the connection was still open 20 s after its answer`);
    }
  }));

  it("under ulimit -n 256, 600 idle connections neither stop the member nor keep it from serving", step(async () => {
    const h2 = c.member("h2");
    h2.start(["--id", "h2", "--data", h2.dir, "--listen", `127.0.0.1:${h2.port}`, "--bootstrap", "--request-timeout", "2"], { fileLimit: 256 });
    await h2.ready();
    await c.waitLeader([h2]);
    const idle = await IdleConnections.open(h2.port, 600);
    const partial = await IdleConnections.open(h2.port, 100, true);
    try {
      // Each attempt on a new connection: a pooled one would prove nothing.
      const write = async () => {
        try {
          return (await rawRequest(h2.port, "PUT /kv/under-flood HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv", 2000)).status === 200;
        } catch {
          return false;
        }
      };
      // Node caps connections below the limit and times out idle and header-less ones; on Bun connections
      // that send nothing wait in the kernel (TCP_DEFER_ACCEPT) and Bun times out the rest; Deno, which can
      // do neither, recycles its server when descriptors run short (closing idle ones).
      await waitFor("a write on a new connection while the idle ones are held", write, 30_000);
      assert.ok(h2.child !== null, "the member is running");
    } finally {
      idle.close();
      partial.close();
    }
    await waitFor("a write after the flood", async () => {
      try {
        return (await fetch(`${h2.url}/kv/after-flood`, { method: "PUT", body: "v", signal: AbortSignal.timeout(2000) })).status === 200;
      } catch {
        return false;
      }
    }, 30_000);
    assert.ok(h2.child !== null && !h2.log.some((l) => /FATAL|stopped:/.test(l)), "the member never stopped");
  }));
});
