/**
 * The Hono routes that serve peer RPCs on a member's port.
 *
 * - `POST /raft/v1/messages`: a batch of messages (AppendEntries, RequestVote,
 *   PreVote, heartbeats, TimeoutNow and their replies) in the binary codec;
 *   204 once handed to the driver. Replies travel as requests the other way,
 *   as in etcd: the HTTP response carries no Raft payload. A MsgSnap here is
 *   refused: without its bytes it would install nothing.
 * - InstallSnapshot (§7), streamed one acknowledged chunk per request so
 *   neither side holds a whole snapshot in memory and the sender waits for
 *   each write (backpressure):
 *   - `POST /raft/v1/snapshot/begin?id=ID` with the encoded MsgSnap as body:
 *     the receiver opens (or resumes) transfer ID and answers 200 with the
 *     offset it already holds in `x-raft-snapshot-offset`;
 *   - `POST /raft/v1/snapshot/chunk?id=ID&offset=N`: bytes [N, N + length);
 *     200 with the new offset, or 409 with the offset it holds when N is not
 *     it (the sender resumes from there), 404 if the transfer is unknown;
 *   - `POST /raft/v1/snapshot/finish?id=ID&offset=N` (N = total bytes): the
 *     receiver installs the snapshot and steps the MsgSnap; 204.
 *
 * Every request is checked by `verifyRequest` (cluster id, and with a secret
 * an HMAC with timestamp and nonce) after its body is read under a size
 * limit: a wrong cluster is 403, a bad signature 401, a body over the limit
 * 413, a malformed body 400; none of them reaches the driver.
 *
 * @module
 */
import { Hono } from "hono";
import { InvalidArgumentError } from "../errors.ts";
import type { Message, MsgSnap, NodeId } from "../raft/types.ts";
import {
  CLOCK_SKEW_MS_MAX_DEFAULT,
  HEADER_CLUSTER,
  REPLAY_CACHE_ENTRIES_MAX_DEFAULT,
  ReplayCache,
  verifyRequest,
} from "./auth.ts";
import { CodecError, decodeMessages } from "./codec.ts";
import { readBodyLimited } from "./read-body.ts";

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

/** Default largest message batch body. */
export const MAX_BODY_BYTES_DEFAULT = 64 * 1024 * 1024;
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
   * or resumes it if the sink already holds a prefix of it. The sink may
   * drop other unfinished transfers from `from`.
   *
   * @returns The number of bytes already held (0 for a new transfer).
   * @throws To refuse the transfer (answered 500 with the error's message).
   */
  begin(from: NodeId, snapshotId: string, msg: MsgSnap): Promise<number>;
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
  const replayCache = opts.secret === null ? null : new ReplayCache(clockSkewMsMax, opts.replayCacheEntriesMax ?? REPLAY_CACHE_ENTRIES_MAX_DEFAULT);
  /** Transfers with a sink call in progress ("from\0id"): a duplicate request gets 409 instead of a concurrent write. */
  const busy = new Set<string>();

  const refuse = (path: string, status: number, reason: string, from: NodeId | null, headers?: Record<string, string>): Response => {
    opts.onRefused?.({ status, reason, path, from });
    return new Response(reason, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
  };

  /** Reads and authenticates a request; returns the sender and body, or the refusal to send. */
  const admit = async (req: Request, limit: number): Promise<{ from: NodeId; body: Uint8Array; path: string } | Response> => {
    const url = new URL(req.url);
    const path = url.pathname + url.search;
    // The cheap checks first: a foreign cluster is refused before its body is read.
    if (req.headers.get(HEADER_CLUSTER) !== encodeURIComponent(opts.clusterId)) {
      return refuse(url.pathname, 403, `request is not from cluster ${opts.clusterId}`, null);
    }
    const read = await readBodyLimited(req, limit);
    if (!read.ok) return refuse(url.pathname, read.status, read.reason, null);
    const v = verifyRequest({
      secret: opts.secret,
      clusterId: opts.clusterId,
      nodeId: opts.nodeId,
      method: req.method,
      path,
      header: (name) => req.headers.get(name),
      body: read.bytes,
      nowMs: now(),
      clockSkewMsMax,
      replayCache,
    });
    if (!v.ok) return refuse(url.pathname, v.status, v.reason, null);
    return { from: v.from, body: read.bytes, path: url.pathname };
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
    opts.onMessages(a.from, msgs);
    return new Response(null, { status: 204 });
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
      return refuse(path, 500, `snapshot ${id}: ${e instanceof Error ? e.message : String(e)}`, from);
    } finally {
      busy.delete(key);
    }
  };

  app.post(SNAPSHOT_BEGIN_PATH, async (c) => {
    const a = await admit(c.req.raw, maxBodyBytes);
    if (a instanceof Response) return a;
    const id = c.req.query("id");
    if (id === undefined || !SNAPSHOT_ID_RE.test(id)) return refuse(a.path, 400, `snapshot id must match ${SNAPSHOT_ID_RE.source}`, a.from);
    const msgs = decodeFrom(a.from, a.body, true);
    if (typeof msgs === "string") return refuse(a.path, 400, msgs, a.from);
    const msg = msgs[0];
    if (msgs.length !== 1 || msg === undefined || msg.type !== "MsgSnap") return refuse(a.path, 400, "snapshot begin must carry exactly one MsgSnap", a.from);
    return exclusive(a.from, id, a.path, async () => {
      const held = await opts.snapshotSink.begin(a.from, id, msg);
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
