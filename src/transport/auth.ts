/**
 * Authentication of peer requests.
 *
 * Every peer request names its cluster and its sender (and its intended
 * receiver) in headers. Without a cluster secret only the cluster id is
 * checked, which catches a misconfigured member, not an attacker. With a
 * secret every request carries an HMAC-SHA-256 (`@noble/hashes`) over a
 * canonical string of method, path, cluster, sender, receiver, timestamp,
 * nonce, followed by the body. The receiver
 *  - refuses a timestamp further than `clockSkewMsMax` from its own clock,
 *  - compares the MAC in constant time,
 *  - remembers every accepted (sender, nonce) for as long as its timestamp
 *    is acceptable, so a recorded request cannot be replayed: inside the
 *    window the nonce is known, after it the timestamp is stale.
 * The replay cache is bounded: when it is full the oldest nonce is forgotten
 * and the lowest acceptable timestamp raised past it, so the bound costs
 * (at worst) spurious refusals under a flood, never a replay. It starts
 * empty with a process, so requests stamped before the process started are
 * refused: one recorded before a restart cannot be replayed after it.
 *
 * Everything but the signature is checked from the headers alone
 * (`checkRequestHead`), so a request that cannot pass is refused before its
 * body is read; the signature over the body comes last (`verifyRequestBody`).
 *
 * Status codes: a wrong or missing cluster id is 403; a missing, stale,
 * replayed or wrongly signed request is 401; a request meant for another
 * member is 421; without a secret, a malformed sender or receiver id is 400.
 *
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { InvalidArgumentError } from "../errors.ts";
import { isMemberId } from "../raft/limits.ts";

/** Header naming the cluster the sender belongs to. */
export const HEADER_CLUSTER = "x-raft-cluster";
/** Header naming the sender's member id (as it is: member ids are URI-safe). */
export const HEADER_FROM = "x-raft-from";
/** Header naming the intended receiver's member id. */
export const HEADER_TO = "x-raft-to";
/** Header with the sender's wall-clock time in ms since the Unix epoch (decimal). */
export const HEADER_TS = "x-raft-ts";
/** Header with a value the sender never reuses (see `NonceSource`). */
export const HEADER_NONCE = "x-raft-nonce";
/** Header with the HMAC-SHA-256 of the request, lower-case hex. */
export const HEADER_SIG = "x-raft-sig";

/** Default of how far a request's timestamp may be from the receiver's clock. */
export const CLOCK_SKEW_MS_MAX_DEFAULT = 30_000;
/** Default bound of remembered nonces (about 100 bytes each). */
export const REPLAY_CACHE_ENTRIES_MAX_DEFAULT = 100_000;

const _NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/;
const _TS_RE = /^[0-9]{1,15}$/;
const _SIG_RE = /^[0-9a-f]{64}$/;

const _utf8Encoder = new TextEncoder();

/**
 * Compares two byte strings in time that depends only on their lengths, so
 * a forger learns nothing from how fast a wrong MAC is refused.
 *
 * @returns true if `a` and `b` hold the same bytes.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function _hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function _bytesToHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += (b < 16 ? "0" : "") + b.toString(16);
  return s;
}

/** The signed bytes before the body. Fields cannot contain "\n" (they are header values and a URL path), so the framing is unambiguous. */
function _canonicalPrefix(method: string, path: string, cluster: string, from: string, to: string, ts: string, nonce: string): Uint8Array {
  return _utf8Encoder.encode(`raft-peer-v1\n${method}\n${path}\n${cluster}\n${from}\n${to}\n${ts}\n${nonce}\n`);
}

function _mac(secret: Uint8Array, prefix: Uint8Array, body: Uint8Array): Uint8Array {
  return hmac.create(sha256, secret).update(prefix).update(body).digest();
}

/**
 * Makes nonces that one process never repeats: a random 96-bit prefix (fresh
 * per source) and a counter. Cheaper than 16 random bytes per request and
 * just as unique.
 */
export class NonceSource {
  readonly #prefix: string;
  /** Invariant: strictly increases; a safe integer. */
  #counter = 0;
  constructor() {
    const r = new Uint8Array(12);
    globalThis.crypto.getRandomValues(r);
    this.#prefix = _bytesToHex(r);
  }
  /** The next nonce (matches `[A-Za-z0-9_-]{8,64}`). */
  next(): string {
    this.#counter++;
    if (!Number.isSafeInteger(this.#counter)) throw new Error("Assertion failed: nonce counter overflow");
    return `${this.#prefix}-${this.#counter.toString(36)}`;
  }
}

/** What `signRequest` needs. */
export interface SignParams {
  /** The cluster secret, or null when the cluster runs without one. */
  readonly secret: Uint8Array | null;
  readonly clusterId: string;
  /** The sender's member id. */
  readonly from: string;
  /** The receiver's member id. */
  readonly to: string;
  readonly method: string;
  /** Path and query of the request URL exactly as sent, e.g. "/raft/v1/messages". */
  readonly path: string;
  readonly body: Uint8Array;
  /** The sender's wall clock, ms since the epoch. */
  readonly nowMs: number;
  /** A value this sender never used before (`NonceSource.next()`). */
  readonly nonce: string;
}

/**
 * The headers that authenticate one request.
 *
 * @returns Header name to value; without a secret only cluster, from and to.
 * @throws {InvalidArgumentError} If the nonce or clock value is malformed.
 */
export function signRequest(p: SignParams): Record<string, string> {
  const from = encodeURIComponent(p.from);
  const to = encodeURIComponent(p.to);
  const headers: Record<string, string> = {
    [HEADER_CLUSTER]: encodeURIComponent(p.clusterId),
    [HEADER_FROM]: from,
    [HEADER_TO]: to,
  };
  if (p.secret === null) return headers;
  if (!_NONCE_RE.test(p.nonce)) throw new InvalidArgumentError(`Nonce ${JSON.stringify(p.nonce)} must match ${_NONCE_RE.source}`);
  if (!Number.isSafeInteger(p.nowMs) || p.nowMs < 0) throw new InvalidArgumentError(`Clock value ${p.nowMs} must be a non-negative integer of ms`);
  const ts = String(p.nowMs);
  const prefix = _canonicalPrefix(p.method, p.path, headers[HEADER_CLUSTER]!, from, to, ts, p.nonce);
  headers[HEADER_TS] = ts;
  headers[HEADER_NONCE] = p.nonce;
  headers[HEADER_SIG] = _bytesToHex(_mac(p.secret, prefix, p.body));
  return headers;
}

/**
 * Remembers accepted (sender, nonce) pairs for as long as their timestamps
 * stay acceptable, bounded in entries.
 *
 * Invariant: every pair accepted with a timestamp > `#floorTs` whose
 * timestamp is still inside the window is in `#seen`; a request whose
 * timestamp is <= `#floorTs` is refused.
 */
export class ReplayCache {
  readonly #windowMs: number;
  readonly #entriesMax: number;
  /** key -> timestamp, in insertion order (roughly timestamp order). */
  readonly #seen = new Map<string, number>();
  /**
   * Highest timestamp among forgotten entries, or the moment this cache was
   * made (the process started): nothing at or below it is accepted, so a
   * request recorded before a restart cannot be replayed after it, when the
   * cache that knew its nonce is gone.
   */
  #floorTs: number;

  /**
   * @param windowMs How long a nonce must be remembered: the clock-skew window.
   * @param entriesMax Bound on remembered nonces.
   * @param floorTs Requests stamped at or before this are refused (the wall clock when the process started); -1 for none.
   */
  constructor(windowMs: number, entriesMax: number, floorTs = -1) {
    if (!(windowMs > 0) || !Number.isSafeInteger(entriesMax) || entriesMax < 1) {
      throw new InvalidArgumentError(`Replay cache needs windowMs > 0 and entriesMax >= 1 (got ${windowMs}, ${entriesMax})`);
    }
    this.#windowMs = windowMs;
    this.#entriesMax = entriesMax;
    this.#floorTs = floorTs;
  }

  /**
   * Whether `remember` would refuse this pair now, without recording it: the
   * cheap check made before a body is read (the MAC, checked after, decides).
   */
  refuses(from: string, nonce: string, tsMs: number): boolean {
    return tsMs <= this.#floorTs || this.#seen.has(`${from}\u0000${nonce}`);
  }

  /** Number of nonces remembered now. */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Records `nonce` from `from` if it is new.
   *
   * @returns false if the pair was seen before, or its timestamp is at or
   * below what the bounded cache can still vouch for.
   */
  remember(from: string, nonce: string, tsMs: number, nowMs: number): boolean {
    // Forget entries whose timestamps the window check refuses anyway (raising
    // the floor too, so a clock stepping back cannot revive them).
    for (const [key, ts] of this.#seen) {
      if (nowMs - ts <= this.#windowMs) break;
      this.#forget(key, ts);
    }
    if (tsMs <= this.#floorTs) return false;
    const key = `${from}\u0000${nonce}`;
    if (this.#seen.has(key)) return false;
    while (this.#seen.size >= this.#entriesMax) {
      const oldest = this.#seen.entries().next();
      if (oldest.done === true) break;
      this.#forget(oldest.value[0], oldest.value[1]);
    }
    if (tsMs <= this.#floorTs) return false;
    this.#seen.set(key, tsMs);
    if (this.#seen.size > this.#entriesMax) throw new Error("Assertion failed: replay cache over its bound");
    return true;
  }

  #forget(key: string, ts: number): void {
    this.#seen.delete(key);
    if (ts > this.#floorTs) this.#floorTs = ts;
  }
}

/** What `checkRequestHead` needs: everything about a request but its body. */
export interface HeadParams {
  readonly secret: Uint8Array | null;
  readonly clusterId: string;
  /** This member's id: requests addressed to another member are refused. */
  readonly nodeId: string;
  /** Header lookup (case-insensitive, as `Headers.get`). */
  readonly header: (name: string) => string | null | undefined;
  /** The receiver's wall clock, ms since the epoch. */
  readonly nowMs: number;
  readonly clockSkewMsMax: number;
  /** Required when `secret` is set. */
  readonly replayCache: ReplayCache | null;
}

/** What `verifyRequest` needs. */
export interface VerifyParams extends HeadParams {
  readonly method: string;
  /** Path and query of the request URL as received. */
  readonly path: string;
  readonly body: Uint8Array;
}

/** The outcome of `verifyRequest`: the authenticated sender, or why not with the HTTP status to answer. */
export type VerifyResult =
  | { readonly ok: true; readonly from: string }
  | { readonly ok: false; readonly status: 400 | 401 | 403 | 421; readonly reason: string };

/** A request head that passed every check that does not need the body. */
export interface RequestHead {
  /** The sender's id, as claimed (authenticated only once `verifyRequestBody` passed). */
  readonly from: string;
  readonly to: string;
  readonly cluster: string;
  /** Present when a secret is set. */
  readonly ts: string | null;
  readonly nonce: string | null;
  readonly sig: string | null;
}

/** The outcome of `checkRequestHead`. */
export type HeadResult =
  | { readonly ok: true; readonly head: RequestHead }
  | { readonly ok: false; readonly status: 400 | 401 | 403 | 421; readonly reason: string };

/**
 * Checks everything a request's headers can tell before its body is read:
 * the cluster id, that sender and receiver are well-formed member ids (they
 * travel as they are: every character of a member id is URI-safe) and that
 * it is addressed to this member, and with a secret that timestamp, nonce
 * and signature are well-formed, the timestamp is fresh (and after this
 * process started) and the nonce unseen. Only then is the body worth
 * reading; `verifyRequestBody` checks the signature over it.
 *
 * Ids never reach a log line or a reply unchecked: a header value that is
 * not a member id is refused without being echoed.
 */
export function checkRequestHead(p: HeadParams): HeadResult {
  const cluster = p.header(HEADER_CLUSTER);
  if (cluster === null || cluster === undefined || cluster !== encodeURIComponent(p.clusterId)) {
    return { ok: false, status: 403, reason: `request is not from cluster ${p.clusterId}` };
  }
  const from = p.header(HEADER_FROM);
  const to = p.header(HEADER_TO);
  const badStatus = p.secret === null ? 400 : 401;
  if (!isMemberId(from) || !isMemberId(to)) {
    return { ok: false, status: badStatus, reason: `missing or malformed ${HEADER_FROM} or ${HEADER_TO} header (member ids: 1-64 letters, digits, '.', '_' or '-')` };
  }
  if (p.secret === null) {
    if (to !== p.nodeId) return { ok: false, status: 421, reason: `request is addressed to ${to}, this member is ${p.nodeId}` };
    return { ok: true, head: { from, to, cluster, ts: null, nonce: null, sig: null } };
  }
  const ts = p.header(HEADER_TS);
  const nonce = p.header(HEADER_NONCE);
  const sig = p.header(HEADER_SIG);
  if (ts === null || ts === undefined || !_TS_RE.test(ts)) return { ok: false, status: 401, reason: `missing or malformed ${HEADER_TS}` };
  if (nonce === null || nonce === undefined || !_NONCE_RE.test(nonce)) return { ok: false, status: 401, reason: `missing or malformed ${HEADER_NONCE}` };
  if (sig === null || sig === undefined || !_SIG_RE.test(sig)) return { ok: false, status: 401, reason: `missing or malformed ${HEADER_SIG}` };
  const tsMs = Number(ts);
  if (Math.abs(p.nowMs - tsMs) > p.clockSkewMsMax) {
    return { ok: false, status: 401, reason: `timestamp is ${p.nowMs - tsMs} ms from this member's clock (allowed: ${p.clockSkewMsMax}); check the clocks` };
  }
  if (p.replayCache === null) throw new InvalidArgumentError("checkRequestHead needs a replay cache when a secret is set");
  if (p.replayCache.refuses(from, nonce, tsMs)) return { ok: false, status: 401, reason: "replayed request (nonce already seen, or stamped before this member started)" };
  if (to !== p.nodeId) return { ok: false, status: 421, reason: `request is addressed to ${to}, this member is ${p.nodeId}` };
  return { ok: true, head: { from, to, cluster, ts, nonce, sig } };
}

/**
 * With a secret, checks the signature over the head and `body` in constant
 * time and records the nonce; without one there is nothing to check.
 */
export function verifyRequestBody(p: HeadParams & { readonly method: string; readonly path: string }, head: RequestHead, body: Uint8Array): VerifyResult {
  if (p.secret === null) return { ok: true, from: head.from };
  const { ts, nonce, sig } = head;
  if (ts === null || nonce === null || sig === null || p.replayCache === null) throw new InvalidArgumentError("verifyRequestBody needs the head checkRequestHead returned with the same secret");
  const prefix = _canonicalPrefix(p.method, p.path, head.cluster, head.from, head.to, ts, nonce);
  if (!timingSafeEqual(_mac(p.secret, prefix, body), _hexToBytes(sig))) {
    return { ok: false, status: 401, reason: "bad signature (wrong cluster secret?)" };
  }
  if (!p.replayCache.remember(head.from, nonce, Number(ts), p.nowMs)) return { ok: false, status: 401, reason: "replayed request (nonce already seen)" };
  return { ok: true, from: head.from };
}

/**
 * Checks the cluster id of a request and, with a secret, its signature,
 * freshness and nonce (recording the nonce when all else passed): the
 * head, then the body. The peer routes call the two halves separately, to
 * refuse before reading a body whatever can be refused without it.
 *
 * @returns `{ ok: true, from }` or the status and reason to refuse with.
 */
export function verifyRequest(p: VerifyParams): VerifyResult {
  const h = checkRequestHead(p);
  if (!h.ok) return h;
  return verifyRequestBody(p, h.head, p.body);
}

/** What authenticates a response carrying replies: the answered request and the response's own fields. */
export interface ReplyParams {
  readonly secret: Uint8Array | null;
  readonly clusterId: string;
  /** The replier (the request's receiver). */
  readonly from: string;
  /** The requester. */
  readonly to: string;
  /** Path of the request answered, as it was signed. */
  readonly path: string;
  /** The `x-raft-nonce` of the request answered. */
  readonly requestNonce: string;
  readonly body: Uint8Array;
}

/** The MAC of a reply body (see `signReply`). */
function _replyMac(secret: Uint8Array, p: ReplyParams): Uint8Array {
  return _mac(secret, _canonicalPrefix("REPLY", p.path, encodeURIComponent(p.clusterId), p.from, p.to, "-", p.requestNonce), p.body);
}

/**
 * The headers that authenticate a response carrying replies (`x-raft-reply`,
 * see reply-slots.ts): with a secret, an HMAC over the request's path and
 * nonce, the two ids and the body, so a reply cannot be forged, nor one
 * recorded earlier passed off as the answer to another request (the
 * requester never reuses a nonce). Without a secret: none (the requester
 * checks the messages' ids, as the routes do without a secret).
 */
export function signReply(p: ReplyParams): Record<string, string> {
  if (p.secret === null) return {};
  if (!_NONCE_RE.test(p.requestNonce)) throw new InvalidArgumentError(`Nonce ${JSON.stringify(p.requestNonce)} must match ${_NONCE_RE.source}`);
  return { [HEADER_SIG]: _bytesToHex(_replyMac(p.secret, p)) };
}

/**
 * Checks a response's replies signature (see `signReply`) in constant time.
 *
 * @returns null if it is authentic (or there is no secret), else why not.
 */
export function verifyReply(p: ReplyParams & { readonly sig: string | undefined }): string | null {
  if (p.secret === null) return null;
  if (p.sig === undefined || !_SIG_RE.test(p.sig)) return `missing or malformed ${HEADER_SIG} on a reply`;
  return timingSafeEqual(_replyMac(p.secret, p), _hexToBytes(p.sig)) ? null : "bad signature on a reply (wrong cluster secret?)";
}
