/**
 * A plain-HTTP/1.1 client over `node:net` for peer RPCs, on every runtime:
 * keep-alive connections per origin, one request at a time on each, the
 * request head and body in one write, the response read by a small parser.
 *
 * Why not the runtime's own client: measured on this machine (sequential
 * 200-byte POSTs to a Bun server, CPU of the client process per request /
 * round trip), Node's `node:http` with a keep-alive agent took 200-236 µs
 * of user CPU / 0.35-0.52 ms, Deno's `fetch` 185-214 µs / 0.27-0.36 ms and
 * Bun's `fetch` 281-424 µs / 0.51-0.78 ms, against 62-116 µs / 0.14-0.25 ms
 * for the same requests written on a `node:net` socket. A leader sends one
 * such request per follower per write, so at low load that CPU and that
 * round trip are most of a write's cost (issue 12's trace).
 *
 * Only `http:` URLs: `https:` ones go to the `fallback` client (TLS
 * options, certificates and handshake errors stay with the runtime's own).
 *
 * Responses are parsed with limits (head 64 KiB, body `maxBodyBytes`), by
 * Content-Length, chunked transfer coding or, without either, until the
 * server closes. A malformed response fails that request and closes its
 * connection. Nothing is ever retried: a request on a kept-alive connection
 * the server closed meanwhile fails with "connection closed before an
 * answer", as with `node:http` (the callers resend what matters). Idle
 * connections are closed after `IDLE_CLOSE_MS`, below the servers' idle
 * timeouts (5 s on ours), which keeps that race rare.
 *
 * @module
 */
import * as net from "node:net";
import { TimeoutError } from "../../src/errors.ts";
import type { HttpClient, HttpRequest, HttpResponse } from "../types.ts";
import { explainHttpError } from "./tls-errors.ts";
import { probeTls } from "./tls-probe.ts";

/** Idle keep-alive connections are closed after this long. */
export const IDLE_CLOSE_MS = 2000;
/** Connections per origin at most (more requests wait for one). */
export const CONNECTIONS_PER_ORIGIN_MAX = 64;
/** Longest response head (status line and headers). */
const _HEAD_BYTES_MAX = 64 * 1024;
/** Longest chunk-size line of a chunked body. */
const _CHUNK_LINE_BYTES_MAX = 1024;
/** Default longest response body. */
export const RESPONSE_BODY_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;
/** Request bodies at most this long are copied behind the head for one write; longer ones are written after it (corked). */
const _COPY_BODY_BYTES_MAX = 64 * 1024;

const _TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const _BAD_VALUE = /[\r\n\0]/;
const _CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");
const _CRLF = Buffer.from("\r\n", "latin1");

/** Lets a timer not keep the process alive (Node and Bun: `unref`; Deno: `Deno.unrefTimer`). */
function _unref(t: ReturnType<typeof setTimeout>): void {
  if (typeof t === "number") (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(t);
  else (t as { unref?: () => void }).unref?.();
}

/** A network failure with the code the callers' messages key on (see src/transport/network-error.ts). */
function _netError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A response the parser could not accept. */
class _BadResponse extends Error {
  constructor(reason: string) {
    super(`malformed HTTP response: ${reason}`);
    this.name = "BadResponseError";
  }
}

type _Body =
  | { readonly kind: "none" }
  | { readonly kind: "length"; remaining: number }
  | { readonly kind: "chunked"; state: "size" | "data" | "data-crlf" | "trailers"; remaining: number }
  | { readonly kind: "close" };

interface _Exchange {
  readonly resolve: (r: HttpResponse) => void;
  readonly reject: (e: unknown) => void;
  status: number;
  headers: Record<string, string> | null;
  keepAlive: boolean;
  body: _Body;
  parts: Buffer[];
  bytes: number;
}

/** One connection: at most one exchange at a time. */
class _Conn {
  readonly socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #ex: _Exchange | null = null;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #dead = false;
  readonly #maxBody: number;
  readonly #onGone: (c: _Conn) => void;
  readonly #onFree: (c: _Conn) => void;

  constructor(socket: net.Socket, maxBody: number, onGone: (c: _Conn) => void, onFree: (c: _Conn) => void) {
    this.socket = socket;
    this.#maxBody = maxBody;
    this.#onGone = onGone;
    this.#onFree = onFree;
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.#data(d));
    socket.on("end", () => this.#ended(null));
    socket.on("error", (e: Error) => this.#ended(e));
    socket.on("close", () => this.#ended(null));
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** Sends one request; `wire` is its head (and, if small, its body). */
  send(wire: Buffer, body: Uint8Array | null): Promise<HttpResponse> {
    this.#stopIdleTimer();
    this.socket.ref();
    return new Promise<HttpResponse>((resolve, reject) => {
      this.#ex = { resolve, reject, status: 0, headers: null, keepAlive: true, body: { kind: "none" }, parts: [], bytes: 0 };
      if (body === null) {
        this.socket.write(wire);
      } else {
        this.socket.cork();
        this.socket.write(wire);
        this.socket.write(body);
        this.socket.uncork();
      }
    });
  }

  /** Ends the connection, failing its exchange (if any) with `err`. */
  destroy(err: Error): void {
    this.#fail(err);
  }

  #data(d: Buffer): void {
    if (this.#ex === null) {
      // Bytes no request asked for: the connection cannot be trusted any more.
      this.#fail(new _BadResponse("data arrived with no request outstanding"));
      return;
    }
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    try {
      this.#parse();
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #parse(): void {
    for (;;) {
      const ex = this.#ex;
      if (ex === null) {
        if (this.#buf.length > 0) throw new _BadResponse("more bytes than the response declared");
        return;
      }
      if (ex.headers === null) {
        const end = this.#buf.indexOf(_CRLFCRLF);
        if (end < 0) {
          if (this.#buf.length > _HEAD_BYTES_MAX) throw new _BadResponse(`head longer than ${_HEAD_BYTES_MAX} bytes`);
          return;
        }
        if (end > _HEAD_BYTES_MAX) throw new _BadResponse(`head longer than ${_HEAD_BYTES_MAX} bytes`);
        const text = this.#buf.subarray(0, end).toString("latin1");
        this.#buf = this.#buf.subarray(end + 4);
        this.#head(ex, text);
        if (ex.headers === null) continue; // an interim (1xx) response: the real one follows
        if (ex.body.kind === "none") {
          this.#complete(ex);
          continue;
        }
      }
      if (!this.#body(ex)) return;
      this.#complete(ex);
    }
  }

  /** Parses a response head into `ex` (leaves `ex.headers` null for a 1xx). */
  #head(ex: _Exchange, text: string): void {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: .*)?$/.exec(lines[0]!);
    if (m === null) throw new _BadResponse(`status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new _BadResponse(`header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).toLowerCase();
      if (!_TOKEN.test(name)) throw new _BadResponse(`header name ${JSON.stringify(name.slice(0, 80))}`);
      const value = line.slice(colon + 1).trim();
      const had = headers[name];
      if (had === undefined) headers[name] = value;
      else if (name === "content-length") {
        if (had !== value) throw new _BadResponse("conflicting Content-Length headers");
      } else headers[name] = `${had}, ${value}`;
    }
    if (status < 200) {
      if (status === 101) throw new _BadResponse("101 Switching Protocols was not asked for");
      return;
    }
    ex.status = status;
    ex.headers = headers;
    const connection = (headers["connection"] ?? "").toLowerCase();
    ex.keepAlive = m[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const te = headers["transfer-encoding"];
    const cl = headers["content-length"];
    if (status === 204 || status === 304) {
      ex.body = { kind: "none" };
    } else if (te !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new _BadResponse(`transfer coding ${JSON.stringify(te.slice(0, 80))}`);
      ex.body = { kind: "chunked", state: "size", remaining: 0 };
    } else if (cl !== undefined) {
      if (!/^[0-9]{1,15}$/.test(cl)) throw new _BadResponse(`Content-Length ${JSON.stringify(cl.slice(0, 80))}`);
      const n = Number(cl);
      if (n > this.#maxBody) throw new _BadResponse(`body of ${n} bytes is over the limit of ${this.#maxBody}`);
      ex.body = n === 0 ? { kind: "none" } : { kind: "length", remaining: n };
    } else {
      ex.body = { kind: "close" };
      ex.keepAlive = false;
    }
  }

  /** Takes body bytes from the buffer; returns true once the body is complete. */
  #body(ex: _Exchange): boolean {
    const b = ex.body;
    switch (b.kind) {
      case "none":
        return true;
      case "close":
        this.#take(ex, this.#buf.length);
        return false; // complete only at the end of the connection
      case "length": {
        const n = Math.min(b.remaining, this.#buf.length);
        this.#take(ex, n);
        b.remaining -= n;
        return b.remaining === 0;
      }
      case "chunked":
        for (;;) {
          if (b.state === "size" || b.state === "trailers") {
            const end = this.#buf.indexOf(_CRLF);
            if (end < 0) {
              if (this.#buf.length > _CHUNK_LINE_BYTES_MAX) throw new _BadResponse("chunk line too long");
              return false;
            }
            const line = this.#buf.subarray(0, end).toString("latin1");
            this.#buf = this.#buf.subarray(end + 2);
            if (b.state === "trailers") {
              if (line === "") return true;
              continue;
            }
            const sm = /^([0-9a-fA-F]{1,12})\s*(;.*)?$/.exec(line);
            if (sm === null) throw new _BadResponse(`chunk size ${JSON.stringify(line.slice(0, 40))}`);
            const size = parseInt(sm[1]!, 16);
            if (size === 0) {
              b.state = "trailers";
              continue;
            }
            if (ex.bytes + size > this.#maxBody) throw new _BadResponse(`body over the limit of ${this.#maxBody} bytes`);
            b.remaining = size;
            b.state = "data";
          }
          if (b.state === "data") {
            const n = Math.min(b.remaining, this.#buf.length);
            this.#take(ex, n);
            b.remaining -= n;
            if (b.remaining > 0) return false;
            b.state = "data-crlf";
          }
          if (b.state === "data-crlf") {
            if (this.#buf.length < 2) return false;
            if (this.#buf[0] !== 0x0d || this.#buf[1] !== 0x0a) throw new _BadResponse("chunk not followed by CRLF");
            this.#buf = this.#buf.subarray(2);
            b.state = "size";
          }
        }
    }
  }

  #take(ex: _Exchange, n: number): void {
    if (n === 0) return;
    ex.bytes += n;
    if (ex.bytes > this.#maxBody) throw new _BadResponse(`body over the limit of ${this.#maxBody} bytes`);
    ex.parts.push(this.#buf.subarray(0, n));
    this.#buf = this.#buf.subarray(n);
  }

  #complete(ex: _Exchange): void {
    this.#ex = null;
    const buf = ex.parts.length === 1 ? ex.parts[0]! : Buffer.concat(ex.parts, ex.bytes);
    // A copy when the body is a view into a larger read: the caller may keep it.
    const body = buf.byteLength === buf.buffer.byteLength ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
    ex.resolve({ status: ex.status, headers: ex.headers ?? {}, body });
    if (!ex.keepAlive || this.#buf.length > 0) {
      this.#fail(new _BadResponse(this.#buf.length > 0 ? "more bytes than the response declared" : "connection not kept alive"));
      return;
    }
    this.socket.unref();
    this.#idleTimer = setTimeout(() => this.#fail(new Error("idle")), IDLE_CLOSE_MS);
    _unref(this.#idleTimer);
    this.#onFree(this);
  }

  #ended(err: Error | null): void {
    const ex = this.#ex;
    if (ex !== null && err === null && ex.headers !== null && ex.body.kind === "close") {
      // A body delimited by the end of the connection: complete now.
      ex.keepAlive = false;
      this.#complete(ex);
      return;
    }
    this.#fail(err ?? _netError("connection closed before an answer (ECONNRESET)", "ECONNRESET"));
  }

  #stopIdleTimer(): void {
    if (this.#idleTimer === null) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  #fail(err: Error): void {
    this.#stopIdleTimer();
    const ex = this.#ex;
    this.#ex = null;
    if (!this.#dead) {
      this.#dead = true;
      this.socket.destroy();
      this.#onGone(this);
    }
    ex?.reject(err);
  }
}

interface _Origin {
  readonly host: string;
  readonly port: number;
  readonly idle: _Conn[];
  /** Connections open or opening. */
  count: number;
  readonly waiting: ((c: _Conn | null) => void)[];
}

/** Options of `http1Client`. */
export interface Http1ClientOptions {
  /** Longest response body accepted (default 256 MiB). */
  readonly maxBodyBytes?: number;
  /** Connections per origin at most (default 64). */
  readonly connectionsPerOrigin?: number;
}

/**
 * Creates the client. `fallback` serves every URL that is not `http:`
 * (closed with it); without one such a request is refused.
 */
export function http1Client(fallback: HttpClient | null, opts: Http1ClientOptions = {}): HttpClient {
  const maxBody = opts.maxBodyBytes ?? RESPONSE_BODY_BYTES_MAX_DEFAULT;
  const perOrigin = opts.connectionsPerOrigin ?? CONNECTIONS_PER_ORIGIN_MAX;
  const origins = new Map<string, _Origin>();
  const all = new Set<_Conn>();
  let closed = false;

  const originOf = (host: string, port: number): _Origin => {
    const key = `${host}\u0000${port}`;
    let o = origins.get(key);
    if (o === undefined) {
      o = { host, port, idle: [], count: 0, waiting: [] };
      origins.set(key, o);
    }
    return o;
  };
  const release = (o: _Origin, c: _Conn) => {
    const next = o.waiting.shift();
    if (next !== undefined) next(c);
    else o.idle.push(c);
  };
  /** A connection (open or opening) went: a request waiting for one may open another. */
  const lost = (o: _Origin) => {
    o.count--;
    o.waiting.shift()?.(null);
  };
  const gone = (o: _Origin, c: _Conn) => {
    all.delete(c);
    const i = o.idle.indexOf(c);
    if (i >= 0) o.idle.splice(i, 1);
    lost(o);
  };
  const connect = (o: _Origin): Promise<_Conn> =>
    new Promise<_Conn>((resolve, reject) => {
      o.count++;
      const socket = net.connect({ host: o.host, port: o.port });
      const onError = (e: Error) => {
        lost(o);
        reject(e);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        const c = new _Conn(socket, maxBody, (x) => gone(o, x), (x) => release(o, x));
        all.add(c);
        if (closed) c.destroy(new Error("the client was closed"));
        resolve(c);
      });
    });
  /** A connection of its own for one request: an idle one, a new one, or the next one released. */
  const acquire = async (o: _Origin): Promise<_Conn> => {
    for (;;) {
      const idle = o.idle.pop();
      if (idle !== undefined && !idle.dead) return idle;
      if (idle !== undefined) continue;
      if (o.count < perOrigin) return await connect(o);
      const c = await new Promise<_Conn | null>((r) => o.waiting.push(r));
      if (c !== null && !c.dead) return c;
    }
  };

  return {
    async request(req: HttpRequest): Promise<HttpResponse> {
      if (!req.url.startsWith("http:")) {
        if (fallback === null) throw new Error(`${req.url}: only http: URLs are served by this client`);
        return await fallback.request(req);
      }
      if (closed) throw new Error("the HTTP client was closed");
      const u = new URL(req.url);
      const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
      const port = u.port === "" ? 80 : Number(u.port);
      let head = `${req.method} ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\n`;
      for (const [k, v] of Object.entries(req.headers ?? {})) {
        const name = k.toLowerCase();
        if (!_TOKEN.test(k) || _BAD_VALUE.test(v)) throw new TypeError(`invalid HTTP header ${JSON.stringify(k)}`);
        if (name === "host" || name === "content-length" || name === "transfer-encoding" || name === "connection") continue;
        head += `${k}: ${v}\r\n`;
      }
      const body = req.body ?? null;
      if (body !== null || req.method === "POST" || req.method === "PUT") head += `content-length: ${body?.byteLength ?? 0}\r\n`;
      head += "\r\n";
      const headBytes = Buffer.from(head, "latin1");
      const small = body === null || body.byteLength <= _COPY_BODY_BYTES_MAX;
      const wire = small && body !== null && body.byteLength > 0 ? Buffer.concat([headBytes, body]) : headBytes;
      const o = originOf(host, port);
      const timeout = () => new TimeoutError(`${req.method} ${req.url} got no answer within ${req.timeoutMs} ms`);
      try {
        return await new Promise<HttpResponse>((resolve, reject) => {
          let conn: _Conn | null = null;
          let timedOut = false;
          const timer = setTimeout(() => {
            timedOut = true;
            if (conn !== null) conn.destroy(timeout());
            else reject(timeout());
          }, req.timeoutMs);
          acquire(o).then(
            (c) => {
              if (timedOut) {
                // Given up while waiting for a connection: it goes back to the pool unused.
                release(o, c);
                return;
              }
              conn = c;
              c.send(wire, small ? null : body).then(resolve, reject).finally(() => clearTimeout(timer));
            },
            (e: unknown) => {
              clearTimeout(timer);
              reject(e);
            },
          );
        });
      } catch (e) {
        // A TimeoutError comes back from it unchanged.
        throw await explainHttpError(req.url, e, probeTls);
      }
    },
    close() {
      closed = true;
      for (const c of [...all]) c.destroy(new Error("the HTTP client was closed"));
      for (const o of origins.values()) for (const w of o.waiting.splice(0)) w(null);
      fallback?.close();
    },
  };
}
