/**
 * The two credentials of a cluster with a secret, kept apart:
 *
 * - the **cluster secret** (the peer key, `--secret-file`) signs peer RPCs
 *   with HMAC-SHA-256 (`./auth.ts`). It never travels: members prove they
 *   hold it by signing, and nobody else needs it.
 * - the **client token**, `HMAC-SHA-256(secret, "raft-client-token-v1")` in
 *   hex, is what clients send as `Authorization: Bearer <token>`. Anyone
 *   holding the secret can derive it (members, an operator on a member's
 *   host), but the token cannot sign a peer request: a client, or anyone
 *   who reads a client's traffic, can call the client API and nothing more.
 *
 * Bearer tokens are compared in constant time (both sides hashed first, so
 * neither the contents nor the length leak through timing), and a client
 * sends its token on a redirect only to a host it was told to trust.
 *
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

const _utf8 = new TextEncoder();
const _CLIENT_TOKEN_LABEL = _utf8.encode("raft-client-token-v1");

/**
 * The client token of a cluster secret (64 lower-case hex characters).
 *
 * @example
 * ```ts
 * const token = clientTokenFor(new TextEncoder().encode("0123456789abcdef0123"));
 * fetch(url, { headers: { authorization: `Bearer ${token}` } });
 * ```
 */
export function clientTokenFor(secret: Uint8Array): string {
  return bytesToHex(hmac(sha256, secret, _CLIENT_TOKEN_LABEL));
}

/**
 * Compares two byte strings in time that depends on neither their contents,
 * nor where they differ, nor their lengths: both are hashed to 32 bytes
 * first, then every byte is compared.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const ha = sha256(a);
  const hb = sha256(b);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= ha[i]! ^ hb[i]!;
  return diff === 0;
}

/** Whether an `Authorization` header carries `Bearer <token>` (compared in constant time). */
export function bearerMatches(header: string | null | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? "");
  // Compared even when malformed, so the time taken says nothing about why it failed.
  const given = _utf8.encode(m === null ? "" : m[1]!);
  return constantTimeEqual(given, _utf8.encode(token)) && m !== null;
}

/** The host name of an http(s) URL, lower-cased, or null if it is not one. */
function _host(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.hostname.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Whether credentials may be sent to `target` when a redirect points there:
 * only to the host of the request being redirected or to a host of
 * `trusted` (the members the client was given). A redirect elsewhere is
 * followed without them (as browsers do), so a member, or anyone on the
 * path, cannot send a client's token to a host of its choosing.
 */
export function mayCarryCredentials(target: string, from: string, trusted: readonly string[]): boolean {
  const host = _host(target);
  if (host === null) return false;
  if (host === _host(from)) return true;
  return trusted.some((u) => _host(u) === host);
}
