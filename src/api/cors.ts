/**
 * Cross-origin rules for the client routes, so that the dashboard loaded
 * from one member can talk to the others (each member is its own origin:
 * another port) and no other web page can.
 *
 * - A browser request whose `Origin` is the origin of a member's URL (as the
 *   current configuration lists it) gets CORS answers: preflights for the
 *   `Authorization` and `Content-Type` headers and for POST and DELETE.
 * - A write (anything but GET, HEAD and OPTIONS) that a browser sends from
 *   any other origin is refused with 403 before it reaches the node: a
 *   "simple" cross-site POST needs no preflight, so without this check any
 *   page an operator visits could transfer leadership or remove a member.
 *   Requests without `Origin` (the CLI, curl, peers) are not affected, and
 *   get no CORS headers at all.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { RaftNodeApi } from "../node/types.ts";
import { errorReply } from "./http.ts";

/** The origins (`scheme://host:port`) of every member's URL, this member's included. */
export function memberOrigins(node: RaftNodeApi): Set<string> {
  const out = new Set<string>();
  const add = (url: string) => {
    try {
      out.add(new URL(url).origin);
    } catch {
      // a member URL is checked when it is added; nothing to allow otherwise
    }
  };
  add(node.url);
  for (const m of node.status().members) add(m.url);
  return out;
}

const _READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** How long a browser may cache a preflight answer. */
const _PREFLIGHT_MAX_AGE_S = 600;

/** The middleware for every client route (see the module comment). */
export function memberCors(node: RaftNodeApi): MiddlewareHandler {
  const allow = cors({
    origin: (origin) => (origin !== "" && memberOrigins(node).has(origin) ? origin : null),
    allowMethods: ["GET", "HEAD", "POST", "PUT", "DELETE"],
    allowHeaders: ["authorization", "content-type", "idempotency-key"],
    exposeHeaders: ["location", "retry-after"],
    maxAge: _PREFLIGHT_MAX_AGE_S,
  });
  return async (c, next) => {
    const origin = c.req.header("origin");
    // No Origin, no CORS: the request is not a browser's cross-origin one, so it gets no CORS headers.
    // Hono's cors would set one before the route runs, which makes Hono rebuild the route's Response
    // to copy it over (measured on Node: ~7% of a leader's busy time at 128 connections).
    if (origin === undefined) return next();
    if (!_READ_METHODS.has(c.req.method)) {
      const own = new URL(c.req.url).origin;
      if (origin !== own && !memberOrigins(node).has(origin)) {
        return errorReply(403, `Refused a ${c.req.method} from a web page at ${origin}: only pages served by this cluster's members may write`);
      }
    }
    return allow(c, next);
  };
}
