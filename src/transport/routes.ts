/**
 * The Hono routes that serve peer RPCs on a member's port.
 *
 * - `POST /raft/v1/messages`: a batch of messages (AppendEntries, RequestVote,
 *   PreVote, heartbeats, TimeoutNow and their replies) in the binary codec;
 *   204 once handed to the driver. A request with `x-raft-reply: <ms>` (see
 *   reply-slots.ts) is held up to that long: replies the driver sends the
 *   sender meanwhile come back in the response, 200 with a body of messages
 *   (signed with `signReply` when there is a secret); if none come, 204.
 *   Otherwise replies travel as requests the other way, as in etcd. A
 *   MsgSnap here is refused: without its bytes it would install nothing.
 * - InstallSnapshot (§7), streamed one acknowledged chunk per request so
 *   neither side holds a whole snapshot in memory and the sender waits for
 *   each write (backpressure):
 *   - `POST /raft/v1/snapshot/begin?id=ID&bytes=N` with the encoded MsgSnap
 *     as body, N the snapshot's size: the receiver opens (or resumes)
 *     transfer ID and answers 200 with the offset it already holds in
 *     `x-raft-snapshot-offset` (or refuses: 403/409/410 from a sender that
 *     may not send it, 503 while another transfer runs, 507 without room);
 *   - `POST /raft/v1/snapshot/chunk?id=ID&offset=N`: bytes [N, N + length);
 *     200 with the new offset, or 409 with the offset it holds when N is not
 *     it (the sender resumes from there), 404 if the transfer is unknown;
 *   - `POST /raft/v1/snapshot/finish?id=ID&offset=N` (N = total bytes): the
 *     receiver installs the snapshot and steps the MsgSnap; 204.
 *
 * Every request is refused as early as it can be, and before its body is
 * read whenever the headers suffice: the cluster id (403), the sender and
 * receiver ids and with a secret the timestamp, nonce and signature format
 * (400/401/421, `checkRequestHead`), the sender's membership (403 for a
 * stranger, 410 for a removed member: `admitSender`) and a declared
 * Content-Length over the limit (413). Only then is the body read, under the
 * limit, and its signature checked (401), then decoded (400). None of the
 * refused requests reaches the driver; refusals made before the body was
 * read close the connection, so its unread bytes cost nothing. Reasons are
 * escaped before they reach a log (`forLog`), and a 500 names no file path.
 *
 * @module
 */
import { Hono } from "hono";
import { InvalidArgumentError, RefusedError } from "../errors.ts";
import type { Message, MsgSnap, NodeId } from "../raft/types.ts";
import {
  checkRequestHead,
  CLOCK_SKEW_MS_MAX_DEFAULT,
  REPLAY_CACHE_ENTRIES_MAX_DEFAULT,
  ReplayCache,
  signReply,
  verifyRequestBody,
} from "./auth.ts";
import { CodecError, decodeMessages, encodeMessages } from "./codec.ts";
import { expectsReply, HEADER_REPLY_WAIT, parseReplyWait, type ReplySlots } from "./reply-slots.ts";
import { readBodyLimited } from "./read-body.ts";
import { forLog, redactPaths } from "./sanitize.ts";

/** Path of the message batch route. */
export const MESSAGES_PATH = "/raft/v1/messages";
/** Path of the route opening or resuming a snapshot transfer. */
export const SNAPSHOT_BEGIN_PATH = "/raft/v1/snapshot/begin";
/** Path of the route receiving one snapshot chunk. */
export const SNAPSHOT_CHUNK_PATH = "/raft/v1/snapshot/chunk";
/** Path of the route completing a snapshot transfer. */
export const SNAPSHOT_FINISH_PATH = "/raft/v1/snapshot/finish";
/** Response header with the number of snapshot bytes the receiver holds. */
export const HEADER_SNAPSHOT_OFFSET = "x-raft-snapshot-offset";

/**
 * Default largest message batch body: twice the 4 MiB batches peers send
 * (a single larger entry travels alone; `RaftNode` refuses proposals that
 * would not fit).
 */
export const MAX_BODY_BYTES_DEFAULT = 8 * 1024 * 1024;
/** Largest snapshot begin body (one MsgSnap with its membership). */
const _SNAPSHOT_BEGIN_BYTES_MAX = 1024 * 1024;
/** Default largest snapshot chunk body. */
export const MAX_SNAPSHOT_CHUNK_BYTES_DEFAULT = 4 * 1024 * 1024;

/** A snapshot transfer id: safe to use in a file name. */
export const SNAPSHOT_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Where received snapshot bytes go; implemented by the driver, which writes
 * them to a temporary file in the data directory. Transfers are keyed by
 * (sender, snapshot id). The routes call at most one method at a time per
 * transfer and `write` only at the offset `receivedOffset` reports.
 */
export interface SnapshotSink {
  /**
   * Opens transfer `snapshotId` from `from` for the snapshot `msg` describes,
   * `totalBytes` long, or resumes it if the sink already holds a prefix of
   * it. The sink may drop other unfinished transfers.
   *
   * @returns The number of bytes already held (0 for a new transfer).
   * @throws {RefusedError} To refuse the transfer with its status; anything else is answered 500.
   */
  begin(from: NodeId, snapshotId: string, msg: MsgSnap, totalBytes: number): Promise<number>;
  /** Bytes held for the transfer, or null if it is unknown (never begun, finished or dropped). */
  receivedOffset(from: NodeId, snapshotId: string): number | null;
  /**
   * Appends `chunk` at `offset` (always the current `receivedOffset`).
   * Resolves once written; the sender waits for that before the next chunk.
   */
  write(from: NodeId, snapshotId: string, offset: number, chunk: Uint8Array): Promise<void>;
  /**
   * All `totalBytes` have arrived: make the snapshot durable, install it and
   * step the MsgSnap given to `begin` into the core. Resolves when done.
   */
  finish(from: NodeId, snapshotId: string, totalBytes: number): Promise<void>;
}

/** A request the routes refused, for logs and metrics. */
export interface RefusedRequest {
  readonly status: number;
  readonly reason: string;
  readonly path: string;
  /** The sender if it was authenticated, else null. */
  readonly from: NodeId | null;
}

/** Options of `peerRoutes`. */
export interface PeerRoutesOptions {
  readonly clusterId: string;
  /** This member's id: requests and messages addressed to another member are refused. */
  readonly nodeId: NodeId;
  /** Cluster secret for HMAC-SHA-256, or null to check only the cluster id. */
  readonly secret: Uint8Array | null;
  /** Largest message batch body; larger ones get 413. */
  readonly maxBodyBytes: number;
  /** Largest snapshot chunk; larger ones get 413. Default `MAX_SNAPSHOT_CHUNK_BYTES_DEFAULT`. */
  readonly maxSnapshotChunkBytes?: number;
  /** How far a signed request's timestamp may be from this clock. Default 30 s. */
  readonly clockSkewMsMax?: number;
  /** Bound of the replay cache. Default 100,000 nonces. */
  readonly replayCacheEntriesMax?: number;
  /** Wall clock in ms (injected for tests). Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Receives every accepted batch, synchronously, in arrival order. Every
   * message's `from` is the authenticated sender and `to` this member.
   */
  onMessages(from: NodeId, msgs: Message[]): void;
  readonly snapshotSink: SnapshotSink;
  /** Told about every refused request (bad auth, bad body, sink failures). */
  readonly onRefused?: (refused: RefusedRequest) => void;
  /**
   * Whether `from` may send to this member at all (called before the body
   * is read, with the id the request claims; with a secret the signature
   * checked after proves it): null to go on, or the refusal (403 for an id
   * outside the membership, 410 for a removed member). Default: everyone.
   */
  readonly admitSender?: (from: NodeId) => { readonly status: number; readonly reason: string } | null;
  /** Wall-clock ms when this process started: signed requests stamped before it are refused. Default: when `peerRoutes` is called. */
  readonly startedAtMs?: number;
  /**
   * Where the transport puts replies for held responses (the same object
   * the transport's `take` uses). Without it `x-raft-reply` is ignored and
   * every batch is answered 204 at once.
   */
  readonly replySlots?: ReplySlots;
}

/** A non-negative safe integer from a query parameter, or null. */
function _parseOffset(raw: string | undefined): number | null {
  if (raw === undefined || !/^[0-9]{1,16}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Builds the Hono app serving peer RPCs; mount it on the member's server
 * (`app.route("/", peerRoutes(...))`).
 *
 * @returns A Hono app with the routes listed in this module's doc.
 * @throws {InvalidArgumentError} On invalid limits or ids.
 * @example
 * ```ts
 * const app = peerRoutes({ clusterId: "c1", nodeId: "n2", secret: null, maxBodyBytes: 1 << 20,
 *   onMessages: (from, msgs) => driver.step(msgs), snapshotSink });
 * const res = await app.request("/raft/v1/messages", { method: "POST", body, headers });
 * ```
 */
export function peerRoutes(opts: PeerRoutesOptions): Hono {
  const maxBodyBytes = opts.maxBodyBytes;
  const maxChunkBytes = opts.maxSnapshotChunkBytes ?? MAX_SNAPSHOT_CHUNK_BYTES_DEFAULT;
  const clockSkewMsMax = opts.clockSkewMsMax ?? CLOCK_SKEW_MS_MAX_DEFAULT;
  const now = opts.now ?? Date.now;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 64) throw new InvalidArgumentError(`maxBodyBytes must be an integer >= 64, got ${maxBodyBytes}`);
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 1) throw new InvalidArgumentError(`maxSnapshotChunkBytes must be a positive integer, got ${maxChunkBytes}`);
  if (opts.clusterId.length === 0 || opts.nodeId.length === 0) throw new InvalidArgumentError("clusterId and nodeId must be non-empty");
  const startedAtMs = opts.startedAtMs ?? now();
  // Stamped before this process started: the cache that knew the nonce may be gone (a replay after a restart).
  const replayCache = opts.secret === null ? null : new ReplayCache(clockSkewMsMax, opts.replayCacheEntriesMax ?? REPLAY_CACHE_ENTRIES_MAX_DEFAULT, startedAtMs - 1);
  /** Transfers with a sink call in progress ("from\0id"): a duplicate request gets 409 instead of a concurrent write. */
  const busy = new Set<string>();

  /** A refusal: reported (escaped) and answered; `close` when the body was left unread. */
  const refuse = (path: string, status: number, reason: string, from: NodeId | null, headers?: Record<string, string>, close = false): Response => {
    opts.onRefused?.({ status, reason: forLog(reason), path: forLog(path), from });
    const text = status >= 500 ? redactPaths(reason) : reason;
    return new Response(text, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...(close ? { connection: "close" } : {}), ...headers },
    });
  };

  /** Checks a request's head, reads its body under `limit` and checks its signature; returns the sender, body and verified nonce (null without a secret), or the refusal to send. */
  const admit = async (req: Request, limit: number): Promise<{ from: NodeId; body: Uint8Array; path: string; nonce: string | null } | Response> => {
    const url = new URL(req.url);
    const path = url.pathname + url.search;
    const p = { secret: opts.secret, clusterId: opts.clusterId, nodeId: opts.nodeId, method: req.method, path, header: (name: string) => req.headers.get(name), nowMs: now(), clockSkewMsMax, replayCache };
    // Everything the headers can refuse is refused before a byte of the body is read.
    const h = checkRequestHead(p);
    if (!h.ok) return refuse(url.pathname, h.status, h.reason, null, {}, true);
    const no = opts.admitSender?.(h.head.from) ?? null;
    if (no !== null) return refuse(url.pathname, no.status, no.reason, null, {}, true);
    const read = await readBodyLimited(req, limit);
    if (!read.ok) return refuse(url.pathname, read.status, read.reason, null, {}, true);
    const v = verifyRequestBody(p, h.head, read.bytes);
    if (!v.ok) return refuse(url.pathname, v.status, v.reason, null);
    return { from: v.from, body: read.bytes, path: url.pathname, nonce: h.head.nonce };
  };

  /** Decodes a body whose every message must come from `from` to this member. */
  const decodeFrom = (from: NodeId, body: Uint8Array, allowSnap: boolean): Message[] | string => {
    let msgs: Message[];
    try {
      msgs = decodeMessages(body);
    } catch (e) {
      if (e instanceof CodecError) return e.message;
      throw e;
    }
    for (const m of msgs) {
      if (m.type === "MsgSnap" && !allowSnap) return "MsgSnap travels only through the snapshot routes";
      if (m.from !== from) return `message from ${m.from} in a request from ${from}`;
      if (m.to !== opts.nodeId) return `message to ${m.to} sent to ${opts.nodeId}`;
    }
    return msgs;
  };

  const app = new Hono();
  // A throwing onMessages (e.g. the node is closing) is answered 500 and reported, never swallowed.
  app.onError((e, c) => refuse(new URL(c.req.url).pathname, 500, e instanceof Error ? e.message : String(e), null));

  app.post(MESSAGES_PATH, async (c) => {
    const a = await admit(c.req.raw, maxBodyBytes);
    if (a instanceof Response) return a;
    const msgs = decodeFrom(a.from, a.body, false);
    if (typeof msgs === "string") return refuse(a.path, 400, msgs, a.from);
    const slots = opts.replySlots;
    const waitMs = slots === undefined || !expectsReply(msgs) ? null : parseReplyWait(c.req.header(HEADER_REPLY_WAIT));
    // Held before the messages are stepped, so no reply they cause can miss it.
    const held = waitMs === null || slots === undefined ? null : slots.hold(a.from, waitMs);
    opts.onMessages(a.from, msgs);
    if (held === null) return new Response(null, { status: 204 });
    const replies = await held;
    if (replies.length === 0) return new Response(null, { status: 204 });
    const body = encodeMessages(replies);
    // Signed over the nonce admit verified (none without a secret: signReply then adds nothing).
    const sig = signReply({ secret: opts.secret, clusterId: opts.clusterId, from: opts.nodeId, to: a.from, path: a.path, requestNonce: a.nonce ?? "", body });
    return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers: { "content-type": "application/octet-stream", ...sig } });
  });

  /** Runs one sink call for a transfer, refusing (409) a second concurrent one. */
  const exclusive = async (from: NodeId, id: string, path: string, fn: () => Promise<Response>): Promise<Response> => {
    const key = `${from}\u0000${id}`;
    if (busy.has(key)) {
      const held = opts.snapshotSink.receivedOffset(from, id);
      return refuse(path, 409, `snapshot ${id} has a request in progress`, from, held === null ? {} : { [HEADER_SNAPSHOT_OFFSET]: String(held) });
    }
    busy.add(key);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof RefusedError) return refuse(path, e.status, `snapshot ${id}: ${e.message}`, from, e.status === 503 ? { "retry-after": "1" } : {});
      return refuse(path, 500, `snapshot ${id}: ${e instanceof Error ? e.message : String(e)}`, from);
    } finally {
      busy.delete(key);
    }
  };

  app.post(SNAPSHOT_BEGIN_PATH, async (c) => {
    const a = await admit(c.req.raw, Math.min(maxBodyBytes, _SNAPSHOT_BEGIN_BYTES_MAX));
    if (a instanceof Response) return a;
    const id = c.req.query("id");
    if (id === undefined || !SNAPSHOT_ID_RE.test(id)) return refuse(a.path, 400, `snapshot id must match ${SNAPSHOT_ID_RE.source}`, a.from);
    const totalBytes = _parseOffset(c.req.query("bytes"));
    if (totalBytes === null) return refuse(a.path, 400, "snapshot begin needs bytes=N, the snapshot's size", a.from);
    const msgs = decodeFrom(a.from, a.body, true);
    if (typeof msgs === "string") return refuse(a.path, 400, msgs, a.from);
    const msg = msgs[0];
    if (msgs.length !== 1 || msg === undefined || msg.type !== "MsgSnap") return refuse(a.path, 400, "snapshot begin must carry exactly one MsgSnap", a.from);
    return exclusive(a.from, id, a.path, async () => {
      const held = await opts.snapshotSink.begin(a.from, id, msg, totalBytes);
      if (!Number.isSafeInteger(held) || held < 0) throw new Error(`Assertion failed: sink.begin returned offset ${held}`);
      return new Response(null, { status: 200, headers: { [HEADER_SNAPSHOT_OFFSET]: String(held) } });
    });
  });

  app.post(SNAPSHOT_CHUNK_PATH, async (c) => {
    const a = await admit(c.req.raw, maxChunkBytes);
    if (a instanceof Response) return a;
    const id = c.req.query("id");
    const offset = _parseOffset(c.req.query("offset"));
    if (id === undefined || !SNAPSHOT_ID_RE.test(id) || offset === null) return refuse(a.path, 400, "snapshot chunk needs id and offset", a.from);
    if (a.body.length === 0) return refuse(a.path, 400, "empty snapshot chunk", a.from);
    if (!Number.isSafeInteger(offset + a.body.length)) return refuse(a.path, 400, "snapshot offset overflows", a.from);
    return exclusive(a.from, id, a.path, async () => {
      const held = opts.snapshotSink.receivedOffset(a.from, id);
      if (held === null) return refuse(a.path, 404, `no snapshot transfer ${id} from ${a.from}; begin it first`, a.from);
      if (held !== offset) return refuse(a.path, 409, `snapshot ${id} holds ${held} bytes, chunk starts at ${offset}`, a.from, { [HEADER_SNAPSHOT_OFFSET]: String(held) });
      await opts.snapshotSink.write(a.from, id, offset, a.body);
      const after = opts.snapshotSink.receivedOffset(a.from, id);
      if (after !== offset + a.body.length) throw new Error(`Assertion failed: after writing [${offset}, ${offset + a.body.length}) the sink holds ${after} bytes`);
      return new Response(null, { status: 200, headers: { [HEADER_SNAPSHOT_OFFSET]: String(after) } });
    });
  });

  app.post(SNAPSHOT_FINISH_PATH, async (c) => {
    const a = await admit(c.req.raw, 0);
    if (a instanceof Response) return a;
    const id = c.req.query("id");
    const total = _parseOffset(c.req.query("offset"));
    if (id === undefined || !SNAPSHOT_ID_RE.test(id) || total === null) return refuse(a.path, 400, "snapshot finish needs id and offset", a.from);
    return exclusive(a.from, id, a.path, async () => {
      const held = opts.snapshotSink.receivedOffset(a.from, id);
      if (held === null) return refuse(a.path, 404, `no snapshot transfer ${id} from ${a.from}`, a.from);
      if (held !== total) return refuse(a.path, 409, `snapshot ${id} holds ${held} bytes, sender says ${total}`, a.from, { [HEADER_SNAPSHOT_OFFSET]: String(held) });
      await opts.snapshotSink.finish(a.from, id, total);
      return new Response(null, { status: 204 });
    });
  });

  return app;
}
