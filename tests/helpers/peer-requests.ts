/**
 * Hostile peer requests for tests against real members: bodies the codec
 * would refuse to encode (terms past the limit, ids that are not member ids)
 * built by patching valid encodings, and requests signed (or not) as any
 * sender, sent over a real connection.
 *
 * @module
 */
import * as net from "node:net";
import type { Message } from "../../src/raft/types.ts";
import { NonceSource, signRequest } from "../../src/transport/auth.ts";
import { encodeMessages } from "../../src/transport/codec.ts";

const _nonces = new NonceSource();

/** A heartbeat body whose message term is `term` (any u64, 2^53 - 1 included): the term is patched in after encoding. */
export function heartbeatWithTerm(from: string, to: string, term: number): Uint8Array {
  const body = encodeMessages([{ type: "MsgHeartbeat", from, to, term: 1, leaderCommit: 0, readContext: 0 }]);
  const at = 8 + 1 + 2 + new TextEncoder().encode(from).length + 2 + new TextEncoder().encode(to).length;
  const v = new DataView(body.buffer);
  v.setUint32(at, term % 0x1_0000_0000, true);
  v.setUint32(at + 4, Math.floor(term / 0x1_0000_0000), true);
  return body;
}

/** Who signs a request: the cluster secret, some other key (a client's token), or nobody. */
export interface Signer {
  readonly clusterId: string;
  readonly secret: Uint8Array | null;
  readonly from: string;
  readonly to: string;
  /** Stamp the request with this wall-clock time (default now). */
  readonly nowMs?: number;
}

/** Headers of a request signed as `s` (without a secret: only cluster, from, to). */
export function peerHeaders(s: Signer, path: string, body: Uint8Array): Record<string, string> {
  return {
    ...signRequest({ secret: s.secret, clusterId: s.clusterId, from: s.from, to: s.to, method: "POST", path, body, nowMs: s.nowMs ?? Date.now(), nonce: _nonces.next() }),
    "content-type": "application/octet-stream",
  };
}

/** POSTs `body` to `base + path` with `headers`; resolves with the status and text. */
export async function post(base: string, path: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(base + path, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

/** POSTs messages signed as `s`. */
export function postMessages(base: string, s: Signer, msgs: readonly Message[] | Uint8Array): Promise<{ status: number; text: string }> {
  const body = msgs instanceof Uint8Array ? msgs : encodeMessages(msgs);
  return post(base, "/raft/v1/messages", body, peerHeaders(s, "/raft/v1/messages", body));
}

/**
 * Sends a request head that declares `declaredBytes` of body but sends only
 * `sentBytes` of it, and waits for an answer (or the connection closing)
 * without sending the rest. Resolves with the status (null: closed with no
 * answer) and how long it took. An answer that waited for the whole body
 * would never come: the test's deadline says so. Written on a raw socket
 * (an HTTP client library may hold the head back until the body is complete).
 */
export function postPartial(base: string, path: string, headers: Record<string, string>, declaredBytes: number, sentBytes: number, timeoutMs = 10_000, method = "POST"): Promise<{ status: number | null; ms: number }> {
  const u = new URL(base + path);
  const t0 = performance.now();
  const head = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, `Content-Length: ${declaredBytes}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname);
    let buf = "";
    let settled = false;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to a ${declaredBytes}-byte request within ${timeoutMs} ms after ${sentBytes} bytes were sent`));
    }, timeoutMs);
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      resolve({ status: m === null ? null : Number(m[1]), ms: performance.now() - t0 });
    };
    s.on("connect", () => {
      s.write(head);
      s.write(new Uint8Array(sentBytes));
    });
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (/^HTTP\/1\.[01] \d{3}/.test(buf)) done();
    });
    s.on("error", done);
    s.on("close", done);
  });
}
