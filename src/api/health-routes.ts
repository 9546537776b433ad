/**
 * `GET /health`, `GET /livez` and `GET /readyz`: for load balancers,
 * Kubernetes probes and scripts. They answer without a client token (they
 * tell only whether this member is usable, and why not) and carry the
 * member header, so `raft health` can tell a member from another server.
 *
 * - `/livez`: 200 whenever the process answers (even while it replays its log).
 * - `/health`: 200 when the member knows a leader that has heard from a
 *   quorum within an election timeout and it has applied what is committed
 *   (see `src/node/health.ts`); 503 with the reason otherwise.
 * - `/readyz`: as `/health`, and 503 while the member replays its log.
 *
 * Bodies are etcd's: `{"health": "true" | "false", "reason": "..."}`.
 *
 * @module
 */
import type { Hono } from "hono";
import { evaluateHealth, evaluateReady } from "../node/health.ts";
import type { HealthReport } from "../node/health.ts";
import type { NodeStatus, RaftNodeApi } from "../node/types.ts";
import { CLUSTER_ID_HEADER } from "./http.ts";

/** The paths `healthRoutes` mounts. */
export const HEALTH_PATHS = ["/health", "/livez", "/readyz"] as const;

/** Options of `healthRoutes`. */
export interface HealthRouteOptions {
  /** `tickMs * electionTicks` of the member. */
  readonly electionTimeoutMs: number;
  /** False while the member replays its log at start (default: always serving). */
  readonly serving?: () => boolean;
}

function _reply(report: HealthReport, clusterId: string | null): Response {
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
  if (clusterId !== null) headers[CLUSTER_ID_HEADER] = clusterId;
  return new Response(JSON.stringify(report), { status: report.health === "true" ? 200 : 503, headers });
}

/** Mounts `/health`, `/livez` and `/readyz` on a member's app (before any authentication). */
export function healthRoutes(app: Hono, node: RaftNodeApi, opts: HealthRouteOptions): void {
  const serving = opts.serving ?? (() => true);
  const statusOrWhy = (): NodeStatus | HealthReport => {
    try {
      return node.status();
    } catch (err) {
      return { health: "false", reason: `the member is closing: ${(err as Error).message}` };
    }
  };
  const answer = (check: (s: NodeStatus) => HealthReport) => {
    const s = statusOrWhy();
    if ("health" in s) return _reply(s, null);
    return _reply(check(s), s.clusterId);
  };
  const ctx = () => ({ nowMs: Date.now(), electionTimeoutMs: opts.electionTimeoutMs });
  app.get("/livez", () => {
    const s = statusOrWhy();
    return _reply({ health: "true", reason: "" }, "health" in s ? null : s.clusterId);
  });
  app.get("/health", () => answer((s) => evaluateHealth(s, ctx())));
  app.get("/readyz", () => answer((s) => evaluateReady(s, ctx(), serving())));
}
