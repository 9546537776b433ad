/**
 * Worker threads through the Web Worker API, shared by Deno and Bun.
 *
 * A module worker may still be awaiting its imports when the parent's first
 * message lands, and Bun then drops the message (measured). So the parent
 * holds its messages until the worker says it listens (`_READY`), and the
 * worker buffers what arrives before its code attaches a listener.
 *
 * @module
 */
import type { WorkerHandle, WorkerPort } from "../types.ts";

// Minimal shapes of the Web Worker globals (not in the Node type library).
interface WebWorker {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
  onerror: ((ev: ErrorEvent) => void) | null;
  terminate(): void;
}
declare const Worker: new (url: string | URL, options?: { type?: "module" }) => WebWorker;

/** Starts a module worker running `moduleUrl`. */
export function startWebWorker(moduleUrl: URL): WorkerHandle {
  const worker = new Worker(moduleUrl, { type: "module" });
  const onMessage: ((m: unknown) => void)[] = [];
  const onError: ((e: Error) => void)[] = [];
  let terminated = false;
  let failed = false;
  let held: [unknown, ArrayBuffer[] | undefined][] | null = [];
  const post = (message: unknown, transfer: ArrayBuffer[] | undefined) => {
    // Bun drops a message posted with an empty transfer list (measured): pass one only when non-empty.
    if (transfer !== undefined && transfer.length > 0) worker.postMessage(message, transfer);
    else worker.postMessage(message);
  };
  worker.onmessage = (ev) => {
    if (held !== null && ev.data === _READY) {
      for (const [m, t] of held) post(m, t);
      held = null;
      return;
    }
    for (const l of onMessage) l(ev.data);
  };
  worker.onerror = (ev) => {
    ev.preventDefault?.();
    if (terminated || failed) return;
    failed = true;
    const err = ev.error instanceof Error ? ev.error : new Error(`Worker failed: ${ev.message}`);
    for (const l of onError) l(err);
  };
  return {
    postMessage(message, transfer) {
      if (held !== null) held.push([message, transfer]);
      else post(message, transfer);
    },
    onMessage(listener) {
      onMessage.push(listener);
    },
    onError(listener) {
      onError.push(listener);
    },
    terminate() {
      terminated = true;
      worker.terminate();
      return Promise.resolve();
    },
  };
}

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}

let _port: WorkerPort | null | undefined;

/** The worker's first message: its port listens, the parent may send. */
const _READY = "__raft_worker_ready__";

/**
 * Inside a Web Worker: the port to the parent (buffering early messages);
 * null on the main thread. `isWorker` comes from the runtime, which knows
 * best (Bun has no `WorkerGlobalScope` global, measured).
 */
export function webWorkerPort(isWorker: boolean): WorkerPort | null {
  if (_port !== undefined) return _port;
  if (!isWorker) {
    _port = null;
    return null;
  }
  const scope = (globalThis as unknown as { self: WorkerScope }).self;
  const buffered: unknown[] = [];
  let listener: ((m: unknown) => void) | null = null;
  scope.onmessage = (ev) => {
    if (listener === null) buffered.push(ev.data);
    else listener(ev.data);
  };
  scope.postMessage(_READY);
  _port = {
    postMessage(message, transfer) {
      if (transfer !== undefined && transfer.length > 0) scope.postMessage(message, transfer);
      else scope.postMessage(message);
    },
    onMessage(l) {
      listener = l;
      for (const m of buffered.splice(0)) l(m);
    },
  };
  return _port;
}
