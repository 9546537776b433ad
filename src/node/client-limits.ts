/**
 * Shedding client load before it reaches the consensus loop: at most
 * `maxInFlight` requests for the user's routes are served at once on a
 * server; the rest are answered at once with 503 and `Retry-After` (an
 * honest refusal: nothing was applied, retry), instead of queueing behind
 * the ones in flight. Peer RPCs never
 * pass through it: a flood of clients cannot starve heartbeats of a slot.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";

/** Default of `maxClientRequests`. */
export const MAX_CLIENT_REQUESTS_DEFAULT = 1024;

/** Middleware admitting at most `maxInFlight` requests at once (see the module doc). */
export function shedExcess(maxInFlight: number): MiddlewareHandler {
  let inFlight = 0;
  return async (c, next) => {
    if (inFlight >= maxInFlight) {
      return c.json({ error: `This member is serving ${inFlight} requests, its limit; nothing was applied, retry shortly`, outcome: "not-applied" }, 503, { "retry-after": "1" });
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  };
}
