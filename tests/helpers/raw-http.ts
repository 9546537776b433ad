/**
 * HTTP at the socket level, for tests that send what no well-behaved client
 * would: raw bytes in a request line, HTTP/1.0 without `Host`, bodies that
 * stop short of their `Content-Length`, floods of idle connections.
 *
 * @module
 */
import * as net from "node:net";

/** Sends `request` as is on a new connection; resolves with the status of the answer (null: closed without one). */
export function rawRequest(port: number, request: Uint8Array | string, timeoutMs = 10_000): Promise<{ status: number | null; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(String(request).slice(0, 80))}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      resolve({ status: m === null ? null : Number(m[1]), text: buf });
    };
    s.on("connect", () => s.write(request));
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      // One answer is enough: stop at the end of its head (and a short body, if any).
      if (/\r\n\r\n/.test(buf)) setTimeout(finish, 20);
    });
    s.on("error", finish);
    s.on("close", finish);
  });
}

/**
 * Sends `request` on a new kept-alive connection, reads its answer, then
 * sends nothing more: resolves with the status and how long after the answer
 * the server closed the connection (null: still open after `waitMs`).
 */
export function requestThenIdle(port: number, request: string, waitMs: number): Promise<{ status: number | null; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = "";
    let answeredAt: number | null = null;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      resolve({ status: m === null ? null : Number(m[1]), closedAfterMs: closed && answeredAt !== null ? performance.now() - answeredAt : null });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on("connect", () => s.write(request));
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (answeredAt === null && /\r\n\r\n/.test(buf)) answeredAt = performance.now();
    });
    s.on("error", () => finish(true));
    s.on("close", () => finish(true));
  });
}

/** Idle connections held open until `close()`: how many the server accepted and how many it has closed since. */
export class IdleConnections {
  readonly #sockets: net.Socket[] = [];
  connected = 0;
  /** Attempts that never connected. */
  refused = 0;
  /** Connections the server closed (after connecting, or instead of). */
  closedByServer = 0;
  #closing = false;

  /** Opens `n` connections to `port` that send nothing (or, `partial`, a request head that never ends). */
  static async open(port: number, n: number, partial = false): Promise<IdleConnections> {
    const c = new IdleConnections();
    for (let i = 0; i < n; i++) {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => {
        c.connected++;
        if (partial) s.write("GET /status HTTP/1.1\r\nHost: x\r\n");
      });
      let up = false;
      s.once("connect", () => (up = true));
      s.on("error", () => {
        if (!up) c.refused++;
      });
      s.on("close", () => {
        if (!c.#closing) c.closedByServer++;
      });
      s.on("data", () => {});
      c.#sockets.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
    }
    return c;
  }

  close(): void {
    this.#closing = true;
    for (const s of this.#sockets) s.destroy();
  }
}
