/**
 * The Deno adapter: `FsFile.tryLockSync` (flock underneath), `Deno.serve`,
 * the native `fetch` (pooled keep-alive) and Web Workers.
 *
 * TLS: `Deno.serve` with `cert`/`key` when no client certificates are asked
 * for; with a CA to verify clients against, `node:https` instead, because
 * `Deno.serve` cannot ask for client certificates (denoland/deno#26825).
 * Peer clients use `Deno.createHttpClient` with `caCerts`, `cert` and `key`;
 * note that `caCerts` adds to Deno's default roots rather than replacing
 * them. `Deno.serve` cannot swap its certificate, so `setTls` re-opens the
 * listener; it reports no failed handshakes either.
 *
 * @module
 */
import { LISTEN_BACKLOG, raiseListenBacklog } from "../shared/listen-backlog.ts";
import { acquireDirLock } from "../shared/lock.ts";
import { fetchHttpClient } from "../shared/fetch-client.ts";
import { http1Client } from "../shared/http1-client.ts";
import { nodeHttpClient } from "../shared/node-http-client.ts";
import { monotonicClock } from "../shared/monotonic.ts";
import { relisten } from "../shared/relisten.ts";
import { openFileCount, openFileLimit, RESERVED_FILES, type ServeLimits, serveLimits } from "../shared/serve-limits.ts";
import { speaksTls } from "../shared/tls-probe.ts";
import { answerableOnClose } from "../shared/answer-on-close.ts";
import { fetchTurnGate } from "../shared/turn-gate.ts";
import { startWebWorker, webWorkerPort } from "../shared/web-worker.ts";
import type { HttpClient, HttpServer, RuntimeAdapter, TlsApp, TlsClientOptions, TlsEnv, TlsHttpServer, TlsServerOptions } from "../types.ts";

// The few Deno APIs used here, declared so the repo type-checks without Deno's type library.
interface DenoFsFile {
  tryLockSync(exclusive: boolean): boolean;
  unlockSync(): void;
  close(): void;
}
interface DenoHttpServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoHttpClient {
  close(): void;
}
declare const Deno: {
  version: { deno: string };
  build: { os: string };
  dlopen(path: string, symbols: { listen: { parameters: ["i32", "i32"]; result: "i32" } }): { symbols: { listen(fd: number, backlog: number): number } };
  dlopen(path: string, symbols: { clock_gettime: { parameters: ["i32", "buffer"]; result: "i32" } }): {
    symbols: { clock_gettime(clockId: number, timespec: BigInt64Array): number };
  };
  openSync(path: string, options: { read: boolean; write: boolean; create: boolean }): DenoFsFile;
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): DenoHttpServer;
  createHttpClient(options: { caCerts?: string[]; cert?: string; key?: string }): DenoHttpClient;
};

function _tryLock(lockPath: string): (() => void) | null {
  const file = Deno.openSync(lockPath, { read: true, write: true, create: true });
  if (!file.tryLockSync(true)) {
    file.close();
    return null;
  }
  return () => {
    file.unlockSync();
    file.close();
  };
}

/** libc `listen(2)` through FFI, opened on first use (it needs the FFI permission, which `-A` grants). */
let _libcListen: ((fd: number, backlog: number) => number) | null = null;

/**
 * Lengthens the accept queue of the `Deno.serve` listening on `port` from
 * Deno's fixed 511 (see listen-backlog.ts); on other systems, without the
 * FFI permission, or if the socket is not found, says so on stderr and
 * keeps 511.
 */
function _raiseBacklog(port: number, limits: ServeLimits): void {
  if (Deno.build.os !== "linux") return;
  let why: string | null;
  try {
    _libcListen ??= Deno.dlopen("libc.so.6", { listen: { parameters: ["i32", "i32"], result: "i32" } }).symbols.listen;
    why = raiseListenBacklog(port, Math.min(LISTEN_BACKLOG, limits.maxConnections), _libcListen);
  } catch (err) {
    why = (err as Error).message;
  }
  if (why !== null) console.error(`raft: port ${port} keeps Deno's accept queue of 511 connections: ${why}`);
}

/**
 * `Deno.serve` has neither a connection cap nor idle or header timeouts
 * (Deno 2.9), and its accept loop ends with an uncaught "Too many open
 * files" when descriptors run out, which used to take the whole member
 * down. So the server is kept alive by hand: when the accept loop fails it
 * is started again on the same port, and when the descriptors in use come
 * within half the reserve of the limit (`serve-limits.ts`) the server is
 * recycled: the old one is shut down, which closes its idle connections
 * (the ones a flood of idle sockets holds) while requests in flight finish,
 * and a new one takes the port. Connections in flight are never cut.
 */
function _resilientServe(handler: (req: Request) => Response | Promise<Response>, host: string, port: number, limits: ServeLimits): Promise<{ port: number; close: () => Promise<void> }> {
  const fileLimit = openFileLimit();
  const pressure = fileLimit === null ? null : fileLimit - RESERVED_FILES / 2;
  let current: DenoHttpServer | null = null;
  let boundPort = port;
  let closed = false;
  let restarting = false;
  const old: DenoHttpServer[] = [];
  const listen = (p: number) => new Promise<DenoHttpServer>((resolve, reject) => {
    try {
      // onListen may run inside Deno.serve, before it returns the server: resolve once both happened.
      let s: DenoHttpServer | null = null;
      let listening = false;
      s = Deno.serve({ hostname: host, port: p, onListen: (addr) => {
        boundPort = addr.port;
        listening = true;
        _raiseBacklog(addr.port, limits);
        if (s !== null) resolve(s);
      } }, handler);
      if (listening) resolve(s);
      // An accept that fails (EMFILE) ends the loop: start again rather than die.
      s.finished.catch(() => {
        if (closed) return;
        // Its connections outlive its accept loop: shut it down to close the idle ones (measured: this frees them).
        void s!.shutdown().catch(() => {});
        if (current === s) void restart();
      });
    } catch (err) {
      reject(err);
    }
  });
  const restart = async (): Promise<void> => {
    if (restarting || closed) return;
    restarting = true;
    const prev = current;
    current = null;
    // Either way descriptors ran short: the old server's idle connections go.
    if (prev !== null) {
      old.push(prev);
      // Not awaited: it waits for requests in flight, but closes the listener and idle connections now.
      void prev.shutdown().catch(() => {}).finally(() => old.splice(old.indexOf(prev), 1));
    }
    for (let attempt = 0; !closed; attempt++) {
      try {
        current = await listen(boundPort);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * (attempt + 1))));
      }
    }
    restarting = false;
  };
  const monitor = pressure === null ? null : setInterval(() => {
    const n = openFileCount();
    if (n !== null && n > pressure) void restart();
  }, 500);
  return listen(port).then((s) => {
    current = s;
    return {
      port: boundPort,
      close: async () => {
        closed = true;
        if (monitor !== null) clearInterval(monitor);
        await Promise.all([current, ...old].map((x) => x?.shutdown().catch(() => {})));
      },
    };
  });
}

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number, limits: ServeLimits = serveLimits()): Promise<HttpServer> {
  const { handle, answerPending } = answerableOnClose(fetchTurnGate((req: Request) => app.fetch(req)));
  return _resilientServe(handle, host, port, limits).then((s) => ({
    port: s.port,
    close: async () => {
      answerPending();
      await s.close();
    },
  }));
}

const _NO_PEER: TlsEnv = { tlsPeer: null };

/** `Deno.serve` over TLS (no client certificates), or node:https when `tls.ca` asks for them. */
async function _serveTls(app: TlsApp, host: string, port: number, tls: TlsServerOptions, limits?: ServeLimits): Promise<TlsHttpServer> {
  if (tls.ca !== undefined) {
    const { serveNodeHttps } = await import("../shared/node-https-server.ts");
    return serveNodeHttps(app, host, port, tls, { reload: "in-place", overrideGlobalObjects: false }, limits);
  }
  // As in _serve: on close, handlers still pending are answered 504, each its own, so shutdown() cannot hang on them.
  const { handle, answerPending } = answerableOnClose(fetchTurnGate((req: Request) => app.fetch(req, _NO_PEER)));
  const open = (t: TlsServerOptions, p: number) =>
    new Promise<{ server: DenoHttpServer; port: number }>((resolve, reject) => {
      try {
        const server: DenoHttpServer = Deno.serve({ hostname: host, port: p, cert: t.cert, key: t.key, onListen: (addr) => {
          _raiseBacklog(addr.port, limits ?? serveLimits());
          queueMicrotask(() => resolve({ server, port: addr.port }));
        } }, handle);
      } catch (err) {
        // relisten() retries while the old listener still holds the port.
        if ((err as Error).name === "AddrInUse") (err as { code?: string }).code = "EADDRINUSE";
        reject(err);
      }
    });
  let current = await open(tls, port);
  const bound = current.port;
  const retired: Promise<void>[] = [];
  return {
    port: bound,
    async setTls(next) {
      // shutdown() stops accepting at once and lets requests in flight finish on the old certificate.
      retired.push(current.server.shutdown());
      current = await relisten(() => open(next, bound));
    },
    async close() {
      answerPending();
      await Promise.all([current.server.shutdown(), ...retired]);
    },
  };
}

function _httpClient(tls?: TlsClientOptions): HttpClient {
  // Plain http: on a node:net socket (http1-client.ts: a third of fetch's CPU per request); https: on fetch.
  if (tls === undefined) return http1Client(fetchHttpClient());
  // Deno.createHttpClient has no switch to skip certificate checks (only the --unsafely-ignore-certificate-errors flag).
  if (tls.insecureSkipVerify === true) return nodeHttpClient(tls);
  const options: { caCerts: string[]; cert?: string; key?: string } = { caCerts: tls.ca === undefined ? [] : [tls.ca] };
  if (tls.cert !== undefined && tls.key !== undefined) {
    options.cert = tls.cert;
    options.key = tls.key;
  }
  const client = Deno.createHttpClient(options);
  return fetchHttpClient({ client }, () => client.close());
}

/** `CLOCK_MONOTONIC` through FFI, opened on first use (tracing only; it needs the FFI permission, which `-A` grants). */
let _monotonic: (() => bigint) | null = null;

/** The Deno implementation of `RuntimeAdapter`. */
export const denoAdapter: RuntimeAdapter = {
  name: "deno",
  version: Deno.version.deno,
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  serveTls: _serveTls,
  httpClient: _httpClient,
  speaksTls,
  startWorker: startWebWorker,
  workerPort: () => {
    const g = globalThis as unknown as { WorkerGlobalScope?: new () => unknown; self?: unknown };
    return webWorkerPort(g.WorkerGlobalScope !== undefined && g.self instanceof g.WorkerGlobalScope);
  },
  monotonicNs: () => (_monotonic ??= monotonicClock(Deno.dlopen("libc.so.6", { clock_gettime: { parameters: ["i32", "buffer"], result: "i32" } }).symbols.clock_gettime))(),
  // Its node:fs write (callback and promise forms) is synchronous inside; fdatasync is not.
  fileWritesBlock: true,
};
