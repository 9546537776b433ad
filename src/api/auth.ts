/**
 * Client authentication for the member's HTTP API: with a shared secret,
 * every route but `/status` and `/metrics` needs `Authorization: Bearer
 * <secret>`. (Peers authenticate their RPCs separately, with HMAC, in the
 * transport.)
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { sha256 } from "@noble/hashes/sha2.js";
import { errorReply } from "./http.ts";

const _utf8 = new TextEncoder();

/**
 * Compares two byte strings in time that depends on neither their contents
 * nor where they differ: both are hashed to 32 bytes first, then every byte
 * is compared (a plain `===` would stop at the first difference and leak
 * the secret's prefix through timing).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const ha = sha256(a);
  const hb = sha256(b);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= ha[i]! ^ hb[i]!;
  return diff === 0;
}

/** Middleware that answers 401 unless the request carries `Authorization: Bearer <secret>`. */
export function bearerAuth(secret: Uint8Array): MiddlewareHandler {
  if (secret.length === 0) throw new Error("bearerAuth: the secret is empty");
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer[ ]+(.+)$/i.exec(header);
    if (m === null || !constantTimeEqual(_utf8.encode(m[1]!.trim()), secret)) {
      return errorReply(401, m === null ? "This member needs Authorization: Bearer <secret> (see --secret-file)" : "The bearer secret is wrong", {}, {
        "www-authenticate": 'Bearer realm="raft"',
      });
    }
    await next();
  };
}
