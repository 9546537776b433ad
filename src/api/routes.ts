/**
 * Everything a member serves to clients and operators, beside the peer RPC
 * routes: the KV store, `/status`, `/cluster/...` and `/metrics`. Mount it
 * through `RaftNodeOptions.routes`:
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
import { clusterRoutes } from "./cluster-routes.ts";
import { CLUSTER_ID_HEADER } from "./http.ts";
import { kvRoutes } from "./kv-routes.ts";
import type { KvRouteOptions } from "./kv-routes.ts";
import { metricsRoute } from "./metrics.ts";

/** Options of `apiRoutes`. */
export interface ApiOptions extends KvRouteOptions {
  /**
   * With a secret, every route but `/status` and `/metrics` needs
   * `Authorization: Bearer <secret>` (the secret's UTF-8 text).
   */
  readonly secret?: Uint8Array;
}

/** Mounts the client API (KV, status, cluster, metrics) on a member's Hono app. */
export function apiRoutes(app: Hono, node: RaftNodeApi, kv: KvStateMachine, opts: ApiOptions = {}): void {
  // First, so that refusals (401, 404, 405) carry it too. The id never changes; read once it is known.
  let clusterId: string | null = null;
  app.use("*", async (c, next) => {
    await next();
    clusterId ??= node.status().clusterId;
    c.header(CLUSTER_ID_HEADER, clusterId);
  });
  if (opts.secret !== undefined) {
    const auth = bearerAuth(opts.secret);
    app.use("/kv", auth);
    app.use("/kv/*", auth);
    app.use("/cluster/*", auth);
  }
  clusterRoutes(app, node, { statusExtra: () => ({ kv: { keys: kv.size, idempotencyKeys: kv.idempotencyKeys } }) });
  kvRoutes(app, node, kv, opts);
  metricsRoute(app, node, () => ({
    kv_keys: { help: "Keys in the KV store.", value: kv.size },
    kv_idempotency_keys: { help: "Idempotency keys remembered for exactly-once retries.", value: kv.idempotencyKeys },
  }));
}
