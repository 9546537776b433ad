/**
 * Hard limits on what the Raft core and the wire accept from peers, shared by
 * the pure core, the codec and the sender ("put a limit on everything"). Every
 * one is far above what a healthy cluster reaches, and low enough that no
 * input can push a number past what the code can represent or a message past
 * what a receiver can decode cheaply.
 *
 * @module
 */

/**
 * Terms at or above this (2^52) are refused wherever they enter: the codec
 * refuses them in a body and the core ignores a message carrying one. The
 * core never campaigns into it either, so its own term + 1 is always a safe
 * integer (a term of 2^53 - 1 once made every later election overflow and
 * stop the member, for good, since the term is durable). A cluster holding
 * one election per millisecond would need 142,000 years to get there.
 */
export const TERM_MAX = 2 ** 52;

/**
 * Most entries in one AppendEntries: the leader never puts more in one
 * message and the codec refuses more. Entry data is bounded by bytes
 * elsewhere; this bounds the count, which the bytes alone do not (an empty
 * entry costs 13 bytes on the wire and a whole object once decoded).
 */
export const MSG_APP_ENTRIES_MAX = 8192;

/** True for a term a peer may send (a safe integer in [0, TERM_MAX)). */
export function isAcceptableTerm(term: number): boolean {
  return Number.isSafeInteger(term) && term >= 0 && term < TERM_MAX;
}

/**
 * Member ids: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a
 * letter or digit. They appear in URLs, headers, log lines and file names,
 * so every entry point (wire, headers, join and membership requests, the
 * identity file) checks them against this one pattern.
 */
export const MEMBER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True when `id` is a well-formed member id (see `MEMBER_ID_RE`). */
export function isMemberId(id: unknown): id is string {
  return typeof id === "string" && MEMBER_ID_RE.test(id);
}
