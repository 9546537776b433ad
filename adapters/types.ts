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
import type { ServeLimits } from "./shared/serve-limits.ts";

export type { ServeLimits } from "./shared/serve-limits.ts";

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

/**
 * What a TLS client trusts and presents, as PEM text. Without `ca` the
 * runtime's default roots are trusted.
 */
export interface TlsClientOptions {
  /**
   * CA certificates (PEM, one or more) that server certificates must chain
   * to. Node and Bun trust only these; Deno's `Deno.createHttpClient` adds
   * them to its default roots (its API has no way to replace them).
   */
  readonly ca?: string;
  /** A client certificate (chain) to present when the server asks: mutual TLS. Needs `key`. */
  readonly cert?: string;
  readonly key?: string;
  /** Accept any server certificate: for tests only. */
  readonly insecureSkipVerify?: boolean;
}

/** A TLS server's certificate and, for mutual TLS, the CA its clients' certificates must chain to. */
export interface TlsServerOptions {
  readonly cert: string;
  readonly key: string;
  /**
   * Ask every client for a certificate and verify it against these CA
   * certificates. The handshake does not fail without one: each request
   * carries the outcome as `TlsEnv.tlsPeer`, and the app decides.
   */
  readonly ca?: string;
  /** Called with the client's address and a one-line reason when a handshake fails, where the runtime reports it. */
  readonly onHandshakeError?: (remote: string, reason: string) => void;
}

/** What a request's TLS connection proved about its client (mutual TLS). */
export interface TlsPeer {
  /** A client certificate was presented and chains to the server's `ca`. */
  readonly verified: boolean;
  /** When not verified: "no client certificate", or why it was refused. */
  readonly error: string | null;
  /** The client certificate's subject (e.g. "CN=n2"), when one was presented and the runtime reports it. */
  readonly subject: string | null;
  /** The client's address. */
  readonly remote: string;
}

/** The `env` a TLS server hands to `app.fetch`: `tlsPeer` is null when no client certificates are asked for. */
export interface TlsEnv {
  readonly tlsPeer: TlsPeer | null;
}

/** What a TLS server serves: anything with a fetch handler (a Hono app, or a gate in front of one). */
export interface TlsApp {
  fetch(req: Request, env: TlsEnv): Response | Promise<Response>;
}

/** A running HTTPS server. */
export interface TlsHttpServer extends HttpServer {
  /**
   * Replaces the certificate (and CA) for new connections; connections
   * already open keep theirs (as etcd does). Where the runtime cannot swap
   * them in place, the listener is re-opened on the same port, so a
   * connection attempt in that instant may be refused (and retried).
   */
  setTls(tls: TlsServerOptions): Promise<void>;
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
  /** The runtime's own version (e.g. "20.11.1", "2.1.4", "1.1.38"), for `/metrics` (`raft_build_info`). */
  readonly version: string;
  /**
   * Takes an exclusive lock on `dir` (created if missing), writing this
   * process's pid into `dir/LOCK`. Fails at once with `LockedError` if another
   * process holds it; never waits.
   */
  lockDir(dir: string): DirLock;
  /**
   * Serves `app` on host:port (port 0: any free port), within `limits`
   * (connection cap and timeouts, see adapters/shared/serve-limits.ts; the
   * defaults when omitted).
   */
  serve(app: Hono, host: string, port: number, limits?: ServeLimits): Promise<HttpServer>;
  /**
   * Serves `app` over HTTPS on host:port, within `limits` as `serve`. With
   * `tls.ca`, clients are asked for certificates and each request's
   * `env.tlsPeer` says what was proved.
   */
  serveTls(app: TlsApp, host: string, port: number, tls: TlsServerOptions, limits?: ServeLimits): Promise<TlsHttpServer>;
  /**
   * A new pooled client for peer RPCs; with `tls`, `https://` URLs trust and
   * present what it says. Failed TLS handshakes reject with `TlsError`.
   */
  httpClient(tls?: TlsClientOptions): HttpClient;
  /**
   * Whether host:port completes a TLS handshake (its certificate is not
   * checked): how a client that got no HTTP answer tells that the member
   * speaks HTTPS.
   */
  speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean>;
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
  /**
   * The machine's monotonic clock (Linux `CLOCK_MONOTONIC`) in nanoseconds:
   * the same clock in every process, so the write tracer
   * (src/node/write-trace.ts) can line up the stages of one write across
   * members. Deno's and Bun's `process.hrtime` count from their own start,
   * so those adapters read it through libc; off the hot path (tracing only).
   */
  monotonicNs(): bigint;
  /**
   * Whether `node:fs`'s asynchronous `write` does its work on the calling
   * thread before it returns (Deno 2.9: `fs.write` and `FileHandle.write`
   * return after the write, an O_DSYNC flush included, 138-145 µs for 150
   * bytes here, while its `fdatasync` runs off the thread, 11 µs to issue).
   * Where true, the log is not opened write-through: a batch is a page-cache
   * write then an `fdatasync`, so the thread sends and serves while the disk
   * flushes (see `SegmentedLogOptions.writeThrough`).
   */
  readonly fileWritesBlock: boolean;
}
