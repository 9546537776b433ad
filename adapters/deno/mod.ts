/**
 * The Deno adapter: `FsFile.tryLockSync` (flock underneath), `Deno.serve`,
 * the native `fetch` (pooled keep-alive) and Web Workers.
 *
 * @module
 */
import { acquireDirLock } from "../shared/lock.ts";
import { fetchHttpClient } from "../shared/fetch-client.ts";
import { startWebWorker, webWorkerPort } from "../shared/web-worker.ts";
import type { HttpServer, RuntimeAdapter } from "../types.ts";

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
declare const Deno: {
  openSync(path: string, options: { read: boolean; write: boolean; create: boolean }): DenoFsFile;
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): DenoHttpServer;
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

/** The Deno implementation of `RuntimeAdapter`. */
export const denoAdapter: RuntimeAdapter = {
  name: "deno",
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  httpClient: fetchHttpClient,
  startWorker: startWebWorker,
  workerPort: () => {
    const g = globalThis as unknown as { WorkerGlobalScope?: new () => unknown; self?: unknown };
    return webWorkerPort(g.WorkerGlobalScope !== undefined && g.self instanceof g.WorkerGlobalScope);
  },
};
