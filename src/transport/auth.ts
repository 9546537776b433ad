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
 * (at worst) spurious refusals under a flood, never a replay.
 *
 * Status codes: a wrong or missing cluster id is 403; a missing, stale,
 * replayed or wrongly signed request is 401; a request meant for another
 * member is 421.
 *
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { InvalidArgumentError } from "../errors.ts";

/** Header naming the cluster the sender belongs to. */
export const HEADER_CLUSTER = "x-raft-cluster";
/** Header naming the sender's member id (URI-encoded). */
export const HEADER_FROM = "x-raft-from";
/** Header naming the intended receiver's member id (URI-encoded). */
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
/** Ids in headers are URI-encoded, so only these characters appear. */
const _HEADER_ID_MAX = 1024;

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
  /** Highest timestamp among forgotten entries: nothing at or below it is accepted. */
  #floorTs = -1;

  /**
   * @param windowMs How long a nonce must be remembered: the clock-skew window.
   * @param entriesMax Bound on remembered nonces.
   */
  constructor(windowMs: number, entriesMax: number) {
    if (!(windowMs > 0) || !Number.isSafeInteger(entriesMax) || entriesMax < 1) {
      throw new InvalidArgumentError(`Replay cache needs windowMs > 0 and entriesMax >= 1 (got ${windowMs}, ${entriesMax})`);
    }
    this.#windowMs = windowMs;
    this.#entriesMax = entriesMax;
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

/** What `verifyRequest` needs. */
export interface VerifyParams {
  readonly secret: Uint8Array | null;
  readonly clusterId: string;
  /** This member's id: requests addressed to another member are refused. */
  readonly nodeId: string;
  readonly method: string;
  /** Path and query of the request URL as received. */
  readonly path: string;
  /** Header lookup (case-insensitive, as `Headers.get`). */
  readonly header: (name: string) => string | null | undefined;
  readonly body: Uint8Array;
  /** The receiver's wall clock, ms since the epoch. */
  readonly nowMs: number;
  readonly clockSkewMsMax: number;
  /** Required when `secret` is set. */
  readonly replayCache: ReplayCache | null;
}

/** The outcome of `verifyRequest`: the authenticated sender, or why not with the HTTP status to answer. */
export type VerifyResult =
  | { readonly ok: true; readonly from: string }
  | { readonly ok: false; readonly status: 400 | 401 | 403 | 421; readonly reason: string };

function _decodeId(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined || raw.length === 0 || raw.length > _HEADER_ID_MAX) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null; // malformed %-escape: the caller refuses the request
  }
}

/**
 * Checks the cluster id of a request and, with a secret, its signature,
 * freshness and nonce (recording the nonce when all else passed).
 *
 * Only call it after the whole body is read: the MAC covers the body.
 *
 * @returns `{ ok: true, from }` or the status and reason to refuse with.
 */
export function verifyRequest(p: VerifyParams): VerifyResult {
  const clusterRaw = p.header(HEADER_CLUSTER);
  if (clusterRaw === null || clusterRaw === undefined || clusterRaw !== encodeURIComponent(p.clusterId)) {
    return { ok: false, status: 403, reason: `request is not from cluster ${p.clusterId}` };
  }
  const fromRaw = p.header(HEADER_FROM);
  const toRaw = p.header(HEADER_TO);
  const from = _decodeId(fromRaw);
  const to = _decodeId(toRaw);
  const badStatus = p.secret === null ? 400 : 401;
  if (from === null || to === null) return { ok: false, status: badStatus, reason: `missing or malformed ${HEADER_FROM} or ${HEADER_TO} header` };
  if (p.secret !== null) {
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
    const prefix = _canonicalPrefix(p.method, p.path, clusterRaw, fromRaw!, toRaw!, ts, nonce);
    if (!timingSafeEqual(_mac(p.secret, prefix, p.body), _hexToBytes(sig))) {
      return { ok: false, status: 401, reason: "bad signature (wrong cluster secret?)" };
    }
    if (p.replayCache === null) throw new InvalidArgumentError("verifyRequest needs a replay cache when a secret is set");
    if (!p.replayCache.remember(from, nonce, tsMs, p.nowMs)) return { ok: false, status: 401, reason: "replayed request (nonce already seen)" };
  }
  if (to !== p.nodeId) return { ok: false, status: 421, reason: `request is addressed to ${to}, this member is ${p.nodeId}` };
  return { ok: true, from };
}
