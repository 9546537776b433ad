/**
 * Whether a member is healthy, as `GET /health` and `GET /readyz` answer it
 * (etcd's shape: `{"health": "true" | "false", "reason": "..."}`). Pure: it
 * reads a `NodeStatus` and the wall clock it is given, so it is the same on
 * the member's port (the driver's exact status) and on a client listener in
 * worker mode (the copy, at most one tick old).
 *
 * A member is healthy when it knows a leader that has heard from a quorum
 * within an election timeout, and it has applied what it knows is committed
 * (within `APPLY_LAG_ENTRIES_MAX`):
 * - on the leader, a majority of voters (itself included) sent it a peer
 *   message within the last election timeout (what check-quorum, §6.2, asks
 *   of a leader before it steps down);
 * - on a follower or learner, the leader it follows sent it a peer message
 *   within the last election timeout (the core's own "hears from the
 *   leader" test, measured in wall-clock time here).
 *
 * @module
 */
import type { NodeStatus } from "./types.ts";

/** A member whose applied index trails its commit index by more than this many entries is unhealthy. */
export const APPLY_LAG_ENTRIES_MAX = 5000;

/** The body of `/health`, `/readyz` and `/livez` (etcd's shape: the flag is a string). */
export interface HealthReport {
  readonly health: "true" | "false";
  /** Why it is unhealthy; "" when healthy. */
  readonly reason: string;
}

/** What the check needs besides the status. */
export interface HealthContext {
  /** Wall clock, ms since the epoch (the clock `lastHeardAtMs` is measured on). */
  readonly nowMs: number;
  /** `tickMs * electionTicks`: how recent "recently heard from" is. */
  readonly electionTimeoutMs: number;
}

const _ok: HealthReport = { health: "true", reason: "" };
const _bad = (reason: string): HealthReport => ({ health: "false", reason });

/** How long ago `atMs` was, in words ("never" for null). */
function _ago(atMs: number | null, nowMs: number): string {
  return atMs === null ? "never" : `${Math.max(0, Math.round(nowMs - atMs))} ms ago`;
}

/** Evaluates `/health` for one member's status (see the module comment). */
export function evaluateHealth(s: NodeStatus, ctx: HealthContext): HealthReport {
  const recent = (atMs: number | null) => atMs !== null && ctx.nowMs - atMs <= ctx.electionTimeoutMs;
  if (s.role === "leader") {
    const voters = s.members.filter((m) => m.voter);
    const need = Math.floor(voters.length / 2) + 1;
    const heard = voters.filter((m) => m.id === s.id || recent(m.lastHeardAtMs));
    if (heard.length < need) {
      const silent = voters.filter((m) => m.id !== s.id && !recent(m.lastHeardAtMs)).map((m) => `${m.id} (last heard ${_ago(m.lastHeardAtMs, ctx.nowMs)})`);
      return _bad(`leader without a quorum: ${heard.length} of ${voters.length} voters heard from within the election timeout (${ctx.electionTimeoutMs} ms), ${need} needed; silent: ${silent.join(", ")}`);
    }
  } else if (s.leader === null) {
    return _bad(s.role === "candidate" || s.role === "precandidate" ? `no leader: an election is under way (term ${s.term})` : `no leader known (term ${s.term})`);
  } else {
    const leader = s.members.find((m) => m.id === s.leader!.id);
    const at = leader?.lastHeardAtMs ?? null;
    if (!recent(at)) {
      return _bad(`no word from the leader ${s.leader.id} within the election timeout (${ctx.electionTimeoutMs} ms): last heard ${_ago(at, ctx.nowMs)}`);
    }
  }
  const applyLag = s.commitIndex - s.lastApplied;
  if (applyLag > APPLY_LAG_ENTRIES_MAX) {
    return _bad(`applied index ${s.lastApplied} is ${applyLag} entries behind the commit index ${s.commitIndex} (at most ${APPLY_LAG_ENTRIES_MAX} allowed)`);
  }
  return _ok;
}

/**
 * Evaluates `/readyz`: serving (its log replayed, not closing) and healthy.
 * `serving` is false while the member replays its log at start.
 */
export function evaluateReady(s: NodeStatus, ctx: HealthContext, serving: boolean): HealthReport {
  if (!serving) return _bad("the member is starting: it is replaying its log");
  return evaluateHealth(s, ctx);
}
