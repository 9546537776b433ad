/**
 * The worker thread of a `RaftNode` started with `thread: "worker"`: runs
 * the driver (`../driver.ts`, started by `../start.ts`) — ticks, the peer
 * RPC server, replication, log and state-file writes — with two things
 * that belong to the caller's thread standing in: a remote applier
 * (`./remote-applier.ts`) for the state machine, and a route host that
 * forwards HTTP requests for the user's routes. See `./worker-node.ts` for
 * the other end and `./protocol.ts` for the messages.
 *
 * @module
 */
import { runtime } from "../../../adapters/mod.ts";
import { REQUEST_TIMEOUT_MS_DEFAULT } from "../../../adapters/shared/serve-limits.ts";
import type { DirLock } from "../../../adapters/types.ts";
import { RaftError } from "../../errors.ts";
import type { RaftDriver } from "../driver.ts";
import { forwardRequest } from "../forwarded-request.ts";
import { kvService } from "../../kv/service.ts";
import { setThreadName } from "../../api/loop-delay.ts";
import { startDriver } from "../start.ts";
import type { NodeEvent, RaftNodeOptions, TlsOptions } from "../types.ts";
import { remoteApplier } from "./remote-applier.ts";
import {
  type CallOp,
  chunksBody,
  ChunkStreams,
  decodeError,
  encodeError,
  type FromWorker,
  type Settled,
  type ToWorker,
  unpackBatch,
  type WireCall,
} from "./protocol.ts";

const port = runtime.workerPort();
if (port === null) throw new RaftError("worker-main.ts runs only as a worker started by RaftNode");
const parent = port;
// `/metrics` served from here labels its per-thread series (heap, event-loop delay) thread="worker".
setThreadName("worker");

function post(m: FromWorker, transfer?: ArrayBuffer[]): void {
  parent.postMessage(m, transfer);
}

const streams = new ChunkStreams((m, t) => post(m, t));
let driver: RaftDriver | null = null;
let ackApply: (count: number) => void = () => {};

/** Requests to the caller's thread waiting for their answer, by id. */
const smCalls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextSmCall = 1;
const httpCalls = new Map<number, (r: Response) => void>();
let nextHttp = 1;

function smCall(method: "lastApplied" | "snapshot" | "restore", args: readonly unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = nextSmCall++;
    smCalls.set(id, { resolve, reject });
    post({ t: "sm-call", id, method, args });
  });
}

/** The driver's status and counters, or nulls once it is closed (its log no longer answers). */
function snapshotState(): { status: unknown; metrics: unknown } {
  try {
    return driver === null ? { status: null, metrics: null } : { status: driver.status(), metrics: driver.metrics() };
  } catch {
    return { status: null, metrics: null };
  }
}

// ---- Settled calls, batched per microtask ----

let settled: Settled[] = [];
let settledWithStatus = false;
let flushQueued = false;
function settle(item: Settled, withStatus: boolean): void {
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushSettled);
  }
  settled.push(item);
  if (withStatus) settledWithStatus = true;
}
function flushSettled(): void {
  flushQueued = false;
  if (settled.length === 0) return;
  const items = settled;
  settled = [];
  // Calls that change membership, leadership or the log's first index carry a fresh status, so
  // `status()` on the caller's thread reflects them once they resolve.
  const { status, metrics } = settledWithStatus ? snapshotState() : { status: null, metrics: null };
  settledWithStatus = false;
  post({ t: "settled", items, status, metrics });
}

/** The built-in KV store runs here (`RaftNodeOptions.kv`): proposals settle here, with apply's result. */
let hostsKv = false;

/** A proposal made on the caller's thread as call `id`. */
function runProposal(d: RaftDriver, id: number, data: Uint8Array): void {
  if (hostsKv) {
    d.propose(data).then((v) => settle([id, true, v], false), (err) => settle([id, false, encodeError(err)], false));
    return;
  }
  // Applied entries resolve their proposals on the caller's thread (apply runs there); only failures come from here.
  d.proposeTagged(data, id, (err) => settle([id, false, encodeError(err)], false));
}

function runCall(d: RaftDriver, c: WireCall): void {
  let p: Promise<unknown>;
  try {
    p = _dispatch(d, c.op, c.args);
  } catch (err) {
    p = Promise.reject(err);
  }
  const withStatus = c.op !== "readBarrier" && c.op !== "close";
  p.then((v) => settle([c.id, true, v], withStatus), (err) => settle([c.id, false, encodeError(err)], withStatus));
}

function _dispatch(d: RaftDriver, op: CallOp, args: readonly unknown[]): Promise<unknown> {
  switch (op) {
    case "readBarrier":
      return d.readBarrier();
    case "addMember":
      return d.addMember(args[0] as string, args[1] as string);
    case "removeMember":
      return d.removeMember(args[0] as string);
    case "transferLeadership":
      return args[0] === undefined ? d.transferLeadership() : d.transferLeadership(args[0] as string);
    case "beginSnapshot":
      return d.beginSnapshot();
    case "endSnapshot":
      return d.endSnapshot(args[0] as number);
    case "takeSnapshot":
      return d.takeSnapshot();
    case "reloadTls":
      return d.reloadTls(args[0] as TlsOptions);
    case "close":
      return d.close();
  }
}

// ---- Start-up ----

async function start(init: Extract<ToWorker, { t: "init" }>): Promise<void> {
  const { kv: kvOptions, ...o } = init.options as unknown as RaftNodeOptions;
  const lock: DirLock = { dir: o.dataDir, release() {} };
  const kv = kvOptions === undefined ? null : kvService(kvOptions);
  hostsKv = kv !== null;
  const remote = kv !== null ? null : remoteApplier({ post, smCall, streams }, { snapshot: init.hasSnapshot, restore: init.hasRestore });
  if (remote !== null) ackApply = remote.acked;
  let startReturned = false;
  const opts: RaftNodeOptions = {
    ...o,
    // The built-in store, or a stand-in the remote applier replaces (it is never called).
    stateMachine: kv?.stateMachine ?? { apply: () => undefined, lastApplied: () => 0 },
    logger: (line) => post({ t: "log", line }),
    routes: (app, node) => {
      // The driver is usable from here on (routes may call it while it replays or joins).
      const d = node as RaftDriver;
      driver = d;
      // Forward events from here on, not only once start returns: a join's events (membership, role) come before.
      d.on((ev: NodeEvent) => {
        // Before start returned, a stop is reported as start-failed instead.
        if (ev.type === "stopped" && !startReturned) return;
        const error = ev.type === "stopped" && ev.error !== null ? encodeError(ev.error) : null;
        const event = ev.type === "stopped" ? { type: "stopped", error: null } : ev;
        const st = ev.type === "stopped" ? { status: null, metrics: null } : snapshotState();
        post({ t: "event", event, error, status: st.status, metrics: st.metrics });
      });
      const st = snapshotState();
      post({ t: "identity", id: d.id, url: d.url, clusterId: d.clusterId, status: st.status, metrics: st.metrics });
      if (kv !== null) {
        kv.routes(app, node);
        return;
      }
      if (!init.hasRoutes) return;
      // Everything that is not a peer or cluster route goes to the user's routes on the caller's thread.
      app.all("*", async (c) => {
        // The body crosses only as the routes read it (see forwarded-request.ts).
        const f = await forwardRequest(c.req.raw, streams, o.connectionLimits?.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT);
        if (f instanceof Response) return f;
        const { request, transfer, done } = f;
        const id = nextHttp++;
        const res = await new Promise<Response>((resolve) => {
          httpCalls.set(id, resolve);
          post({ t: "http", id, ...request }, transfer);
        });
        if (done()) res.headers.set("connection", "close");
        return res;
      });
    },
  };
  const tickMs = o.tickMs ?? 100;
  // status() on the caller's thread is this copy, refreshed every tick and on every event.
  const timer = setInterval(() => {
    const st = snapshotState();
    if (st.status !== null) post({ t: "status", status: st.status, metrics: st.metrics });
  }, tickMs);
  let d: RaftDriver;
  try {
    d = await startDriver(opts, remote === null ? { lock } : { lock, applier: remote.applier });
  } catch (err) {
    clearInterval(timer);
    driver = null;
    throw err;
  }
  driver = d;
  startReturned = true;
  d.on((ev) => {
    if (ev.type === "stopped") clearInterval(timer);
  });
  post({ t: "started", status: d.status(), metrics: d.metrics() });
}

parent.onMessage((raw) => {
  const m = raw as ToWorker;
  if (streams.handle(m)) return;
  switch (m.t) {
    case "init":
      start(m).catch((err) => post({ t: "start-failed", error: encodeError(err) }));
      break;
    case "calls": {
      if (m.applied > 0) ackApply(m.applied);
      const d = driver;
      const proposals = m.buf === null ? null : unpackBatch(m.buf);
      if (d === null) {
        const starting = encodeError(new RaftError("The node is starting"));
        for (const id of proposals?.keys ?? []) settle([id, false, starting], false);
        for (const c of m.calls) settle([c.id, false, starting], false);
        break;
      }
      // In the order they were made: each call after the proposals made before it.
      let next = 0;
      const proposeUpTo = (end: number) => {
        for (; next < end; next++) runProposal(d, proposals!.keys[next]!, proposals!.items[next]!);
      };
      for (const c of m.calls) {
        proposeUpTo(c.after);
        runCall(d, c);
      }
      proposeUpTo(proposals === null ? 0 : proposals.items.length);
      break;
    }
    case "applied":
      ackApply(m.count);
      break;
    case "sm-reply": {
      const c = smCalls.get(m.id);
      smCalls.delete(m.id);
      if (m.ok) c?.resolve(m.value);
      else c?.reject(decodeError(m.value as Parameters<typeof decodeError>[0]));
      break;
    }
    case "http-reply": {
      const r = httpCalls.get(m.id);
      httpCalls.delete(m.id);
      const empty = m.status === 101 || m.status === 204 || m.status === 205 || m.status === 304;
      const body = empty ? null : m.stream !== null ? chunksBody(streams.open(m.stream)) : m.body;
      r?.(new Response(body, { status: m.status, headers: m.headers as [string, string][] }));
      break;
    }
    case "fault":
      // Test hook: an uncaught error kills this worker the way a bug would.
      setTimeout(() => {
        throw new Error("Injected worker fault");
      }, 0);
      break;
  }
});
