/**
 * The Bun adapter: libc `flock` through `bun:ffi`, `Bun.serve`, the native
 * `fetch` (pooled keep-alive) and Web Workers.
 *
 * TLS: `Bun.serve` with `tls` when no client certificates are asked for;
 * with a CA to verify clients against, `node:https` instead, because
 * `Bun.serve` tells the handler nothing about a request's client
 * certificate. Peer clients use `fetch` with its `tls` option. Neither
 * `Bun.serve` (`reload` ignores `tls`) nor Bun's node:https
 * (`setSecureContext` is missing) can swap a certificate, so `setTls`
 * re-opens the listener; only node:https reports failed handshakes.
 *
 * @module
 */
import { dlopen, read } from "bun:ffi";
import process from "node:process";
import { deferAccept, LISTEN_BACKLOG, raiseListenBacklog } from "../shared/listen-backlog.ts";
import { acquireDirLock, flockTryLock } from "../shared/lock.ts";
import { fetchHttpClient } from "../shared/fetch-client.ts";
import { http1Client } from "../shared/http1-client.ts";
import { monotonicClock } from "../shared/monotonic.ts";
import { relisten } from "../shared/relisten.ts";
import { type ServeLimits, serveLimits } from "../shared/serve-limits.ts";
import { speaksTls } from "../shared/tls-probe.ts";
import { fetchTurnGate } from "../shared/turn-gate.ts";
import { startWebWorker, webWorkerPort } from "../shared/web-worker.ts";
import type { HttpClient, HttpServer, RuntimeAdapter, TlsApp, TlsClientOptions, TlsEnv, TlsHttpServer, TlsServerOptions } from "../types.ts";

interface BunServer {
  port: number;
  /** Per-request idle timeout in seconds (0: none); Bun 1.1.26+. */
  timeout?(req: Request, seconds: number): void;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
declare const Bun: {
  isMainThread: boolean;
  version: string;
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout?: number;
    tls?: { cert: string; key: string };
    fetch: (req: Request, server: BunServer) => Response | Promise<Response>;
  }): BunServer;
};

const _libc = dlopen("libc.so.6", {
  flock: { args: ["i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "i32"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
});
const _tryLock = flockTryLock(
  (fd, op) => _libc.symbols.flock(fd, op) as number,
  () => read.i32(_libc.symbols.__errno_location() as number, 0),
);

/**
 * Lengthens the accept queue of the `Bun.serve` listening on `port` from
 * Bun's fixed 512 (see listen-backlog.ts: under a flood the connections the
 * queue dropped reached the server only after its idle timeout had closed
 * them, unanswered), and defers accepting a connection until it sends
 * (`deferAccept`: Bun has no connection cap, and took 10-12 s to close
 * connections that never sent); on other systems, or if the socket is not
 * found, says so on stderr and keeps Bun's behaviour.
 */
function _tuneListener(port: number): void {
  if (process.platform !== "linux") return;
  const why = raiseListenBacklog(port, LISTEN_BACKLOG, (fd, n) => _libc.symbols.listen(fd, n) as number);
  if (why !== null) console.error(`raft: port ${port} keeps Bun's accept queue of 512 connections: ${why}`);
  const notDeferred = deferAccept(port, (fd, level, name, value) => _libc.symbols.setsockopt(fd, level, name, new Int32Array([value]), 4) as number);
  if (notDeferred !== null) console.error(`raft: port ${port} accepts connections before their first bytes: ${notDeferred}`);
}

/** Bun's inactivity timeout for `limits`, in seconds (1 to 255). */
function _idleSeconds(limits: ServeLimits): number {
  return Math.min(255, Math.max(1, Math.ceil(Math.max(limits.headersTimeoutMs, limits.idleTimeoutMs) / 1000)));
}

/**
 * The `fetch` of a `Bun.serve` whose `idleTimeout` is `idle` seconds: Bun
 * has that one inactivity timeout and no connection cap. The timeout also runs while a
 * handler works (a write waiting for its commit, a join waiting for
 * catch-up), cutting the connection without an answer, so it is lifted while
 * the handler runs; and it stays lifted for the rest of the connection unless
 * set again (measured, Bun 1.4.5: a kept-alive connection that had made one
 * request was never closed, so clients that went quiet held a descriptor
 * each for good), so it is set back before the answer goes out, except for
 * an event stream.
 */
function _fetch(handler: (req: Request) => Response | Promise<Response>, idle: number): (req: Request, srv: BunServer) => Promise<Response> {
  return async (req, srv) => {
    srv.timeout?.(req, 0);
    let res: Response;
    try {
      res = await handler(req);
    } catch (err) {
      srv.timeout?.(req, idle);
      throw err;
    }
    // An event stream (`GET /events`) stays without one: it may be quiet between its pings.
    if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) srv.timeout?.(req, idle);
    return res;
  };
}

/**
 * Bun hands a request without `Host` (legal in HTTP/1.0) a relative URL,
 * which every URL parser downstream refuses (it was answered 500): such a
 * request is given this server's own address instead.
 */
function _absolute(req: Request, origin: () => string): Request {
  if (req.url.charCodeAt(0) !== 0x2f) return req;
  return new Request(origin() + req.url, req);
}

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number, limits: ServeLimits = serveLimits()): Promise<HttpServer> {
  const origin = () => `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  const gated = fetchTurnGate((req: Request) => app.fetch(req));
  const idleTimeout = _idleSeconds(limits);
  const fetch = _fetch((req) => gated(_absolute(req, origin)), idleTimeout);
  const server: BunServer = Bun.serve({ hostname: host, port, idleTimeout, fetch });
  _tuneListener(server.port);
  return Promise.resolve({
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  });
}

const _NO_PEER: TlsEnv = { tlsPeer: null };

/** `Bun.serve` over TLS (no client certificates), or node:https when `tls.ca` asks for them. */
async function _serveTls(
  app: TlsApp,
  host: string,
  port: number,
  tls: TlsServerOptions,
  limits: ServeLimits = serveLimits(),
): Promise<TlsHttpServer> {
  if (tls.ca !== undefined) {
    const { serveNodeHttps } = await import("../shared/node-https-server.ts");
    return serveNodeHttps(app, host, port, tls, { reload: "relisten", overrideGlobalObjects: false }, limits);
  }
  const origin = () => `https://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  const gated = fetchTurnGate((req: Request) => app.fetch(req, _NO_PEER));
  const idleTimeout = _idleSeconds(limits);
  const fetch = _fetch((req) => gated(_absolute(req, origin)), idleTimeout);
  const open = (t: TlsServerOptions, p: number) =>
    Promise.resolve().then(() =>
      Bun.serve({
        hostname: host,
        port: p,
        idleTimeout,
        tls: { cert: t.cert, key: t.key },
        fetch,
      })
    );
  let server = await open(tls, port);
  const bound = server.port;
  _tuneListener(bound);
  const retired: BunServer[] = [];
  return {
    port: bound,
    async setTls(next) {
      // stop(false) stops accepting at once; requests in flight finish on the old certificate.
      retired.push(server);
      void server.stop(false);
      server = await relisten(() => open(next, bound));
      _tuneListener(bound);
    },
    async close() {
      await Promise.all([server, ...retired].map((s) => s.stop(true)));
    },
  };
}

function _httpClient(tls?: TlsClientOptions): HttpClient {
  // Plain http: on a node:net socket (http1-client.ts: Bun's fetch took 3-5x its CPU per request); https: on fetch.
  if (tls === undefined) return http1Client(fetchHttpClient());
  const t: Record<string, unknown> = { rejectUnauthorized: tls.insecureSkipVerify !== true };
  if (tls.ca !== undefined) t.ca = tls.ca;
  if (tls.cert !== undefined) t.cert = tls.cert;
  if (tls.key !== undefined) t.key = tls.key;
  return fetchHttpClient({ tls: t });
}

/** The Bun implementation of `RuntimeAdapter`. */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",
  version: Bun.version,
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  serveTls: _serveTls,
  httpClient: _httpClient,
  speaksTls,
  startWorker: startWebWorker,
  workerPort: () => webWorkerPort(!Bun.isMainThread),
  monotonicNs: monotonicClock((id, ts) => _libc.symbols.clock_gettime(id, ts) as number),
  // fs.write runs off the JavaScript thread.
  fileWritesBlock: false,
};
