/**
 * The worker thread of a `RaftNode` started with `thread: "worker"`: runs
 * the driver (`./raft-node.ts`) — ticks, the peer RPC server, replication,
 * log and state-file writes — with a proxy state machine whose batches of
 * committed entries cross to the caller's thread, and forwards HTTP requests
 * for the user's routes there too. See `./raft-node-handle.ts` for the other
 * end and `./worker-protocol.ts` for the messages.
 *
 * @module
 */
import { runtime } from "../../adapters/mod.ts";
import type { DirLock } from "../../adapters/types.ts";
import { RaftError } from "../errors.ts";
import type { Entry } from "../raft/types.ts";
import { type ApplyBatchResult, RaftDriver } from "./raft-node.ts";
import type { NodeEvent, RaftNodeOptions, SnapshotSource, StateMachine, TlsOptions } from "./types.ts";
import {
  type CallOp,
  ChunkStreams,
  decodeError,
  encodeError,
  type FromWorker,
  packBatch,
  type Settled,
  type ToWorker,
  unpackBatch,
  type WireCall,
} from "./worker-protocol.ts";

const port = runtime.workerPort();
if (port === null) throw new RaftError("worker-main.ts runs only as a worker started by RaftNode");
const parent = port;

function post(m: FromWorker, transfer?: ArrayBuffer[]): void {
  parent.postMessage(m, transfer);
}

const streams = new ChunkStreams((m, t) => post(m, t));
let driver: RaftDriver | null = null;

/** Requests to the caller's thread waiting for their answer, by id. */
const smCalls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextSmCall = 1;
let nextApply = 1;
const httpCalls = new Map<number, (r: Response) => void>();
let nextHttp = 1;

function smCall(method: "lastApplied" | "snapshot" | "restore", args: readonly unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = nextSmCall++;
    smCalls.set(id, { resolve, reject });
    post({ t: "sm-call", id, method, args });
  });
}

/** Stands in for the user's state machine, which lives on the caller's thread. */
function proxyStateMachine(hasSnapshot: boolean, hasRestore: boolean): StateMachine {
  const sm: { -readonly [K in keyof StateMachine]: StateMachine[K] } = {
    apply() {
      throw new RaftError("The worker applies entries in batches (applyBatch); apply() is never called here");
    },
    lastApplied: () => smCall("lastApplied", []) as Promise<number>,
  };
  if (hasSnapshot) {
    sm.snapshot = async (): Promise<SnapshotSource> => {
      const { index, stream } = await smCall("snapshot", []) as { index: number; stream: number };
      return { index, chunks: streams.open(stream) };
    };
  }
  if (hasRestore) {
    sm.restore = async (index, chunks) => {
      await smCall("restore", [index, streams.offer(chunks)]);
    };
  }
  return sm;
}

/**
 * Apply batches sent and not yet acknowledged, at most this many: the apply
 * chain does not wait a thread round trip per batch, yet a blocked caller's
 * thread holds the chain back instead of queueing without bound.
 */
const _APPLY_WINDOW = 32;
let applyOutstanding = 0;
const applyWaiters: (() => void)[] = [];
const _APPLIED: ApplyBatchResult = { results: null, errors: null };

/**
 * One message per batch of committed entries. Resolves as soon as the batch
 * is sent (within the window): the caller's thread applies in order and
 * handles every later message (read barriers, snapshots, routes, calls) only
 * after it, and it resolves proposals itself (`proposed`), so nothing here
 * needs apply's results.
 */
function applyBatch(entries: readonly Entry[], lastIndex: number): Promise<ApplyBatchResult> {
  const seq = nextApply++;
  const buf = packBatch(entries.map((e) => e.data), entries.map((e) => e.index));
  // The caller's thread must learn which of these entries are its proposals before it applies them.
  if (settled.length > 0 || proposed.length > 0) flushSettled();
  post({ t: "apply", seq, buf, terms: entries.map((e) => e.term), lastIndex }, [buf]);
  applyOutstanding++;
  if (applyOutstanding <= _APPLY_WINDOW) return Promise.resolve(_APPLIED);
  return new Promise((resolve) => applyWaiters.push(() => resolve(_APPLIED)));
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
let proposed: number[] = [];
let settledWithStatus = false;
let flushQueued = false;
function settle(item: Settled, withStatus: boolean): void {
  queueFlush();
  settled.push(item);
  if (withStatus) settledWithStatus = true;
}
function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(flushSettled);
}
function flushSettled(): void {
  flushQueued = false;
  if (settled.length === 0 && proposed.length === 0) return;
  const items = settled;
  const appended = proposed;
  settled = [];
  proposed = [];
  // Calls that change membership, leadership or the log's first index carry a fresh status, so
  // `status()` on the caller's thread reflects them once they resolve.
  const { status, metrics } = settledWithStatus ? snapshotState() : { status: null, metrics: null };
  settledWithStatus = false;
  post({ t: "settled", items, proposed: appended, status, metrics });
}

function runCall(d: RaftDriver, c: WireCall, data: Uint8Array | null): void {
  if (c.op === "propose") {
    // Applied entries resolve their proposals on the caller's thread (apply runs there); only failures come from here.
    d.propose(data!, (index, term) => {
      queueFlush();
      proposed.push(c.id, index, term);
    }).then(() => {}, (err) => settle([c.id, false, encodeError(err)], false));
    return;
  }
  let p: Promise<unknown>;
  try {
    p = _dispatch(d, c.op, c.args, data);
  } catch (err) {
    p = Promise.reject(err);
  }
  const withStatus = c.op !== "readBarrier" && c.op !== "close";
  p.then((v) => settle([c.id, true, v], withStatus), (err) => settle([c.id, false, encodeError(err)], withStatus));
}

function _dispatch(d: RaftDriver, op: CallOp, args: readonly unknown[], data: Uint8Array | null): Promise<unknown> {
  switch (op) {
    case "propose":
      return d.propose(data!);
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
    case "reloadTls":
      return d.reloadTls(args[0] as TlsOptions);
    case "close":
      return d.close();
  }
}

// ---- Start-up ----

async function start(init: Extract<ToWorker, { t: "init" }>): Promise<void> {
  const o = init.options as unknown as RaftNodeOptions;
  const lock: DirLock = { dir: o.dataDir, release() {} };
  const opts: RaftNodeOptions = {
    ...o,
    stateMachine: proxyStateMachine(init.hasSnapshot, init.hasRestore),
    logger: (line) => post({ t: "log", line }),
    routes: (app, node) => {
      // The driver is usable from here on (routes may call it while it replays or joins).
      const d = node as RaftDriver;
      driver = d;
      const st = snapshotState();
      post({ t: "identity", id: d.id, url: d.url, clusterId: d.clusterId, status: st.status, metrics: st.metrics });
      if (!init.hasRoutes) return;
      // Everything that is not a peer or cluster route goes to the user's routes on the caller's thread.
      app.all("*", async (c) => {
        const req = c.req.raw;
        const hasBody = req.method !== "GET" && req.method !== "HEAD";
        const body = hasBody ? await req.arrayBuffer() : null;
        const headers: [string, string][] = [];
        req.headers.forEach((v, k) => headers.push([k, v]));
        const id = nextHttp++;
        return await new Promise<Response>((resolve) => {
          httpCalls.set(id, resolve);
          post({ t: "http", id, method: req.method, url: req.url, headers, body }, body === null ? [] : [body]);
        });
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
    d = await RaftDriver.start(opts, { lock, applyBatch });
  } catch (err) {
    clearInterval(timer);
    driver = null;
    throw err;
  }
  driver = d;
  d.on((ev: NodeEvent) => {
    const error = ev.type === "stopped" && ev.error !== null ? encodeError(ev.error) : null;
    const event = ev.type === "stopped" ? { type: "stopped", error: null } : ev;
    const st = ev.type === "stopped" ? { status: null, metrics: null } : snapshotState();
    post({ t: "event", event, error, status: st.status, metrics: st.metrics });
  });
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
      const d = driver;
      const items = m.buf === null ? null : unpackBatch(m.buf).items;
      for (const c of m.calls) {
        if (d === null) settle([c.id, false, encodeError(new RaftError("The node is starting"))], false);
        else runCall(d, c, c.item === undefined ? null : items![c.item]!);
      }
      break;
    }
    case "applied":
      applyOutstanding--;
      applyWaiters.shift()?.();
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
      r?.(new Response(empty ? null : m.body, { status: m.status, headers: m.headers as [string, string][] }));
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
