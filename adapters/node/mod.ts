/**
 * The Node adapter: `flock` through koffi (libc), `@hono/node-server`
 * (over `node:https` for TLS, see ../shared/node-https-server.ts), a
 * `node:http`/`node:https` keep-alive client (Node 20's `fetch` measured
 * 5-8x slower on this path), and `worker_threads` (with tsx's loader only
 * for a `.ts` worker module, that is when running from a checkout's sources).
 *
 * @module
 */
import * as http from "node:http";
import process from "node:process";
import { isMainThread, parentPort, Worker } from "node:worker_threads";
import { createAdaptorServer } from "@hono/node-server";
import koffi from "koffi";
import { http1Client } from "../shared/http1-client.ts";
import { acquireDirLock, flockTryLock } from "../shared/lock.ts";
import { nodeHttpClient } from "../shared/node-http-client.ts";
import { serveNodeHttps } from "../shared/node-https-server.ts";
import { closeNodeServer, listenNodeServer, nodeServerOptions, type ServeLimits, serveLimits } from "../shared/serve-limits.ts";
import { speaksTls } from "../shared/tls-probe.ts";
import { turnGate } from "../shared/turn-gate.ts";
import type { HttpServer, RuntimeAdapter, WorkerHandle, WorkerPort } from "../types.ts";

const _libc = koffi.load("libc.so.6");
const _flock = _libc.func("int flock(int fd, int operation)") as (fd: number, op: number) => number;
const _tryLock = flockTryLock(_flock, () => koffi.errno());

function _serve(app: { fetch: (req: Request) => Response | Promise<Response> }, host: string, port: number, limits: ServeLimits = serveLimits()): Promise<HttpServer> {
  const server = createAdaptorServer({
    fetch: app.fetch,
    hostname: host,
    serverOptions: nodeServerOptions(limits),
    createServer: ((options: http.ServerOptions, listener: http.RequestListener) => http.createServer(options, turnGate(listener))) as typeof http.createServer,
  }) as http.Server;
  return listenNodeServer(server, host, port, limits).then(() => {
    const addr = server.address();
    return {
      port: typeof addr === "object" && addr !== null ? addr.port : port,
      close: () => closeNodeServer(server),
    };
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
  version: process.versions.node,
  lockDir: (dir) => acquireDirLock(dir, _tryLock),
  serve: _serve,
  serveTls: (app, host, port, tls, limits) => serveNodeHttps(app, host, port, tls, { reload: "in-place", overrideGlobalObjects: true }, limits),
  // Plain http: on a node:net socket of our own (http1-client.ts: a third of the CPU per request); https: on node:https.
  httpClient: (tls) => (tls === undefined ? http1Client(nodeHttpClient()) : nodeHttpClient(tls)),
  speaksTls,
  startWorker: _startWorker,
  workerPort: _workerPort,
  // uv_hrtime: clock_gettime(CLOCK_MONOTONIC) on Linux.
  monotonicNs: () => process.hrtime.bigint(),
  // fs.write runs on libuv's thread pool.
  fileWritesBlock: false,
};
