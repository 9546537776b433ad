/**
 * Client authentication for the member's HTTP API: with a shared secret,
 * every route but `/status` and `/metrics` needs `Authorization: Bearer
 * <secret>` (or HTTP Basic with the secret as the password, which is how a
 * browser gives it). (Peers authenticate their RPCs separately, with HMAC, in the
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

/**
 * The secret a request presents: `Authorization: Bearer <secret>`, or HTTP
 * Basic with the secret as the password (any user name), which is what a
 * browser sends after asking for it. Null when neither is there.
 */
export function presentedSecret(header: string | undefined): string | null {
  const h = header ?? "";
  const bearer = /^Bearer[ ]+(.+)$/i.exec(h);
  if (bearer !== null) return bearer[1]!.trim();
  const basic = /^Basic[ ]+([A-Za-z0-9+/=]+)$/i.exec(h.trim());
  if (basic === null) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(atob(basic[1]!), (ch) => ch.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? null : text.slice(colon + 1);
}

/** Options of `bearerAuth`. */
export interface AuthOptions {
  /**
   * Challenge with HTTP Basic (`WWW-Authenticate: Basic`), so that a browser
   * asks for the secret (as the password) instead of failing: for pages.
   */
  readonly browser?: boolean;
}

/**
 * Middleware that answers 401 unless the request carries the secret, as
 * `Authorization: Bearer <secret>` or as the password of HTTP Basic.
 */
export function bearerAuth(secret: Uint8Array, opts: AuthOptions = {}): MiddlewareHandler {
  if (secret.length === 0) throw new Error("bearerAuth: the secret is empty");
  const challenge = opts.browser === true ? 'Basic realm="raft", charset="UTF-8"' : 'Bearer realm="raft"';
  return async (c, next) => {
    const given = presentedSecret(c.req.header("authorization"));
    if (given === null || !constantTimeEqual(_utf8.encode(given), secret)) {
      const message = given === null
        ? "This member needs Authorization: Bearer <secret> (see --secret-file)" + (opts.browser === true ? ", or the secret as the password when the browser asks" : "")
        : "The bearer secret is wrong";
      return errorReply(401, message, {}, { "www-authenticate": challenge });
    }
    await next();
  };
}
