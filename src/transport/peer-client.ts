/**
 * The sending side of peer RPCs: one `PeerClient` per remote member.
 *
 * `send` is fire-and-forget, as Raft wants its transport (§5.1: "servers
 * retry RPCs if they do not receive a response in a timely manner" — here
 * the core retries, the transport never does). At most
 * `maxInflightRequests` requests are in flight to the peer over the
 * adapter's keep-alive pool; messages that arrive meanwhile are queued and
 * go out together in the next request, so a busy leader sends fewer, larger
 * requests. Requests may complete out of order, which Raft tolerates like
 * any reordering network. The queue is bounded: past the bound the oldest
 * messages that the core re-sends anyway (appends, heartbeats, replies) are
 * dropped, never votes or TimeoutNow. While a request is in flight, appends
 * wait for it unless a whole `pipelineBytes` of them waits (catch-up, large
 * values): a request costs far more than the bytes it carries (HTTP on
 * both sides, a signature, the follower's turn), and small appends that
 * queued behind one request go out together in the next. Anything but an
 * append (a heartbeat, a vote, a reply) still takes a free slot at once.
 * A failed or timed-out request is
 * reported through `onUnreachable`, which the driver turns into
 * `reportUnreachable` on the core (flow control falls back to probing).
 *
 * A batch that expects replies (appends, heartbeats, votes) asks the
 * receiver to answer with them in the response (`x-raft-reply`, see
 * reply-slots.ts); what comes back is checked (signature, sender,
 * receiver, reply types only) and handed to `onReplies`.
 *
 * `sendSnapshot` streams an InstallSnapshot (§7) in chunks, one request per
 * chunk and the next only after the previous is acknowledged, resuming from
 * the offset the receiver reports after any failure (see routes.ts).
 *
 * @module
 */
import type { HttpClient, HttpResponse } from "../../adapters/types.ts";
import { ClosedError, InvalidArgumentError, TimeoutError } from "../errors.ts";
import type { Message, MsgSnap, NodeId } from "../raft/types.ts";
import { HEADER_NONCE, HEADER_SIG, NonceSource, signRequest, verifyReply } from "./auth.ts";
import { BODY_ENTRIES_MAX, BODY_MESSAGES_MAX, CodecError, decodeMessages, encodedMessageSize, encodeMessages } from "./codec.ts";
import { expectsReply, HEADER_REPLY_WAIT, isReplyMessage, REPLY_MESSAGES_MAX } from "./reply-slots.ts";
import {
  HEADER_SNAPSHOT_OFFSET,
  MESSAGES_PATH,
  SNAPSHOT_BEGIN_PATH,
  SNAPSHOT_CHUNK_PATH,
  SNAPSHOT_FINISH_PATH,
  SNAPSHOT_ID_RE,
} from "./routes.ts";

/** Default of `maxInflightRequests`. */
export const MAX_INFLIGHT_REQUESTS_DEFAULT = 8;
/** Default of `maxQueuedMessages`. */
export const MAX_QUEUED_MESSAGES_DEFAULT = 4096;
/**
 * Default of `pipelineBytes`: one full append (the core's `maxMsgBytes`).
 * Measured (three Node members on loopback, wrk at 128 connections, 100-byte PUTs): taking every free
 * slot at once, 8 in flight did 5,474-5,533 req/s, one in flight 7,351-8,150.
 */
export const PIPELINE_BYTES_DEFAULT = 1024 * 1024;
/** Default of `maxBatchBytes`: well under the receiver's default body limit. */
export const MAX_BATCH_BYTES_DEFAULT = 4 * 1024 * 1024;
/** Default of `snapshotChunkBytes`. */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;

/** Default of `replyWaitMs`. */
export const REPLY_WAIT_MS_DEFAULT = 200;

/** Bytes of a body before its messages (magic and count). */
const _BODY_HEADER_BYTES = 8;

/** Options of a `PeerClient`. */
export interface PeerClientOptions {
  /** The remote member's id (the `to` of every message sent). */
  readonly peerId: NodeId;
  /** The remote member's base URL, e.g. "http://127.0.0.1:7001". */
  readonly peerUrl: string;
  readonly clusterId: string;
  /** This member's id (the `from` of every message sent). */
  readonly nodeId: NodeId;
  /** Cluster secret, or null to send unsigned requests. */
  readonly secret: Uint8Array | null;
  /** Pooled keep-alive client from the runtime adapter; shared, not closed by `close()`. */
  readonly http: HttpClient;
  /** Per-request deadline of message batches. */
  readonly requestTimeoutMs: number;
  /** At most this many message requests in flight. Default 8. */
  readonly maxInflightRequests?: number;
  /** Queue bound; past it the oldest droppable messages go. Default 4096. */
  readonly maxQueuedMessages?: number;
  /** A request carries at most this many body bytes (one larger message goes alone). Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** With a request in flight, another starts for appends only once this many bytes of them wait (at most `maxBatchBytes`). Default 1 MiB. */
  readonly pipelineBytes?: number;
  /** Snapshot chunk size. Default 1 MiB; must not exceed the receiver's `maxSnapshotChunkBytes`. */
  readonly snapshotChunkBytes?: number;
  /** Per-request deadline of snapshot requests (a chunk waits for a disk write). Default 30 s. */
  readonly snapshotRequestTimeoutMs?: number;
  /** Consecutive failed snapshot requests before `sendSnapshot` gives up. Default 5. */
  readonly snapshotAttemptsMax?: number;
  /** Pause before retrying a failed snapshot request. Default 500 ms. */
  readonly snapshotRetryDelayMs?: number;
  /** Wall clock for request timestamps. Default `Date.now`. */
  readonly now?: () => number;
  /** A message request failed (network error, timeout or non-204 status); `error` is what the client threw, if it threw. */
  readonly onUnreachable: (peerId: NodeId, reason: string, error?: unknown) => void;
  /**
   * Replies the peer sent back in a response (already checked: from the
   * peer, to this member, reply types only). Without it no batch asks for
   * replies in the response.
   */
  readonly onReplies?: (msgs: Message[]) => void;
  /** How long the receiver may hold a request for replies (`x-raft-reply`). Default 200 ms, at most half of `requestTimeoutMs`. */
  readonly replyWaitMs?: number;
  /** The peer answered 410: it knows this member was removed from the cluster. */
  readonly onGone?: (peerId: NodeId, reason: string) => void;
  /** Messages were dropped from a full queue. */
  readonly onDropped?: (peerId: NodeId, count: number) => void;
}

/** Where a snapshot's bytes come from: a stream, or a function opening one at a byte offset (needed to resume below what was already read). */
export type SnapshotSource = AsyncIterable<Uint8Array> | ((offset: number) => AsyncIterable<Uint8Array>);

/** Options of one `sendSnapshot` call. */
export interface SendSnapshotOptions {
  /** The snapshot's size in bytes, declared at begin (the receiver checks it against its free space). */
  readonly totalBytes: number;
  /** Transfer id (matches `SNAPSHOT_ID_RE`); the same id lets a restarted sender resume. Default derived from the terms and index. */
  readonly snapshotId?: string;
  /** Called with the number of bytes the receiver holds after each acknowledged chunk. */
  readonly onProgress?: (receivedBytes: number) => void;
}

/** Counters for status and tests. */
export interface PeerClientStats {
  /** Message requests in flight now. Invariant: <= maxInflightRequests. */
  readonly inflight: number;
  /** Most requests ever in flight at once. */
  readonly inflightPeak: number;
  readonly queued: number;
  readonly requestsSent: number;
  readonly messagesSent: number;
  readonly requestsFailed: number;
  readonly messagesDropped: number;
}

/** A queued message and its encoded size (computed once, when queued). */
interface _Queued {
  readonly m: Message;
  readonly size: number;
}

/** Votes and TimeoutNow are never dropped: losing one can delay an election by a whole timeout. */
function _droppable(m: Message): boolean {
  switch (m.type) {
    case "MsgVote":
    case "MsgPreVote":
    case "MsgVoteResp":
    case "MsgPreVoteResp":
    case "MsgTimeoutNow":
      return false;
    default:
      return true;
  }
}

/** Appends may wait for a request in flight (see the module comment); nothing else does. */
function _mayWait(m: Message): boolean {
  return m.type === "MsgApp";
}

function _errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Reads the receiver's snapshot offset header; null if absent or malformed. */
function _offsetHeader(res: HttpResponse): number | null {
  const raw = res.headers[HEADER_SNAPSHOT_OFFSET];
  if (raw === undefined || !/^[0-9]{1,16}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

/** Re-chunks a snapshot source into pieces of at most `chunkBytes`, and positions it at an offset. */
class _ChunkReader {
  readonly #source: SnapshotSource;
  readonly #chunkBytes: number;
  #iter: AsyncIterator<Uint8Array> | null = null;
  /** Unconsumed tail of the last piece the iterator yielded. */
  #pending: Uint8Array = new Uint8Array(0);
  /** Offset of the next byte `next()` returns. Invariant: bytes before it were returned or skipped. */
  pos = 0;

  constructor(source: SnapshotSource, chunkBytes: number) {
    this.#source = source;
    this.#chunkBytes = chunkBytes;
  }

  /** Positions the reader at `offset`: reopens a function source, or skips forward in a stream. */
  async seek(offset: number): Promise<void> {
    if (this.#iter !== null && offset === this.pos) return;
    if (typeof this.#source === "function") {
      await this.close();
      this.#iter = this.#source(offset)[Symbol.asyncIterator]();
      this.#pending = new Uint8Array(0);
      this.pos = offset;
      return;
    }
    if (this.#iter === null) this.#iter = this.#source[Symbol.asyncIterator]();
    if (offset < this.pos) {
      throw new InvalidArgumentError(`The snapshot stream cannot rewind from byte ${this.pos} to ${offset}; pass a function (offset) => stream to allow resuming`);
    }
    while (this.pos < offset) {
      const piece = await this.#take(offset - this.pos);
      if (piece === null) throw new InvalidArgumentError(`The snapshot stream ended at byte ${this.pos}, but the receiver holds ${offset} bytes`);
      this.pos += piece.length;
    }
  }

  /** The next chunk (at most `chunkBytes`, coalescing small pieces), or null at the end. */
  async next(): Promise<Uint8Array | null> {
    const first = await this.#take(this.#chunkBytes);
    if (first === null) return null;
    let chunk = first;
    if (chunk.length < this.#chunkBytes) {
      const parts = [chunk];
      let total = chunk.length;
      while (total < this.#chunkBytes) {
        const piece = await this.#take(this.#chunkBytes - total);
        if (piece === null) break;
        parts.push(piece);
        total += piece.length;
      }
      if (parts.length > 1) {
        chunk = new Uint8Array(total);
        let p = 0;
        for (const part of parts) {
          chunk.set(part, p);
          p += part.length;
        }
      }
    }
    this.pos += chunk.length;
    return chunk;
  }

  /** Up to `max` bytes from the pending tail or the iterator; null at the end. */
  async #take(max: number): Promise<Uint8Array | null> {
    while (this.#pending.length === 0) {
      if (this.#iter === null) throw new Error("Assertion failed: snapshot reader used before seek");
      const r = await this.#iter.next();
      if (r.done === true) return null;
      this.#pending = r.value;
    }
    const piece = this.#pending.subarray(0, max);
    this.#pending = this.#pending.subarray(piece.length);
    return piece;
  }

  async close(): Promise<void> {
    const it = this.#iter;
    this.#iter = null;
    if (it?.return !== undefined) await it.return();
  }
}

/**
 * Sends messages and snapshots to one remote member.
 *
 * @example
 * ```ts
 * const peer = new PeerClient({ peerId: "n2", peerUrl: "http://127.0.0.1:7002", clusterId: "c1",
 *   nodeId: "n1", secret: null, http: runtime.httpClient(), requestTimeoutMs: 1000,
 *   onUnreachable: (id) => core.reportUnreachable(id) });
 * peer.send(ready.messages.filter((m) => m.to === "n2"));
 * ```
 */
export class PeerClient {
  readonly #o: PeerClientOptions;
  readonly #baseUrl: string;
  readonly #messagesUrl: string;
  readonly #messagesPath: string;
  readonly #maxInflight: number;
  readonly #maxQueued: number;
  readonly #maxBatchBytes: number;
  readonly #pipelineBytes: number;
  readonly #chunkBytes: number;
  /** Wait asked of the receiver for replies; 0 when replies are not taken in responses. */
  readonly #replyWaitMs: number;
  readonly #nonces = new NonceSource();
  readonly #now: () => number;
  /** Messages waiting for a request slot, with their encoded sizes; `#queue[#head..]` are live. Invariant: live count <= maxQueuedMessages. */
  #queue: _Queued[] = [];
  #head = 0;
  /** Encoded bytes of the live queue. */
  #queuedBytes = 0;
  /** Live queued messages that are not appends (they never wait for a request in flight). */
  #queuedUrgent = 0;
  #flushScheduled = false;
  /** Invariant: 0 <= #inflight <= #maxInflight. */
  #inflight = 0;
  #inflightPeak = 0;
  #requestsSent = 0;
  #messagesSent = 0;
  #requestsFailed = 0;
  #messagesDropped = 0;
  #snapshotActive = false;
  #closed = false;

  /** @throws {InvalidArgumentError} On an invalid URL or limit. */
  constructor(opts: PeerClientOptions) {
    this.#o = opts;
    let url: URL;
    try {
      url = new URL(opts.peerUrl);
    } catch {
      throw new InvalidArgumentError(`Peer ${opts.peerId} has an invalid URL ${JSON.stringify(opts.peerUrl)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError(`Peer ${opts.peerId} URL must be http(s): ${opts.peerUrl}`);
    this.#baseUrl = url.origin + url.pathname.replace(/\/+$/, "");
    this.#messagesUrl = this.#baseUrl + MESSAGES_PATH;
    this.#messagesPath = new URL(this.#messagesUrl).pathname;
    this.#maxInflight = opts.maxInflightRequests ?? MAX_INFLIGHT_REQUESTS_DEFAULT;
    this.#maxQueued = opts.maxQueuedMessages ?? MAX_QUEUED_MESSAGES_DEFAULT;
    this.#maxBatchBytes = opts.maxBatchBytes ?? MAX_BATCH_BYTES_DEFAULT;
    // A full request's worth waiting is always worth a request of its own.
    this.#pipelineBytes = Math.min(opts.pipelineBytes ?? PIPELINE_BYTES_DEFAULT, this.#maxBatchBytes);
    this.#chunkBytes = opts.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    this.#now = opts.now ?? Date.now;
    this.#replyWaitMs = opts.onReplies === undefined ? 0 : Math.min(opts.replyWaitMs ?? REPLY_WAIT_MS_DEFAULT, Math.floor(opts.requestTimeoutMs / 2));
    for (const [name, v, min] of [
      ["maxInflightRequests", this.#maxInflight, 1],
      ["maxQueuedMessages", this.#maxQueued, 1],
      ["maxBatchBytes", this.#maxBatchBytes, 64],
      ["pipelineBytes", this.#pipelineBytes, 1],
      ["snapshotChunkBytes", this.#chunkBytes, 1],
      ["requestTimeoutMs", opts.requestTimeoutMs, 1],
      ["replyWaitMs", this.#replyWaitMs, 0],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${v}`);
    }
  }

  /** The remote member's id. */
  get peerId(): NodeId {
    return this.#o.peerId;
  }

  /** Current counters. */
  stats(): PeerClientStats {
    return {
      inflight: this.#inflight,
      inflightPeak: this.#inflightPeak,
      queued: this.#queue.length - this.#head,
      requestsSent: this.#requestsSent,
      messagesSent: this.#messagesSent,
      requestsFailed: this.#requestsFailed,
      messagesDropped: this.#messagesDropped,
    };
  }

  /**
   * Queues messages for the peer and returns at once. Everything queued in
   * the same turn of the event loop goes out in as few requests as the
   * in-flight limit and `maxBatchBytes` allow. No-op after `close()`.
   *
   * @throws {InvalidArgumentError} For a MsgSnap (use `sendSnapshot`) or a
   * message not from this member to the peer.
   * @throws {CodecError} For a message that cannot be encoded (checked here,
   * synchronously, rather than failing later inside the send loop).
   */
  send(msgs: readonly Message[]): void {
    if (this.#closed) return;
    // Check the whole call first: either all of it is queued or none.
    const checked: _Queued[] = [];
    for (const m of msgs) {
      if (m.type === "MsgSnap") throw new InvalidArgumentError("MsgSnap must go through sendSnapshot, with the snapshot's bytes");
      if (m.from !== this.#o.nodeId || m.to !== this.#o.peerId) {
        throw new InvalidArgumentError(`Message ${m.type} from ${m.from} to ${m.to} handed to the client of ${this.#o.nodeId} -> ${this.#o.peerId}`);
      }
      checked.push({ m, size: encodedMessageSize(m) });
    }
    for (const q of checked) {
      this.#queue.push(q);
      this.#count(q, 1);
    }
    if (this.#queue.length - this.#head > this.#maxQueued) this.#shed();
    if (!this.#flushScheduled && this.#queue.length > this.#head) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  /** Drops the oldest droppable messages (or, if none are, the oldest) until the queue is within its bound. */
  #shed(): void {
    const live = this.#queue.slice(this.#head);
    let excess = live.length - this.#maxQueued;
    const kept: _Queued[] = [];
    for (const q of live) {
      if (excess > 0 && _droppable(q.m)) excess--;
      else kept.push(q);
    }
    // Only undroppable messages left over the bound: the oldest go after all.
    const dropped = live.length - kept.length + Math.max(0, excess);
    this.#queue = excess > 0 ? kept.slice(excess) : kept;
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#queuedUrgent = 0;
    for (const q of this.#queue) this.#count(q, 1);
    if (this.#queue.length > this.#maxQueued) throw new Error("Assertion failed: peer queue over its bound after shedding");
    this.#messagesDropped += dropped;
    this.#o.onDropped?.(this.#o.peerId, dropped);
  }

  /** Counts a message into (`sign` 1) or out of (-1) the live queue's bytes and urgent messages. */
  #count(q: _Queued, sign: 1 | -1): void {
    this.#queuedBytes += sign * q.size;
    if (!_mayWait(q.m)) this.#queuedUrgent += sign;
  }

  /** Starts requests while slots are free and messages wait. */
  #flush(): void {
    while (!this.#closed && this.#inflight < this.#maxInflight && this.#head < this.#queue.length) {
      // Appends wait for the request in flight, unless enough of them wait to fill a request of their own.
      if (this.#inflight > 0 && this.#queuedUrgent === 0 && this.#queuedBytes < this.#pipelineBytes) break;
      // Take messages while the body stays under the batch limit (at least one).
      // Also within the receiver's message and entry counts (each MsgApp alone is within them).
      let bytes = _BODY_HEADER_BYTES;
      let entries = 0;
      let end = this.#head;
      while (end < this.#queue.length) {
        const q = this.#queue[end]!;
        const n = q.m.type === "MsgApp" ? q.m.entries.length : 0;
        if (end > this.#head && (bytes + q.size > this.#maxBatchBytes || entries + n > BODY_ENTRIES_MAX || end - this.#head >= BODY_MESSAGES_MAX)) break;
        bytes += q.size;
        entries += n;
        end++;
        this.#count(q, -1);
      }
      const batch = this.#queue.slice(this.#head, end).map((q) => q.m);
      this.#head = end;
      if (this.#head === this.#queue.length) {
        if (this.#queuedBytes !== 0 || this.#queuedUrgent !== 0) throw new Error("Assertion failed: an empty peer queue still counts bytes or urgent messages");
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#post(batch);
    }
  }

  #post(batch: Message[]): void {
    const body = encodeMessages(batch);
    const headers = this.#sign("POST", this.#messagesPath, body);
    const askReplies = this.#replyWaitMs > 0 && expectsReply(batch);
    if (askReplies) headers[HEADER_REPLY_WAIT] = String(this.#replyWaitMs);
    this.#inflight++;
    if (this.#inflight > this.#maxInflight) throw new Error("Assertion failed: more requests in flight than allowed");
    if (this.#inflight > this.#inflightPeak) this.#inflightPeak = this.#inflight;
    this.#requestsSent++;
    this.#o.http
      .request({ method: "POST", url: this.#messagesUrl, headers, body, timeoutMs: this.#o.requestTimeoutMs })
      .then(
        (res) => {
          if (res.status === 204) {
            this.#messagesSent += batch.length;
            return;
          }
          if (res.status === 200 && askReplies) {
            this.#messagesSent += batch.length;
            const bad = this.#takeReplies(headers[HEADER_NONCE] ?? "", res);
            if (bad !== null) this.#failed(`${this.#messagesUrl}: ${bad}`);
            return;
          }
          const text = new TextDecoder().decode(res.body.subarray(0, 200));
          if (res.status === 410) this.#o.onGone?.(this.#o.peerId, text);
          this.#failed(`HTTP ${res.status} from ${this.#messagesUrl}: ${text}`);
        },
        (e: unknown) => this.#failed(`${this.#messagesUrl}: ${_errorText(e)}`, e),
      )
      .finally(() => {
        this.#inflight--;
        this.#flush();
      });
  }

  /** Checks the replies in a 200 answer and hands them on; returns why they were refused, or null. */
  #takeReplies(requestNonce: string, res: HttpResponse): string | null {
    const o = this.#o;
    const bad = verifyReply({ secret: o.secret, clusterId: o.clusterId, from: o.peerId, to: o.nodeId, path: this.#messagesPath, requestNonce, body: res.body, sig: res.headers[HEADER_SIG] });
    if (bad !== null) return bad;
    let msgs: Message[];
    try {
      msgs = decodeMessages(res.body);
    } catch (e) {
      if (e instanceof CodecError) return `malformed replies: ${e.message}`;
      throw e;
    }
    if (msgs.length > REPLY_MESSAGES_MAX) return `${msgs.length} replies in one response (at most ${REPLY_MESSAGES_MAX})`;
    for (const m of msgs) {
      if (m.from !== o.peerId || m.to !== o.nodeId) return `a reply from ${m.from} to ${m.to} in a response of ${o.peerId}`;
      if (!isReplyMessage(m)) return `a ${m.type} in a response (only replies may ride there)`;
    }
    if (!this.#closed && msgs.length > 0) o.onReplies?.(msgs);
    return null;
  }

  #failed(reason: string, error?: unknown): void {
    this.#requestsFailed++;
    if (!this.#closed) this.#o.onUnreachable(this.#o.peerId, reason, error);
  }

  #sign(method: string, path: string, body: Uint8Array): Record<string, string> {
    const headers = signRequest({
      secret: this.#o.secret,
      clusterId: this.#o.clusterId,
      from: this.#o.nodeId,
      to: this.#o.peerId,
      method,
      path,
      body,
      nowMs: this.#now(),
      nonce: this.#nonces.next(),
    });
    headers["content-type"] = "application/octet-stream";
    return headers;
  }

  /** One signed snapshot request. */
  #snapshotRequest(path: string, query: string, body: Uint8Array): Promise<HttpResponse> {
    if (this.#closed) return Promise.reject(new ClosedError(`The client of peer ${this.#o.peerId} is closed`));
    const url = this.#baseUrl + path + query;
    const u = new URL(url);
    return this.#o.http.request({
      method: "POST",
      url,
      headers: this.#sign("POST", u.pathname + u.search, body),
      body,
      timeoutMs: this.#o.snapshotRequestTimeoutMs ?? 30_000,
    });
  }

  /**
   * Streams an InstallSnapshot to the peer: opens (or resumes) the transfer,
   * sends chunks one at a time, each after the previous is acknowledged,
   * and on any failure asks the receiver how far it got and continues from
   * there. Resolves once the receiver has installed the snapshot.
   *
   * @param msg The MsgSnap the core emitted (its meta goes first; the receiver steps it once installed).
   * @param source The snapshot's bytes.
   * @param opts Transfer id and progress callback.
   * @throws {TimeoutError} After `snapshotAttemptsMax` consecutive failed requests (the message names the last failure).
   * @throws {InvalidArgumentError} For another transfer already running, a bad id, or a stream that cannot rewind to where the receiver is.
   * @throws {ClosedError} If the client is closed meanwhile.
   */
  async sendSnapshot(msg: MsgSnap, source: SnapshotSource, opts: SendSnapshotOptions): Promise<void> {
    const id = opts.snapshotId ?? `s${msg.term}-${msg.snapshot.term}-${msg.snapshot.index}`;
    if (!Number.isSafeInteger(opts.totalBytes) || opts.totalBytes < 0) throw new InvalidArgumentError(`Snapshot size ${opts.totalBytes} must be a non-negative integer`);
    if (!SNAPSHOT_ID_RE.test(id)) throw new InvalidArgumentError(`Snapshot id ${JSON.stringify(id)} must match ${SNAPSHOT_ID_RE.source}`);
    if (msg.from !== this.#o.nodeId || msg.to !== this.#o.peerId) throw new InvalidArgumentError(`MsgSnap from ${msg.from} to ${msg.to} handed to the client of ${this.#o.nodeId} -> ${this.#o.peerId}`);
    if (this.#snapshotActive) throw new InvalidArgumentError(`A snapshot transfer to ${this.#o.peerId} is already running`);
    this.#snapshotActive = true;
    const reader = new _ChunkReader(source, this.#chunkBytes);
    try {
      await this.#transfer(id, msg, opts.totalBytes, reader, opts.onProgress);
    } finally {
      this.#snapshotActive = false;
      await reader.close();
    }
  }

  async #transfer(id: string, msg: MsgSnap, totalBytes: number, reader: _ChunkReader, onProgress: ((n: number) => void) | undefined): Promise<void> {
    const attemptsMax = this.#o.snapshotAttemptsMax ?? 5;
    const retryDelayMs = this.#o.snapshotRetryDelayMs ?? 500;
    const metaBody = encodeMessages([msg]);
    const q = `?id=${id}`;
    const beginQuery = `${q}&bytes=${totalBytes}`;
    let failures = 0;
    /** Counts a failed request; throws after too many in a row, else waits before the retry. */
    const fail = async (reason: string): Promise<void> => {
      failures++;
      if (failures >= attemptsMax) {
        throw new TimeoutError(`Snapshot ${id} to ${this.#o.peerId} failed ${failures} times in a row; last: ${reason}`);
      }
      if (retryDelayMs > 0) await new Promise<void>((r) => setTimeout(r, retryDelayMs));
    };
    /** The receiver's offset from a (re)begin, or null after a counted failure. */
    const begin = async (): Promise<number | null> => {
      let reason: string;
      try {
        const res = await this.#snapshotRequest(SNAPSHOT_BEGIN_PATH, beginQuery, metaBody);
        const held = _offsetHeader(res);
        if (res.status === 200 && held !== null) return held;
        reason = `begin: HTTP ${res.status}: ${new TextDecoder().decode(res.body.subarray(0, 200))}`;
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        reason = `begin: ${_errorText(e)}`;
      }
      await fail(reason);
      return null;
    };

    /** Begins until the receiver answers (each failure counted by `fail`, which gives up in the end). */
    const resync = async (): Promise<number> => {
      for (;;) {
        const offset = await begin();
        if (offset !== null) return offset;
      }
    };

    let held = await resync();
    /** The last chunk read: bytes [chunkStart, chunkStart + length), kept until acknowledged so a retry needs no rewind. */
    let current: Uint8Array | null = null;
    let currentStart = -1;
    let reported = -1;
    for (;;) {
      // Invariant here: `held` is what the receiver holds.
      if (held !== reported) {
        onProgress?.(held);
        reported = held;
      }
      if (current === null || held < currentStart || held >= currentStart + current.length) {
        await reader.seek(held);
        currentStart = held;
        current = await reader.next();
      }
      const chunk = current === null ? null : current.subarray(held - currentStart);
      let res: HttpResponse;
      let unknown = false;
      try {
        res = chunk === null
          ? await this.#snapshotRequest(SNAPSHOT_FINISH_PATH, `${q}&offset=${held}`, new Uint8Array(0))
          : await this.#snapshotRequest(SNAPSHOT_CHUNK_PATH, `${q}&offset=${held}`, chunk);
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        await fail(`${chunk === null ? "finish" : "chunk"} at ${held}: ${_errorText(e)}`);
        unknown = true;
        res = { status: 0, headers: {}, body: new Uint8Array(0) };
      }
      if (!unknown) {
        const after = _offsetHeader(res);
        if (chunk === null && res.status === 204) return;
        if (chunk !== null && res.status === 200 && after === held + chunk.length) {
          held = after;
          failures = 0;
          continue;
        }
        if (res.status === 409 && after !== null) {
          // The receiver holds another amount (a lost acknowledgement, it lost data, or an
          // earlier request is still being written): go on from there. Counted, so a
          // receiver that never moves cannot keep us here forever.
          await fail(`${chunk === null ? "finish" : "chunk"} at ${held}: receiver holds ${after}`);
          held = after;
          continue;
        }
        // Counted even for 404 (the receiver forgot the transfer: restarted, or a lost
        // finish acknowledgement), so a receiver that keeps forgetting cannot hold us forever.
        await fail(`${chunk === null ? "finish" : "chunk"} at ${held}: HTTP ${res.status}: ${new TextDecoder().decode(res.body.subarray(0, 200))}`);
      }
      // Unknown outcome, or the receiver forgot the transfer: ask it where it stands.
      held = await resync();
    }
  }

  /**
   * Stops sending: drops queued messages; requests in flight finish but are
   * no longer reported. A running `sendSnapshot` rejects with `ClosedError`
   * at its next request. Does not close the shared `HttpClient`.
   */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
  }
}
