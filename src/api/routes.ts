/**
 * Everything a member serves to clients and operators, beside the peer RPC
 * routes: the KV store, `/status`, `/cluster/...`, `/metrics`, and the
 * dashboard (`/ui`, fed by `/events`). Mount it through
 * `RaftNodeOptions.routes`:
 *
 * ```ts
 * const kv = new KvStateMachine();
 * const node = await RaftNode.start({ dataDir, stateMachine: kv, routes: (app, n) => apiRoutes(app, n, kv) });
 * ```
 *
 * @module
 */
import type { Hono } from "hono";
import type { RaftNodeApi } from "../node/types.ts";
import type { KvStateMachine } from "../kv/state-machine.ts";
import { bearerAuth } from "./auth.ts";
import { clientTokenFor } from "../transport/credentials.ts";
import { clusterRoutes } from "./cluster-routes.ts";
import { memberCors } from "./cors.ts";
import { eventsRoute } from "./events.ts";
import type { EventHub, EventStreamOptions } from "./events.ts";
import { CLUSTER_ID_HEADER } from "./http.ts";
import { kvRoutes } from "./kv-routes.ts";
import type { KvRouteOptions } from "./kv-routes.ts";
import { metricsRoute } from "./metrics.ts";
import { uiRoute } from "./ui/page.ts";

/** Options of `apiRoutes`. */
export interface ApiOptions extends KvRouteOptions {
  /**
   * With a secret, every route but `/status` and `/metrics` (and the
   * health routes, mounted by the node itself: src/api/health-routes.ts) needs
   * `Authorization: Bearer <client token>` (`clientTokenFor(secret)`), or
   * HTTP Basic with the token as the password (how a browser gives it to
   * `/ui`). The secret itself never leaves the member.
   */
  readonly secret?: Uint8Array;
  /** The pace of `/events` (tests make it quicker). */
  readonly eventStream?: Omit<EventStreamOptions, "localStatus" | "secret">;
}

/** The client routes, each behind the member-origin CORS rules. */
const _CLIENT_PATHS = ["/kv", "/kv/*", "/cluster/*", "/status", "/metrics", "/events", "/ui"];

/** What `apiRoutes` mounted that a caller may want to look at. */
export interface MountedApi {
  /** The state behind `/events` (its subscriber count, for tests and diagnostics). */
  readonly events: EventHub;
}

/** Mounts the client API (KV, status, cluster, metrics, dashboard) on a member's Hono app. */
export function apiRoutes(app: Hono, node: RaftNodeApi, kv: KvStateMachine, opts: ApiOptions = {}): MountedApi {
  // First, so that refusals (401, 404, 405) carry it too. The id never changes; read once it is known.
  let clusterId: string | null = null;
  app.use("*", async (c, next) => {
    await next();
    clusterId ??= node.status().clusterId;
    // On the response's own headers: `c.header` after the route has answered rebuilds the whole
    // Response to add one header (measured on Node: a copy of every response, ~7% of a busy leader).
    // A Response whose headers are immutable (`Response.redirect`, a fetched one) still goes through it.
    try {
      c.res.headers.set(CLUSTER_ID_HEADER, clusterId);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      c.header(CLUSTER_ID_HEADER, clusterId);
    }
  });
  const cors = memberCors(node);
  for (const p of _CLIENT_PATHS) app.use(p, cors);
  if (opts.secret !== undefined) {
    const auth = bearerAuth(opts.secret);
    app.use("/kv", auth);
    app.use("/kv/*", auth);
    app.use("/cluster/*", auth);
    app.use("/events", auth);
    app.use("/ui", bearerAuth(opts.secret, { browser: true }));
  }
  // What the page and the event stream present to other members: the client token, never the secret.
  const token = opts.secret === undefined ? null : clientTokenFor(opts.secret);
  const { status } = clusterRoutes(app, node, { statusExtra: () => ({ kv: { keys: kv.size, idempotencyKeys: kv.idempotencyKeys } }) });
  kvRoutes(app, node, kv, opts);
  metricsRoute(app, node, () => ({
    kv_keys: { help: "Keys in the KV store.", value: kv.size },
    kv_idempotency_keys: { help: "Idempotency keys remembered for exactly-once retries.", value: kv.idempotencyKeys },
  }));
  const events = eventsRoute(app, node, { ...opts.eventStream, localStatus: status, secret: token });
  uiRoute(app, { token });
  return { events };
}
