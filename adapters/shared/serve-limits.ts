/**
 * Connection limits and timeouts of the member's HTTP servers, shared by the
 * three adapters (each applies what its server supports, in one function of
 * its own next to its `serve`):
 *
 * - `maxConnections`: held at once at most, by default the process's open
 *   file limit minus a reserve for the log, snapshots and peer clients, so
 *   that idle connections can never take the descriptors the storage layer
 *   needs (an `open` failing with EMFILE would stop the member). Node, plain
 *   HTTP: a connection past it is answered 503 without its request being
 *   read, and closed (`capConnections`); over TLS, `server.maxConnections`
 *   (closed at once: a TLS handshake per refusal would cost more than the
 *   refusal saves).
 * - `headersTimeoutMs`: a connection that has not sent a whole request head
 *   by then is closed (slowloris). Node: `headersTimeout`, checked every
 *   second rather than every 30 s. Bun: `idleTimeout` (any inactivity).
 * - `requestTimeoutMs`: the whole request, body included, must arrive by
 *   then (a `Content-Length` that promises more than is sent). Node:
 *   `requestTimeout`; elsewhere the body readers enforce it.
 * - `idleTimeoutMs`: a kept-alive connection with no request is closed.
 *   Node: `keepAliveTimeout`.
 *
 * The runtimes raise the soft open-file limit to the hard one at start by
 * themselves (Node, Deno and Bun all do, measured on Linux), so the limit
 * read here is the hard one unless an operator lowered both.
 *
 * @module
 */
import * as fs from "node:fs";
import type * as net from "node:net";

/** How a server limits its connections (see the module doc). */
export interface ServeLimits {
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Descriptors kept free for the log, snapshots, the state files and outgoing peer connections. */
export const RESERVED_FILES = 256;
/** Defaults of the timeouts. */
export const HEADERS_TIMEOUT_MS_DEFAULT = 10_000;
export const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
export const IDLE_TIMEOUT_MS_DEFAULT = 5_000;
/** Used when the open-file limit cannot be read (not Linux). */
const _MAX_CONNECTIONS_FALLBACK = 4096;

/** The soft limit on open files of this process (Linux `/proc/self/limits`), or null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === undefined || soft === "unlimited") return null;
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Descriptors this process holds now (Linux `/proc/self/fd`): Infinity when
 * none is left even to count them, null where they cannot be counted.
 */
export function openFileCount(): number | null {
  try {
    return fs.readdirSync("/proc/self/fd").length;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return code === "EMFILE" || code === "ENFILE" ? Infinity : null;
  }
}

/**
 * The limits to serve with: `given` over the defaults. `servers` is how many
 * servers share the process's descriptors (a client listener beside the
 * peer one): each gets its share of what the reserve leaves.
 */
export function serveLimits(given: Partial<ServeLimits> = {}, servers = 1): ServeLimits {
  const limit = openFileLimit();
  const share = limit === null ? _MAX_CONNECTIONS_FALLBACK : Math.floor((limit - RESERVED_FILES) / Math.max(1, servers));
  return {
    maxConnections: given.maxConnections ?? Math.max(16, share),
    headersTimeoutMs: given.headersTimeoutMs ?? HEADERS_TIMEOUT_MS_DEFAULT,
    requestTimeoutMs: given.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT,
    idleTimeoutMs: given.idleTimeoutMs ?? IDLE_TIMEOUT_MS_DEFAULT,
  };
}

/**
 * `node:http` / `node:https` `createServer` options for `limits` (Node, and
 * the `node:https` server Deno and Bun use for mutual TLS).
 */
export function nodeServerOptions(limits: ServeLimits): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  return {
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // Timeouts are enforced when connections are checked: every second, not every 30 s.
    connectionsCheckingInterval: 1000,
  };
}

/**
 * Connections the kernel may hold for a `node:http`/`node:https` server
 * before it accepts them. Node's default is 511: under a flood of new
 * connections the rest have their handshakes dropped and retried by the
 * client for up to a minute (measured: 600 of 10,000 got no answer in 60 s).
 * The kernel caps it at net.core.somaxconn.
 */
const _LISTEN_BACKLOG = 8192;

/** The answer to a connection past the cap: its request was never read, so nothing was applied. */
const _OVER_CAP = (() => {
  const body = '{"error":"This member holds as many connections as it may; nothing was applied, retry shortly","outcome":"not-applied"}\n';
  return `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`;
})();
/** Connections past the cap being answered at once, at most: each holds a descriptor of the reserve until it goes. */
const _OVER_CAP_ANSWERING = RESERVED_FILES / 4;
/** How long a connection past the cap may take to go after its answer. */
const _OVER_CAP_LINGER_MS = 1000;

/**
 * Caps the connections a plain `node:http` server holds at `max`. Node's own
 * `maxConnections` closes a connection past it at once, and a client sees
 * its request end with no answer (measured: 128 of a 10,000-connection flood
 * against a cap of 9,872). Here such a connection is answered 503 with
 * `Retry-After` before its request is read (so nothing was applied), the
 * server half-closes it, reads and drops what the client still sends (a
 * close with unread bytes would reset the connection and the answer with it),
 * and closes it when the client does or after a second. At most
 * `_OVER_CAP_ANSWERING` are being answered at once; past that they are
 * closed at once, as by `maxConnections`.
 *
 * The server's own connection listener (which starts the HTTP parser) is
 * taken off the `connection` event and called for the connections within
 * the cap; a server with any other number of connection listeners (not
 * Node's) gets `maxConnections` instead.
 */
export function capConnections(server: net.Server, max: number): void {
  const listeners = server.listeners("connection") as ((socket: net.Socket) => void)[];
  if (listeners.length !== 1) {
    server.maxConnections = max;
    return;
  }
  const serve = listeners[0]!;
  server.removeListener("connection", serve);
  let held = 0;
  let answering = 0;
  server.on("connection", (socket: net.Socket) => {
    if (held < max) {
      held++;
      socket.once("close", () => held--);
      serve.call(server, socket);
      return;
    }
    if (answering >= _OVER_CAP_ANSWERING) return void socket.destroy();
    answering++;
    socket.once("close", () => answering--);
    socket.on("error", () => socket.destroy());
    socket.setTimeout(_OVER_CAP_LINGER_MS, () => socket.destroy());
    socket.resume();
    socket.end(_OVER_CAP);
  });
}

/**
 * Starts a `node:http` / `node:https` server (Node's, and the `node:https`
 * one Deno and Bun use for mutual TLS) on `host:port` with the connection
 * cap and backlog of `limits`; resolves once it listens. Past the cap, a
 * plain HTTP connection is answered 503 (`capConnections`) and a TLS one
 * closed at once, so descriptors stay free for the log and the peers; an
 * accept that fails afterwards (EMFILE) is emitted as an `error` the server
 * survives, so it is taken here rather than left unhandled.
 */
export function listenNodeServer(server: net.Server, host: string, port: number, limits: ServeLimits, tls = false): Promise<void> {
  if (tls) server.maxConnections = limits.maxConnections;
  else capConnections(server, limits.maxConnections);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, backlog: Math.min(_LISTEN_BACKLOG, limits.maxConnections) }, () => {
      server.off("error", reject);
      server.on("error", () => {});
      resolve();
    });
  });
}

/** Stops a server started by `listenNodeServer`: stops listening and closes every connection, idle or not. */
export function closeNodeServer(server: net.Server & { closeAllConnections(): void }): Promise<void> {
  return new Promise<void>((done) => {
    server.close(() => done());
    server.closeAllConnections();
  });
}
