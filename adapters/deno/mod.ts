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
import { acquireDirLock } from "../shared/lock.ts";
import { fetchHttpClient } from "../shared/fetch-client.ts";
import { nodeHttpClient } from "../shared/node-http-client.ts";
import { relisten } from "../shared/relisten.ts";
import { speaksTls } from "../shared/tls-probe.ts";
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

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number): Promise<HttpServer> {
  // `shutdown()` waits for every pending handler, so a handler that never
  // answers would hold close() forever: on close, each pending handler is
  // answered with a 504 of its own. Not 503: that promises the request was
  // not applied, and a write waiting for its answer may well have been
  // (Node and Bun reset such connections, which promises nothing either).
  let closing: () => void = () => {};
  const closed = new Promise<void>((r) => (closing = r));
  const unknown = () =>
    new Response(JSON.stringify({ error: "The member stopped before it could answer: the outcome is unknown", outcome: "unknown" }), {
      status: 504,
      headers: { "content-type": "application/json", connection: "close" },
    });
  const handle = (req: Request) => Promise.race([app.fetch(req), closed.then(unknown)]);
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: host,
        port,
        onListen: (addr) =>
          resolve({
            port: addr.port,
            close: async () => {
              closing();
              await server.shutdown();
            },
          }),
      }, handle);
    } catch (err) {
      reject(err);
    }
  });
}

const _NO_PEER: TlsEnv = { tlsPeer: null };

/** `Deno.serve` over TLS (no client certificates), or node:https when `tls.ca` asks for them. */
async function _serveTls(app: TlsApp, host: string, port: number, tls: TlsServerOptions): Promise<TlsHttpServer> {
  if (tls.ca !== undefined) {
    const { serveNodeHttps } = await import("../shared/node-https-server.ts");
    return serveNodeHttps(app, host, port, tls, { reload: "in-place", overrideGlobalObjects: false });
  }
  // As in _serve: on close, handlers still pending are answered 503 so shutdown() cannot hang on them.
  let closing: (r: Response) => void = () => {};
  const closed = new Promise<Response>((r) => (closing = r));
  const handle = (req: Request) => Promise.race([app.fetch(req, _NO_PEER), closed]);
  const open = (t: TlsServerOptions, p: number) =>
    new Promise<{ server: DenoHttpServer; port: number }>((resolve, reject) => {
      try {
        const server: DenoHttpServer = Deno.serve({ hostname: host, port: p, cert: t.cert, key: t.key, onListen: (addr) => queueMicrotask(() => resolve({ server, port: addr.port })) }, handle);
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
      closing(new Response("Server is shutting down", { status: 503 }));
      await Promise.all([current.server.shutdown(), ...retired]);
    },
  };
}

function _httpClient(tls?: TlsClientOptions): HttpClient {
  if (tls === undefined) return fetchHttpClient();
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

/** The Deno implementation of `RuntimeAdapter`. */
export const denoAdapter: RuntimeAdapter = {
  name: "deno",
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
};
