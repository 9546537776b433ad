/**
 * Tests of `http1Client` (adapters/shared/http1-client.ts), the peer-RPC
 * client every runtime uses for plain `http:`: against real servers on
 * loopback (`node:http`, the runtime's own `serve`, and raw `node:net`
 * servers that answer what a broken or hostile peer might), its connections,
 * its parser's limits, its timeouts and its errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import { after, describe, it } from "node:test";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import { http1Client } from "../../adapters/shared/http1-client.ts";
import { closeNodeServer } from "../../adapters/shared/serve-limits.ts";
import type { HttpClient, HttpRequest, HttpResponse } from "../../adapters/types.ts";
import { TimeoutError } from "../../src/errors.ts";
import { describeNetworkError } from "../../src/transport/network-error.ts";
import { waitFor } from "../helpers/wait.ts";

const text = (r: HttpResponse) => new TextDecoder().decode(r.body);

/** A `node:http` server counting its connections. */
async function httpServer(handler: http.RequestListener): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = http.createServer(handler);
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => closeNodeServer(server),
  };
}

/** A raw TCP server: `onData` gets each connection's first bytes and answers as it likes. */
async function rawServer(onData: (socket: net.Socket, data: Buffer) => void): Promise<{ url: string; closed: () => number; close: () => Promise<void> }> {
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => {
      closed++;
      sockets.delete(s);
    });
    s.on("error", () => {});
    s.on("data", (d) => onData(s, d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    closed: () => closed,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}


describe("http1Client()", () => {
  const clients: HttpClient[] = [];
  const client = (fallback: HttpClient | null = null, opts = {}) => {
    const c = http1Client(fallback, opts);
    clients.push(c);
    return c;
  };
  after(() => {
    for (const c of clients) c.close();
  });

  it("keeps one connection alive for sequential requests, with bodies and headers both ways", async () => {
    const s = await httpServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (d: Buffer) => parts.push(d));
      req.on("end", () => {
        if (req.url === "/empty") {
          res.writeHead(204).end();
          return;
        }
        res.writeHead(200, { "X-Echo-Header": String(req.headers["x-raft-from"]), "Set-Cookie": ["a=1", "b=2"], "content-type": "application/octet-stream" });
        res.end(Buffer.concat(parts));
      });
    });
    try {
      const c = client();
      for (let i = 0; i < 20; i++) {
        const body = new TextEncoder().encode(`request ${i}`);
        const r = await c.request({ method: "POST", url: `${s.url}/echo?i=${i}`, headers: { "x-raft-from": `n${i}` }, body, timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.equal(text(r), `request ${i}`);
        assert.equal(r.headers["x-echo-header"], `n${i}`, "header names come lower-case");
        assert.equal(r.headers["set-cookie"], "a=1, b=2", "repeated headers are joined");
        const e = await c.request({ method: "GET", url: `${s.url}/empty`, timeoutMs: 5000 });
        assert.equal(e.status, 204);
        assert.equal(e.body.length, 0);
      }
      assert.equal(s.connections(), 1, "40 sequential requests on one kept-alive connection");
    } finally {
      await s.close();
    }
  });

  it("runs concurrent requests on connections of their own and answers each with its own body", async () => {
    const s = await httpServer((req, res) => {
      // Answer in reverse order of arrival, a little later, so answers cannot be matched by order.
      const n = Number(new URL(req.url!, "http://x").searchParams.get("n"));
      setTimeout(() => res.end(`answer ${n}`), (20 - n) * 2);
    });
    try {
      const c = client();
      const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => c.request({ method: "GET", url: `${s.url}/?n=${n}`, timeoutMs: 5000 })));
      assert.deepEqual(answers.map(text), Array.from({ length: 20 }, (_, n) => `answer ${n}`));
      assert.ok(s.connections() <= 20, `${s.connections()} connections`);
      // Connections 2 at most now: the pool reuses what is free.
      c.close();
      const c2 = client(null, { connectionsPerOrigin: 2 });
      const before = s.connections();
      const more = await Promise.all(Array.from({ length: 10 }, (_, n) => c2.request({ method: "GET", url: `${s.url}/?n=${n}`, timeoutMs: 5000 })));
      assert.deepEqual(more.map(text), Array.from({ length: 10 }, (_, n) => `answer ${n}`));
      assert.ok(s.connections() - before <= 2, `${s.connections() - before} connections with a cap of 2`);
    } finally {
      await s.close();
    }
  });

  it("carries 8 MiB bodies both ways, and reads chunked responses with trailers", async () => {
    const s = await httpServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (d: Buffer) => parts.push(d));
      req.on("end", () => {
        const all = Buffer.concat(parts);
        if (req.url === "/chunked") {
          res.writeHead(200, { Trailer: "x-sum" });
          res.write(all.subarray(0, 1000));
          res.write(all.subarray(1000, 1001));
          res.write(all.subarray(1001));
          res.addTrailers({ "x-sum": String(all.length) });
          res.end();
          return;
        }
        res.end(all);
      });
    });
    try {
      const c = client();
      const big = new Uint8Array(8 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
      for (const path of ["/length", "/chunked"]) {
        const r = await c.request({ method: "POST", url: `${s.url}${path}`, body: big, timeoutMs: 30_000 });
        assert.equal(r.status, 200);
        assert.equal(r.body.length, big.length, path);
        assert.ok(Buffer.from(r.body).equals(Buffer.from(big)), `${path}: the bytes came back as sent`);
      }
      const small = await c.request({ method: "POST", url: `${s.url}/chunked`, body: new TextEncoder().encode("x".repeat(1500)), timeoutMs: 5000 });
      assert.equal(text(small), "x".repeat(1500));
    } finally {
      await s.close();
    }
  });

  it("reads a body delimited by the end of the connection, and opens a new one after Connection: close", async () => {
    let n = 0;
    const s = await rawServer((sock) => {
      n++;
      if (n === 1) sock.end("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nfirst");
      else sock.end("HTTP/1.0 200 OK\r\n\r\nuntil the end");
    });
    try {
      const c = client();
      assert.equal(text(await c.request({ method: "GET", url: s.url, timeoutMs: 5000 })), "first");
      assert.equal(text(await c.request({ method: "GET", url: s.url, timeoutMs: 5000 })), "until the end");
    } finally {
      await s.close();
    }
  });

  it("refuses malformed, oversized and unasked-for answers, closes their connection, and goes on", async () => {
    const answers: Record<string, string> = {
      "/garbage": "garbage\r\n\r\n",
      "/status": "HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n",
      "/header": "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "/length": "HTTP/1.1 200 OK\r\ncontent-length: 5x\r\n\r\n",
      "/lengths": "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
      "/coding": "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
      "/chunk": "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
      "/head": `HTTP/1.1 200 OK\r\nx-long: ${"a".repeat(70 * 1024)}\r\n\r\n`,
      "/body": "HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n",
      "/extra": "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA",
      "/upgrade": "HTTP/1.1 101 Switching Protocols\r\n\r\n",
      "/ok": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    };
    const s = await rawServer((sock, data) => {
      const path = data.toString("latin1").split(" ")[1]!;
      sock.write(answers[path] ?? "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    });
    try {
      const c = client(null, { maxBodyBytes: 1000 });
      for (const [path, why] of [
        ["/garbage", /status line/],
        ["/status", /status line/],
        ["/header", /header line/],
        ["/length", /Content-Length/],
        ["/lengths", /conflicting Content-Length/],
        ["/coding", /transfer coding/],
        ["/chunk", /chunk size/],
        ["/head", /head longer than/],
        ["/body", /over the limit of 1000/],
        ["/upgrade", /101/],
      ] as const) {
        await assert.rejects(c.request({ method: "GET", url: `${s.url}${path}`, timeoutMs: 5000 }), (e: Error) => /malformed HTTP response/.test(e.message) && why.test(e.message), path);
      }
      // More bytes than declared: the answer stands, the connection does not.
      const closedBefore = s.closed();
      assert.equal(text(await c.request({ method: "GET", url: `${s.url}/extra`, timeoutMs: 5000 })), "ok");
      await waitFor("the connection that sent extra bytes to be closed", () => s.closed() > closedBefore, 5000);
      assert.equal(text(await c.request({ method: "GET", url: `${s.url}/ok`, timeoutMs: 5000 })), "ok", "an interim 100 is skipped");
      await waitFor(() => `every refused answer to close its connection (${s.closed()} closed)`, () => s.closed() >= 11, 5000);
    } finally {
      await s.close();
    }
  });

  it("times out a request with no answer, closing its connection, and fails a refused or dropped one with the usual words", async () => {
    const silent = await rawServer(() => {});
    const dropper = await rawServer((sock) => sock.destroy());
    try {
      const c = client();
      await assert.rejects(c.request({ method: "POST", url: `${silent.url}/x`, body: new Uint8Array(10), timeoutMs: 200 }), (e: Error) => e instanceof TimeoutError && /within 200 ms/.test(e.message));
      await waitFor("the timed-out connection to be closed", () => silent.closed() === 1, 5000);
      // Waiting for a connection counts against the timeout too.
      const one = client(null, { connectionsPerOrigin: 1 });
      const first = one.request({ method: "GET", url: `${silent.url}/a`, timeoutMs: 2000 });
      await assert.rejects(one.request({ method: "GET", url: `${silent.url}/b`, timeoutMs: 100 }), (e: Error) => e instanceof TimeoutError && /within 100 ms/.test(e.message));
      await assert.rejects(first, TimeoutError);
      await assert.rejects(c.request({ method: "GET", url: `${dropper.url}/x`, timeoutMs: 5000 }), (e: Error) => describeNetworkError(e) === "connection closed before an answer");
      const port = Number(new URL(dropper.url).port);
      await dropper.close();
      await assert.rejects(c.request({ method: "GET", url: `http://127.0.0.1:${port}/x`, timeoutMs: 5000 }), (e: Error) => describeNetworkError(e) === "connection refused");
    } finally {
      await silent.close();
      await dropper.close();
    }
  });

  it("notices a kept-alive connection the server closed while idle and opens another", async () => {
    const s = await httpServer((_req, res) => res.end("hi"));
    try {
      const c = client();
      assert.equal(text(await c.request({ method: "GET", url: s.url, timeoutMs: 5000 })), "hi");
      // The server drops every connection (as an idle timeout does).
      await s.close();
      const s2 = await httpServer((_req, res) => res.end("again"));
      try {
        const port = Number(new URL(s2.url).port);
        assert.equal(text(await c.request({ method: "GET", url: `http://127.0.0.1:${port}`, timeoutMs: 5000 })), "again");
      } finally {
        await s2.close();
      }
    } finally {
      await s.close().catch(() => {});
    }
  });

  it("refuses header names and values that would break the request head", async () => {
    const c = client();
    await assert.rejects(c.request({ method: "GET", url: "http://127.0.0.1:9/", headers: { "x-a": "1\r\nx-injected: 2" }, timeoutMs: 1000 }), TypeError);
    await assert.rejects(c.request({ method: "GET", url: "http://127.0.0.1:9/", headers: { "bad name": "1" }, timeoutMs: 1000 }), TypeError);
  });

  it("hands every URL that is not http: to its fallback, and closes it with itself", async () => {
    const seen: string[] = [];
    let closed = false;
    const fallback: HttpClient = {
      request(req: HttpRequest) {
        seen.push(req.url);
        return Promise.resolve({ status: 299, headers: {}, body: new Uint8Array(0) });
      },
      close() {
        closed = true;
      },
    };
    const c = http1Client(fallback);
    assert.equal((await c.request({ method: "GET", url: "https://127.0.0.1:1/x", timeoutMs: 1000 })).status, 299);
    assert.deepEqual(seen, ["https://127.0.0.1:1/x"]);
    c.close();
    assert.ok(closed);
    await assert.rejects(c.request({ method: "GET", url: "http://127.0.0.1:1/x", timeoutMs: 1000 }), /closed/);
    await assert.rejects(http1Client(null).request({ method: "GET", url: "https://127.0.0.1:1/x", timeoutMs: 1000 }), /only http: URLs/);
  });

  it(`speaks to this runtime's own server (${runtime.name}) and to Hono's answers`, async () => {
    const app = new Hono();
    app.post("/m", async (c) => new Response(await c.req.arrayBuffer(), { status: 200, headers: { "x-raft-sig": "abc" } }));
    app.get("/none", () => new Response(null, { status: 204 }));
    app.get("/text", (c) => c.text("refused: because", 403));
    const server = await runtime.serve(app, "127.0.0.1", 0);
    try {
      const c = client();
      const url = `http://127.0.0.1:${server.port}`;
      for (let i = 0; i < 50; i++) {
        const r = await c.request({ method: "POST", url: `${url}/m`, body: new Uint8Array([i, 1, 2]), timeoutMs: 5000 });
        assert.equal(r.status, 200);
        assert.deepEqual([...r.body], [i, 1, 2]);
        assert.equal(r.headers["x-raft-sig"], "abc");
        assert.equal((await c.request({ method: "GET", url: `${url}/none`, timeoutMs: 5000 })).status, 204);
        const t = await c.request({ method: "GET", url: `${url}/text`, timeoutMs: 5000 });
        assert.equal(t.status, 403);
        assert.equal(text(t), "refused: because");
      }
      // An in-flight request when the client closes fails rather than hangs.
      const slow = await rawServer(() => {});
      const pending = c.request({ method: "GET", url: slow.url, timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 50));
      c.close();
      await assert.rejects(pending, /closed/);
      await slow.close();
    } finally {
      await server.close();
    }
  });
});
