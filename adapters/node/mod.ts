/**
 * The Node adapter: `flock` through koffi (libc), `@hono/node-server`,
 * a `node:http` keep-alive client (Node 20's `fetch` measured 5-8x slower on
 * this path), and `worker_threads` (with tsx's loader only for a `.ts`
 * worker module, that is when running from a checkout's sources).
 *
 * @module
 */
import * as http from "node:http";
import { isMainThread, parentPort, Worker } from "node:worker_threads";
import { serve as honoServe } from "@hono/node-server";
import koffi from "koffi";
import { TimeoutError } from "../../src/errors.ts";
import { acquireDirLock, flockTryLock } from "../shared/lock.ts";
import type { HttpClient, HttpResponse, HttpServer, RuntimeAdapter, WorkerHandle, WorkerPort } from "../types.ts";

const _libc = koffi.load("libc.so.6");
const _flock = _libc.func("int flock(int fd, int operation)") as (fd: number, op: number) => number;
const _tryLock = flockTryLock(_flock, () => koffi.errno());

function _httpClient(): HttpClient {
  // Keep-alive, many sockets per peer so several RPCs are in flight at once.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 });
  return {
    request(req) {
      return new Promise<HttpResponse>((resolve, reject) => {
        const headers: Record<string, string | number> = { ...req.headers };
        if (req.body !== undefined) headers["content-length"] = req.body.byteLength;
        const r = http.request(req.url, { method: req.method, agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            clearTimeout(timer);
            const out: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) {
              if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
            }
            const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: out, body: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) });
          });
          res.on("error", fail);
        });
        const timer = setTimeout(() => {
          r.destroy(new TimeoutError(`${req.method} ${req.url} got no answer within ${req.timeoutMs} ms`));
        }, req.timeoutMs);
        function fail(err: Error) {
          clearTimeout(timer);
          reject(err);
        }
        r.on("error", fail);
        r.setNoDelay(true);
        r.end(req.body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    const server = honoServe({ fetch: app.fetch, hostname: host, port }, (info) => {
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            const s = server as http.Server;
            s.close(() => done());
            s.closeAllConnections();
          }),
      });
    }) as http.Server;
    server.once("error", reject);
  });
}

function _startWorker(moduleUrl: URL): WorkerHandle {
  // Compiled JavaScript (the npm package) runs as is; TypeScript (a checkout) through tsx's loader.
  const worker = moduleUrl.pathname.endsWith(".ts")
    ? new Worker(new URL("./worker-bootstrap.mjs", import.meta.url), { workerData: { moduleUrl: moduleUrl.href } })
    : new Worker(moduleUrl);
  const onError: ((e: Error) => void)[] = [];
  let terminated = false;
  let failed = false;
  const fail = (err: Error) => {
    if (terminated || failed) return;
    failed = true;
    for (const l of onError) l(err);
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`Worker exited with code ${code}`)));
  return {
    postMessage(message, transfer) {
      worker.postMessage(message, transfer ?? []);
    },
    onMessage(listener) {
      worker.on("message", listener);
    },
    onError(listener) {
      onError.push(listener);
    },
    async terminate() {
      terminated = true;
      await worker.terminate();
    },
  };
}

let _port: WorkerPort | null | undefined;
function _workerPort(): WorkerPort | null {
  if (_port !== undefined) return _port;
  if (isMainThread || parentPort === null) return (_port = null);
  const p = parentPort;
  // worker_threads queues messages until a listener is attached, so no buffering is needed here.
  _port = {
    postMessage(message, transfer) {
      p.postMessage(message, transfer ?? []);
    },
    onMessage(listener) {
      p.on("message", listener);
    },
  };
  return _port;
}

/** The Node implementation of `RuntimeAdapter`. */
export const nodeAdapter: RuntimeAdapter = {
  name: "node",
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  httpClient: _httpClient,
  startWorker: _startWorker,
  workerPort: _workerPort,
};
