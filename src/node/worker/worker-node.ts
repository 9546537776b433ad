/**
 * The caller's-thread end of a node started with `thread: "worker"`: a thin
 * handle whose calls cross to the driver in its worker (`./worker-main.ts`),
 * and which runs, on the caller's thread, what belongs to the user: the
 * state machine (one message per batch of committed entries, packed into a
 * transferred buffer), the user's routes (HTTP requests forwarded from the
 * worker's server), event listeners and the logger.
 *
 * The data-directory lock is taken and kept here, not in the worker: flock
 * belongs to the process, so a worker that dies would otherwise leave the
 * directory locked until the process exits.
 *
 * @module
 */
import * as path from "node:path";
import process from "node:process";
import { Hono } from "hono";
import type { DirLock, RuntimeAdapter, WorkerHandle } from "../../../adapters/types.ts";
import { ClosedError, InvalidArgumentError, RaftError } from "../../errors.ts";
import { assert } from "../../raft/assert.ts";
import type { NodeId } from "../../raft/types.ts";
import type { NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, RaftNodeOptions, SnapshotTaken, StateMachine, TlsOptions } from "../types.ts";
import {
  APPLY_ACK_EVERY,
  bodyChunks,
  type CallOp,
  ChunkStreams,
  decodeError,
  type EncodedError,
  encodeError,
  type FromWorker,
  packBatch,
  type Settled,
  type ToWorker,
  unpackBatch,
  type WireCall,
} from "./protocol.ts";
import { redactPaths } from "../../transport/sanitize.ts";
import { rebuildRequest } from "../forwarded-request.ts";

interface _Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
}

/**
 * The worker's module, beside this one: `worker-main.js` once compiled
 * (dist/, what the npm package ships), `worker-main.ts` run from source.
 */
function _workerMainUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./worker-main.ts" : "./worker-main.js", import.meta.url);
}

/** A node whose consensus loop runs in a worker thread (see the module comment). */
export class WorkerNode implements RaftNodeApi {
  #id = "";
  #url = "";
  #clusterId = "";
  readonly #opts: RaftNodeOptions;
  /** The user's state machine; null when the worker runs the built-in KV store itself (`opts.kv`). */
  readonly #sm: StateMachine | null;
  readonly #lock: DirLock;
  readonly #worker: WorkerHandle;
  readonly #logger: (line: string) => void;
  readonly #streams: ChunkStreams;
  readonly #listeners = new Set<(ev: NodeEvent) => void>();
  /** Calls sent to the worker and not settled yet, by call id (a proposal's id tags its entry in the apply batch). */
  readonly #calls = new Map<number, _Pending>();
  #nextCall = 1;
  /**
   * What waits for this microtask's message: proposals as their bytes and
   * call ids (packed into one buffer: no object per proposal crosses), and
   * the other calls, each placed after the proposals made before it.
   */
  #outCalls: WireCall[] = [];
  #outItems: Uint8Array[] = [];
  #outIds: number[] = [];
  /** Apply batches waiting behind an asynchronous apply, oldest first. */
  #applyQueue: { buf: ArrayBuffer; tags: readonly number[]; lastIndex: number }[] = [];
  /** Apply batches done and not yet acknowledged to the worker: fewer than `APPLY_ACK_EVERY` between calls. */
  #unacked = 0;
  #applying = false;
  /**
   * Messages that arrived while an asynchronous apply was in progress: the
   * worker sent them after the entries being applied (it does not wait for
   * applies), so they are handled after them, in order.
   */
  #deferred: FromWorker[] = [];
  #userApp: Hono | null = null;
  /** The worker's last pushed status; `lastApplied` is raised by what was applied here. */
  #status: NodeStatus | null = null;
  #metrics: NodeMetrics | null = null;
  /** Invariant: the state machine holds every normal entry <= #appliedHere. */
  #appliedHere = 0;
  #started: _Pending | null = null;
  #closing: Promise<void> | null = null;
  /** Set once the worker is gone; every later call fails with it. */
  #dead: Error | null = null;

  private constructor(opts: RaftNodeOptions, lock: DirLock, worker: WorkerHandle, applied: number) {
    this.#opts = opts;
    this.#sm = opts.stateMachine ?? null;
    this.#lock = lock;
    this.#worker = worker;
    this.#appliedHere = applied;
    this.#logger = opts.logger ?? ((line) => process.stderr.write(`${line}\n`));
    this.#streams = new ChunkStreams((m, t) => this.#post(m, t));
    worker.onMessage((m) => this.#onMessage(m as FromWorker));
    worker.onError((err) => void this.#die(err));
  }

  /**
   * Locks the data directory here, starts the worker and waits until its
   * driver serves. Same errors as the caller-thread start.
   */
  static async start(opts: RaftNodeOptions, rt: RuntimeAdapter): Promise<WorkerNode> {
    const dataDir = path.resolve(opts.dataDir);
    // The built-in KV store runs in the worker itself (`opts.kv`): nothing of the state machine is here.
    const sm = opts.kv !== undefined ? null : opts.stateMachine;
    if (opts.kv !== undefined && (opts.stateMachine !== undefined || opts.routes !== undefined)) throw new InvalidArgumentError("Give kv, or stateMachine and routes, not both");
    if (sm === undefined) throw new InvalidArgumentError("Give a stateMachine, or kv for the built-in key-value store");
    const lock = rt.lockDir(dataDir);
    let node: WorkerNode | null = null;
    try {
      const applied = sm === null ? 0 : await sm.lastApplied();
      const worker = rt.startWorker(_workerMainUrl());
      node = new WorkerNode(opts, lock, worker, applied);
      const started = new Promise<unknown>((resolve, reject) => (node!.#started = { resolve, reject }));
      const options: Record<string, unknown> = { ...opts, dataDir };
      for (const k of ["stateMachine", "routes", "logger", "runtime"]) delete options[k];
      node.#post({
        t: "init",
        options,
        lastApplied: applied,
        hasSnapshot: sm?.snapshot !== undefined,
        hasRestore: sm?.restore !== undefined,
        hasRoutes: opts.routes !== undefined,
      });
      await started;
      return node;
    } catch (err) {
      if (node !== null) await node.#stopWorker();
      else lock.release();
      throw err;
    }
  }

  get id(): NodeId {
    return this.#id;
  }
  get url(): string {
    return this.#url;
  }
  get clusterId(): string {
    return this.#clusterId;
  }

  propose(data: Uint8Array): Promise<unknown> {
    const err = this.#refusal(false);
    if (err !== null) return Promise.reject(err);
    return new Promise((resolve, reject) => {
      this.#outIds.push(this.#register(resolve, reject));
      this.#outItems.push(data);
    });
  }
  readBarrier(): Promise<void> {
    return this.#call("readBarrier", []) as Promise<void>;
  }
  addMember(id: NodeId, url: string): Promise<void> {
    return this.#call("addMember", [id, url]) as Promise<void>;
  }
  removeMember(id: NodeId): Promise<void> {
    return this.#call("removeMember", [id]) as Promise<void>;
  }
  transferLeadership(to?: NodeId): Promise<void> {
    return this.#call("transferLeadership", [to]) as Promise<void>;
  }
  beginSnapshot(): Promise<number> {
    return this.#call("beginSnapshot", []) as Promise<number>;
  }
  endSnapshot(marker: number): Promise<void> {
    return this.#call("endSnapshot", [marker]) as Promise<void>;
  }
  takeSnapshot(): Promise<SnapshotTaken> {
    return this.#call("takeSnapshot", []) as Promise<SnapshotTaken>;
  }
  reloadTls(tls: TlsOptions): Promise<void> {
    return this.#call("reloadTls", [tls]) as Promise<void>;
  }

  /** The worker's copy, at most one tick old; `lastApplied` is exact (it is counted here). */
  status(): NodeStatus {
    const st = this.#status;
    if (st === null) throw new RaftError("The node is starting");
    return this.#sm === null || st.lastApplied === this.#appliedHere ? st : { ...st, lastApplied: this.#appliedHere };
  }

  /** The worker's counters, at most one tick old. */
  metrics(): NodeMetrics {
    if (this.#metrics === null) throw new RaftError("The node is starting");
    return this.#metrics;
  }

  on(listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Closes the driver (waits for writes in flight), ends the worker, releases the lock. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#dead !== null) return Promise.resolve();
    this.#emit({ type: "closing" });
    this.#closing = (async () => {
      try {
        await this.#call("close", [], true);
      } catch {
        // The worker died while closing: #die reported it.
      }
      if (this.#dead !== null) return;
      this.#dead = new ClosedError("The node was closed");
      this.#rejectAll(this.#dead);
      await this.#stopWorker();
      this.#emit({ type: "stopped", error: null });
    })();
    return this.#closing;
  }

  /** Test hook: makes the worker fail as a bug or a kill would ("throw": an uncaught error in it; "terminate": it is ended). */
  injectFault(kind: "throw" | "terminate"): void {
    if (kind === "throw") this.#post({ t: "fault", kind: "throw" });
    else void this.#worker.terminate().then(() => this.#die(new RaftError("The node's worker thread was terminated")));
  }

  // ---- Calls to the worker ----

  #call(op: CallOp, args: readonly unknown[], closing = false): Promise<unknown> {
    const err = this.#refusal(closing);
    if (err !== null) return Promise.reject(err);
    return new Promise((resolve, reject) => {
      this.#outCalls.push({ id: this.#register(resolve, reject), op, args, after: this.#outIds.length });
    });
  }

  /** Why no call can be made now (the worker died, or the node is closing and this is not `close`'s own), or null. */
  #refusal(closing: boolean): Error | null {
    if (this.#dead !== null) return this.#dead;
    return this.#closing !== null && !closing ? new ClosedError("The node is closed") : null;
  }

  /** Gives a call its id and pending entry, and makes sure this microtask's message goes out (before the call is queued). */
  #register(resolve: _Pending["resolve"], reject: _Pending["reject"]): number {
    const id = this.#nextCall++;
    this.#calls.set(id, { resolve, reject });
    if (this.#outCalls.length === 0 && this.#outIds.length === 0) queueMicrotask(() => this.#flushCalls());
    return id;
  }

  /** One message per microtask of calls, proposals packed into one transferred buffer (keys: their call ids). */
  #flushCalls(): void {
    const calls = this.#outCalls;
    const items = this.#outItems;
    const ids = this.#outIds;
    this.#outCalls = [];
    this.#outItems = [];
    this.#outIds = [];
    if ((calls.length === 0 && ids.length === 0) || this.#dead !== null) return;
    const buf = ids.length === 0 ? null : packBatch(items, ids);
    const applied = this.#unacked;
    this.#unacked = 0;
    this.#post({ t: "calls", calls, buf, applied }, buf === null ? [] : [buf]);
  }

  #post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.#dead !== null && m.t !== "fault") return;
    this.#worker.postMessage(m, transfer);
  }

  // ---- Messages from the worker ----

  #onMessage(m: FromWorker): void {
    if (this.#streams.handle(m)) return;
    if (this.#applying && m.t !== "status" && m.t !== "log") {
      this.#deferred.push(m);
      return;
    }
    switch (m.t) {
      case "identity":
        this.#id = m.id;
        this.#url = m.url;
        this.#clusterId = m.clusterId;
        this.#status = m.status as NodeStatus | null;
        this.#metrics = m.metrics as NodeMetrics | null;
        if (this.#opts.routes !== undefined) {
          const app = new Hono();
          this.#opts.routes(app, this);
          this.#userApp = app;
        }
        break;
      case "started":
        this.#status = m.status as NodeStatus;
        this.#metrics = m.metrics as NodeMetrics;
        this.#started?.resolve(undefined);
        this.#started = null;
        break;
      case "start-failed":
        this.#started?.reject(decodeError(m.error));
        this.#started = null;
        break;
      case "settled":
        if (m.status !== null) this.#status = m.status as NodeStatus;
        if (m.metrics !== null) this.#metrics = m.metrics as NodeMetrics;
        for (const s of m.items) this.#settle(s);
        break;
      case "apply":
        this.#applyQueue.push({ buf: m.buf, tags: m.tags, lastIndex: m.lastIndex });
        if (!this.#applying) void this.#drainApplies();
        break;
      case "sm-call":
        void this.#smCall(m.id, m.method, m.args);
        break;
      case "http":
        void this.#http(m);
        break;
      case "status":
        this.#status = m.status as NodeStatus;
        this.#metrics = m.metrics as NodeMetrics;
        break;
      case "event": {
        if (m.status !== null) this.#status = m.status as NodeStatus;
        if (m.metrics !== null) this.#metrics = m.metrics as NodeMetrics;
        const ev = m.event as NodeEvent;
        if (ev.type === "closing") {
          // Already emitted here when close() was called.
        } else if (ev.type === "stopped") {
          // The driver stopped by itself (a fatal storage error): the node is over.
          if (this.#closing === null) void this.#die(m.error === null ? new ClosedError("The node stopped") : decodeError(m.error));
        } else {
          this.#emit(ev);
        }
        break;
      }
      case "log":
        this.#logger(m.line);
        break;
    }
  }

  #settle(s: Settled): void {
    const p = this.#calls.get(s[0]);
    if (p === undefined) return;
    this.#calls.delete(s[0]);
    if (s[1]) p.resolve(s[2]);
    else p.reject(decodeError(s[2] as EncodedError));
  }

  /** Applies batches in order; a state machine whose apply returns a promise is awaited entry by entry. */
  async #drainApplies(): Promise<void> {
    this.#applying = true;
    try {
      while (this.#applyQueue.length > 0) {
        const { buf, tags, lastIndex } = this.#applyQueue.shift()!;
        const { keys, items } = unpackBatch(buf);
        for (let i = 0; i < items.length; i++) {
          const index = keys[i]!;
          assert(i === 0 || index > keys[i - 1]!, "a batch holds entries in log order");
          let result: unknown;
          let failed: unknown = null;
          try {
            result = this.#sm!.apply(index, items[i]!);
            if (result instanceof Promise) result = await result;
          } catch (err) {
            failed = err;
          }
          this.#appliedHere = index;
          // The proposal made here for this entry resolves with apply's result as is (it never crosses threads).
          const call = tags[i] === 0 ? undefined : this.#calls.get(tags[i]!);
          if (call !== undefined) {
            this.#calls.delete(tags[i]!);
            if (failed === null) call.resolve(result);
            else call.reject(failed instanceof Error ? failed : new Error(String(failed)));
          }
        }
        // Internal entries (no-ops, membership) count as applied too, as in caller mode.
        if (lastIndex > this.#appliedHere) this.#appliedHere = lastIndex;
        if (this.#dead !== null) return;
        if (++this.#unacked >= APPLY_ACK_EVERY) {
          this.#post({ t: "applied", count: this.#unacked });
          this.#unacked = 0;
        }
      }
    } finally {
      this.#applying = false;
    }
    while (this.#deferred.length > 0 && !this.#applying) this.#onMessage(this.#deferred.shift()!);
  }

  async #smCall(id: number, method: "lastApplied" | "snapshot" | "restore", args: readonly unknown[]): Promise<void> {
    try {
      let value: unknown;
      const sm = this.#sm;
      if (sm === null) throw new RaftError("The state machine runs in the worker");
      if (method === "lastApplied") value = await sm.lastApplied();
      else if (method === "snapshot") {
        const src = await sm.snapshot!();
        value = { index: src.index, stream: this.#streams.offer(src.chunks) };
      } else {
        const index = args[0] as number;
        await sm.restore!(index, this.#streams.open(args[1] as number));
        this.#appliedHere = index;
      }
      this.#post({ t: "sm-reply", id, ok: true, value });
    } catch (err) {
      this.#post({ t: "sm-reply", id, ok: false, value: encodeError(err) });
    }
  }

  async #http(m: Extract<FromWorker, { t: "http" }>): Promise<void> {
    let status = 500;
    let headers: [string, string][] = [];
    let body = new ArrayBuffer(0);
    let stream: number | null = null;
    try {
      const app = this.#userApp;
      if (app === null) throw new RaftError("No routes are mounted");
      const res = await app.fetch(rebuildRequest(m, this.#streams));
      status = res.status;
      res.headers.forEach((v, k) => headers.push([k, v]));
      // An event stream never ends by itself: its chunks cross as they are written.
      if (res.body !== null && (res.headers.get("content-type") ?? "").startsWith("text/event-stream")) stream = this.#streams.offer(bodyChunks(res.body), true);
      else body = await res.arrayBuffer();
    } catch (err) {
      status = 500;
      headers = [["content-type", "text/plain; charset=UTF-8"]];
      body = new TextEncoder().encode(`Internal error in a route: ${redactPaths((err as Error).message)}\n`).buffer as ArrayBuffer;
      this.#logger(`route ${m.method} ${m.url} threw: ${(err as Error).message}`);
    }
    this.#post({ t: "http-reply", id: m.id, status, headers, body, stream }, [body]);
  }

  // ---- The end ----

  /** The worker is gone (crashed, terminated, or its driver stopped on a fatal error). */
  async #die(err: Error): Promise<void> {
    if (this.#dead !== null) return;
    this.#dead = err;
    this.#logger(`the node's worker thread stopped: ${err.message}`);
    this.#rejectAll(err);
    await this.#stopWorker();
    this.#emit({ type: "stopped", error: err });
  }

  #rejectAll(err: Error): void {
    this.#started?.reject(err);
    this.#started = null;
    for (const p of this.#calls.values()) p.reject(err);
    this.#calls.clear();
    this.#outCalls = [];
    this.#outItems = [];
    this.#outIds = [];
    this.#streams.failAll(err);
  }

  /** Ends the worker, then releases the lock (never before: the worker may still be writing). */
  async #stopWorker(): Promise<void> {
    await this.#worker.terminate().catch(() => {});
    this.#lock.release();
  }

  #emit(ev: NodeEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch (err) {
        this.#logger(`event listener threw: ${(err as Error).message}`);
      }
    }
  }
}
