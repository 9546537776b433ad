/**
 * Client authentication for the member's HTTP API: with a cluster secret,
 * every route but `/status` and `/metrics` needs `Authorization: Bearer
 * <client token>`, the token derived from the secret (`clientTokenFor`), or
 * HTTP Basic with the token as the password, which is how a browser gives
 * it. The secret itself is not accepted: it signs peer RPCs (in the
 * transport, with HMAC), and a client that holds only the token cannot
 * forge those.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { clientTokenFor, constantTimeEqual } from "../transport/credentials.ts";
import { errorReply } from "./http.ts";

export { constantTimeEqual } from "../transport/credentials.ts";

const _utf8 = new TextEncoder();

/**
 * The credential a request presents: `Authorization: Bearer <token>`, or
 * HTTP Basic with the token as the password (any user name), which is what
 * a browser sends after asking for it. Null when neither is there.
 */
export function presentedCredential(header: string | undefined): string | null {
  const h = header ?? "";
  const bearer = /^Bearer[ ]+(\S+)[ ]*$/i.exec(h);
  if (bearer !== null) return bearer[1]!;
  const basic = /^Basic[ ]+([A-Za-z0-9+/=]+)[ ]*$/i.exec(h);
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
   * asks for the token (as the password) instead of failing: for pages.
   */
  readonly browser?: boolean;
}

/**
 * Middleware that answers 401 unless the request carries the client token
 * of `secret`, as `Authorization: Bearer <token>` or as the password of
 * HTTP Basic.
 */
export function bearerAuth(secret: Uint8Array, opts: AuthOptions = {}): MiddlewareHandler {
  if (secret.length === 0) throw new Error("bearerAuth: the secret is empty");
  const token = _utf8.encode(clientTokenFor(secret));
  const challenge = opts.browser === true ? 'Basic realm="raft", charset="UTF-8"' : 'Bearer realm="raft"';
  return async (c, next) => {
    const given = presentedCredential(c.req.header("authorization"));
    // Compared even when absent, so the time taken says nothing about why it failed.
    const ok = constantTimeEqual(_utf8.encode(given ?? ""), token) && given !== null;
    if (!ok) {
      const message = given === null
        ? "This member needs Authorization: Bearer <client token> (see raft token)" + (opts.browser === true ? ", or the token as the password when the browser asks" : "")
        : "The bearer token is wrong";
      return errorReply(401, message, {}, {
        "www-authenticate": challenge,
        // Unauthenticated: its body, if any, is never read, so the connection is not reused.
        connection: "close",
      });
    }
    await next();
  };
}
