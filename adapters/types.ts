/**
 * The one interface every runtime adapter implements: the few things that
 * differ between Node, Deno and Bun. Everything else (files through
 * `node:fs`, hashing, encoding) is shared code in `src/`.
 *
 * Runtime-neutral code receives a `RuntimeAdapter` and never imports a
 * runtime itself (the Hono pattern: small functions handed in).
 *
 * @module
 */
import type { Hono } from "hono";

/** An exclusive, OS-level lock on a data directory; released by the OS if the process dies. */
export interface DirLock {
  /** The locked directory (absolute path). */
  readonly dir: string;
  /** Releases the lock. Idempotent. */
  release(): void;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The port actually bound (useful when 0 was asked for). */
  readonly port: number;
  /** Stops accepting, drops idle keep-alive connections, resolves when closed. */
  close(): Promise<void>;
}

/** One HTTP request made by a peer client. */
export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Absolute URL. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Abort and reject with a timeout error after this long. */
  readonly timeoutMs: number;
}

/** A complete HTTP response with its body read into memory. */
export interface HttpResponse {
  readonly status: number;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * A client for peer RPCs: keep-alive connections, many requests in flight
 * per peer, per-request timeout, binary bodies.
 */
export interface HttpClient {
  /** Rejects with `HttpTimeoutError` after `timeoutMs`, or with the network error. */
  request(req: HttpRequest): Promise<HttpResponse>;
  /** Closes pooled connections. */
  close(): void;
}

/** A worker thread running one module, with message passing. */
export interface WorkerHandle {
  /** Sends a message; buffers listed in `transfer` are moved, not copied. */
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called once if the worker dies (uncaught error or exit) before `terminate`. */
  onError(listener: (error: Error) => void): void;
  terminate(): Promise<void>;
}

/** The worker side of a `WorkerHandle`: how code inside the worker talks to its parent. */
export interface WorkerPort {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  onMessage(listener: (message: unknown) => void): void;
}

/** Everything runtime-specific the rest of the module needs. */
export interface RuntimeAdapter {
  /** "node", "deno" or "bun": for logs and status only, never for branching outside adapters/. */
  readonly name: "node" | "deno" | "bun";
  /**
   * Takes an exclusive lock on `dir` (created if missing), writing this
   * process's pid into `dir/LOCK`. Fails at once with `LockedError` if another
   * process holds it; never waits.
   */
  lockDir(dir: string): DirLock;
  /** Serves `app` on host:port (port 0: any free port). */
  serve(app: Hono, host: string, port: number): Promise<HttpServer>;
  /** A new pooled client for peer RPCs. */
  httpClient(): HttpClient;
  /**
   * Starts a worker thread running the module at `moduleUrl` (a `.ts` file
   * is fine: the worker loads TypeScript as the main thread does). Start-up
   * data travels as the first message.
   */
  startWorker(moduleUrl: URL): WorkerHandle;
  /**
   * Inside a worker: the port to the parent, buffering messages that arrive
   * before a listener is attached; null on the main thread.
   */
  workerPort(): WorkerPort | null;
}
