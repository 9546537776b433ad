/**
 * The Bun adapter: libc `flock` through `bun:ffi`, `Bun.serve`, the native
 * `fetch` (pooled keep-alive) and Web Workers.
 *
 * @module
 */
import { dlopen, read } from "bun:ffi";
import { acquireDirLock, flockTryLock } from "../shared/lock.ts";
import { fetchHttpClient } from "../shared/fetch-client.ts";
import { startWebWorker, webWorkerPort } from "../shared/web-worker.ts";
import type { HttpServer, RuntimeAdapter } from "../types.ts";

interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
declare const Bun: {
  isMainThread: boolean;
  serve(options: { hostname: string; port: number; fetch: (req: Request) => Response | Promise<Response> }): BunServer;
};

const _libc = dlopen("libc.so.6", {
  flock: { args: ["i32", "i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
});
const _tryLock = flockTryLock(
  (fd, op) => _libc.symbols.flock(fd, op) as number,
  () => read.i32(_libc.symbols.__errno_location() as number, 0),
);

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number): Promise<HttpServer> {
  const server = Bun.serve({ hostname: host, port, fetch: (req) => app.fetch(req) });
  return Promise.resolve({
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  });
}

/** The Bun implementation of `RuntimeAdapter`. */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  httpClient: fetchHttpClient,
  startWorker: startWebWorker,
  workerPort: () => webWorkerPort(!Bun.isMainThread),
};
