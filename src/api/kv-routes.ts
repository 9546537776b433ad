/**
 * The KV store's HTTP routes: `PUT`, `GET`, `DELETE /kv/:key` and
 * `POST /kv/:key/cas`. Writes go through `RaftNodeApi.propose` (a binary
 * command, see src/kv/command.ts); reads are linearizable through
 * `readBarrier()` (§6.4 ReadIndex) unless `?stale` asks for the local copy.
 *
 * Keys are path segments (percent-encode `/` as `%2F`); values are raw
 * bytes. Every failure answers with a status that keeps the client's retry
 * promise (see `failureReply`).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { RaftNodeApi } from "../node/types.ts";
import { encodeCommand } from "../kv/command.ts";
import type { KvCommand } from "../kv/command.ts";
import type { KvResult, KvStateMachine } from "../kv/state-machine.ts";
import { errorReply, failureReply, json, parseJsonObject, readBody } from "./http.ts";
import { checkIdempotencyKey } from "./validate.ts";

/** Size limits of client requests (the state machine itself takes any size up to its encoding's ceilings). */
export interface KvRouteOptions {
  /** Longest key in bytes (UTF-8). Default 1024. */
  readonly keyBytesMax?: number;
  /** Largest value in bytes. Default 1 MiB. */
  readonly valueBytesMax?: number;
  /** A request body must arrive within this (else 408). Default 30 000 ms. */
  readonly bodyTimeoutMs?: number;
}

/** Default key limit: 1 KiB. */
export const KEY_BYTES_MAX_DEFAULT = 1024;
/** Default value limit: 1 MiB. */
export const VALUE_BYTES_MAX_DEFAULT = 1024 * 1024;

const _utf8 = new TextEncoder();
const _utf8Lenient = new TextDecoder();

/** The still-encoded key segment of a `/kv/KEY` or `/kv/KEY/cas` URL. */
function _rawKey(url: string): string {
  const start = url.indexOf("/kv/", url.indexOf("//") + 2);
  if (start < 0) return "";
  let end = url.length;
  for (const stop of ["?", "#"]) {
    const i = url.indexOf(stop, start);
    if (i >= 0 && i < end) end = i;
  }
  let seg = url.slice(start + 4, end);
  if (seg.endsWith("/cas")) seg = seg.slice(0, -4);
  return seg;
}

function _isKvResult(x: unknown): x is KvResult {
  return typeof x === "object" && x !== null && typeof (x as KvResult).index === "number" && typeof (x as KvResult).ok === "boolean";
}

/**
 * Mounts the KV routes on `app`.
 *
 * @param app the member's Hono app (RaftNodeOptions.routes hands it in)
 * @param node the running node
 * @param kv the state machine the node applies to (for reads)
 */
export function kvRoutes(app: Hono, node: RaftNodeApi, kv: KvStateMachine, opts: KvRouteOptions = {}): void {
  const keyBytesMax = opts.keyBytesMax ?? KEY_BYTES_MAX_DEFAULT;
  const valueBytesMax = opts.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;

  const keyOf = (c: Context): string | Response => {
    // From the raw path, decoded strictly: Hono keeps an invalid escape as
    // text, which made `%FF` and `%25FF` the same key.
    const raw = _rawKey(c.req.url);
    let key: string;
    try {
      key = decodeURIComponent(raw);
    } catch {
      return errorReply(400, "The key is not valid percent-encoded UTF-8");
    }
    const n = _utf8.encode(key).length;
    if (n === 0) return errorReply(400, "The key is empty");
    if (n > keyBytesMax) return errorReply(413, `The key is ${n} bytes; the limit is ${keyBytesMax}`);
    return key;
  };

  /** Proposes `cmd` and answers with `reply(result)`, or with the failure. */
  const write = async (c: Context, cmd: KvCommand, reply: (r: KvResult) => Response): Promise<Response> => {
    let result: unknown;
    try {
      result = await node.propose(encodeCommand(cmd));
    } catch (err) {
      return failureReply(c, err, "write");
    }
    if (!_isKvResult(result)) return errorReply(500, `Internal error: the state machine answered ${JSON.stringify(result)}`, { outcome: "unknown" });
    if (result.error !== null) return errorReply(400, result.error);
    if (result.keyReused === true) {
      return errorReply(422, `The Idempotency-Key was first used at index ${result.index} for a different request; nothing was applied. Use a new key for a new request`, { outcome: "not-applied" });
    }
    const res = reply(result);
    if (result.duplicate) res.headers.set("idempotent-replayed", "true");
    return res;
  };

  const idempotencyOf = (c: Context): string | null | Response => {
    const idem = checkIdempotencyKey(c.req.header("idempotency-key"));
    return idem.ok ? idem.value : errorReply(400, idem.error);
  };

  app.put("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const idem = idempotencyOf(c);
    if (idem instanceof Response) return idem;
    const body = await readBody(c.req.raw, valueBytesMax, "value", opts.bodyTimeoutMs);
    if (!body.ok) return body.reply;
    return write(c, { op: "put", key, value: body.bytes, idempotencyKey: idem }, (r) => json({ index: r.index }));
  });

  app.delete("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const idem = idempotencyOf(c);
    if (idem instanceof Response) return idem;
    return write(c, { op: "del", key, idempotencyKey: idem }, (r) => json({ index: r.index }));
  });

  app.get("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    if (c.req.query("stale") === undefined) {
      try {
        await node.readBarrier();
      } catch (err) {
        return failureReply(c, err, "read");
      }
    }
    const value = kv.get(key);
    if (value === undefined) return errorReply(404, `Key ${JSON.stringify(key)} not found`);
    return new Response(value as Uint8Array<ArrayBuffer>, { status: 200, headers: { "content-type": "application/octet-stream" } });
  });

  app.post("/kv/:key/cas", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const idem = idempotencyOf(c);
    if (idem instanceof Response) return idem;
    // JSON escapes can take 6 bytes per byte of value; the decoded sizes are checked below.
    const body = await readBody(c.req.raw, 12 * valueBytesMax + 4096, "CAS request", opts.bodyTimeoutMs);
    if (!body.ok) return body.reply;
    const parsed = parseJsonObject(body.bytes, "CAS request");
    if (!parsed.ok) return parsed.reply;
    const { expect, value } = parsed.value;
    if (expect !== null && typeof expect !== "string") return errorReply(400, 'The CAS request needs "expect": a string, or null for "the key is absent"');
    if (typeof value !== "string") return errorReply(400, 'The CAS request needs "value": a string');
    const expectBytes = expect === null ? null : _utf8.encode(expect);
    const valueBytes = _utf8.encode(value);
    if (valueBytes.length > valueBytesMax || (expectBytes?.length ?? 0) > valueBytesMax) {
      return errorReply(413, `The CAS value is larger than the limit of ${valueBytesMax} bytes`);
    }
    return write(
      c,
      { op: "cas", key, expect: expectBytes, value: valueBytes, idempotencyKey: idem },
      (r) => r.ok ? json({ ok: true, index: r.index }) : json({ ok: false, current: r.current === null ? null : _utf8Lenient.decode(r.current) }, 409),
    );
  });

  const noKey = () => errorReply(400, "The key is missing: use /kv/KEY");
  app.all("/kv", noKey);
  app.all("/kv/", noKey);
  app.all("/kv/:key", (c) => errorReply(405, `${c.req.method} is not supported on /kv/KEY (use GET, PUT or DELETE)`, {}, { allow: "GET, PUT, DELETE" }));
  app.all("/kv/:key/cas", () => errorReply(405, "Use POST for /kv/KEY/cas", {}, { allow: "POST" }));
}
