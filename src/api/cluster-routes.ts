/**
 * Cluster routes for operators: `GET /status` (this member's view, for
 * `raft status`), `GET /cluster/members`, `POST /cluster/members` (add:
 * learner, caught up, promoted), `DELETE /cluster/members/:id`,
 * `POST /cluster/transfer` (leadership, §3.10).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { MemberStatus, NodeStatus, RaftNodeApi } from "../node/types.ts";
import type { NodeId } from "../raft/types.ts";
import { NotLeaderError, RaftError } from "../errors.ts";
import { errorReply, failureReply, json, parseJsonObject, readBody } from "./http.ts";
import { checkBaseUrl, checkMemberId } from "./validate.ts";
import { VERSION } from "../version.ts";

/** The role `/status` reports: a pre-candidate counts as a candidate (`preCandidate` tells them apart). */
export type ApiRole = "leader" | "follower" | "candidate" | "learner";

/** Catch-up progress of a member being added, as last reported by the node's events. */
export interface CatchUpProgress {
  readonly round: number;
  readonly lag: number;
  /** Set when catching up was given up. */
  readonly failed: string | null;
}

/** One member in `/status`: the node's view of it, plus catch-up progress. */
export interface StatusMember extends MemberStatus {
  readonly catchUp: CatchUpProgress | null;
}

/**
 * The body of `GET /status`: the node's status, with the role folded for
 * clients (a pre-candidate reports as a candidate, `preCandidate` tells).
 */
export interface StatusBody extends Omit<NodeStatus, "role" | "members"> {
  readonly role: ApiRole;
  readonly preCandidate: boolean;
  readonly members: readonly StatusMember[];
  /** The package version the member runs. */
  readonly version: string;
  /** Seconds since this member's routes were mounted (about when it started), to one decimal. */
  readonly uptimeSeconds: number;
  /** Whatever the service adds (the KV store: its key count). */
  readonly [extra: string]: unknown;
}

/** Builds the `/status` body from a node's status. */
export function statusBody(s: NodeStatus, catchUp: ReadonlyMap<NodeId, CatchUpProgress>, extra: Record<string, unknown> = {}, uptimeSeconds = 0): StatusBody {
  return {
    ...extra,
    id: s.id,
    url: s.url,
    clusterId: s.clusterId,
    role: s.role === "precandidate" ? "candidate" : s.role,
    preCandidate: s.role === "precandidate",
    term: s.term,
    leader: s.leader === null ? null : { id: s.leader.id, url: s.leader.url },
    commitIndex: s.commitIndex,
    lastApplied: s.lastApplied,
    lastIndex: s.lastIndex,
    firstIndex: s.firstIndex,
    members: s.members.map((m) => ({
      id: m.id,
      url: m.url,
      voter: m.voter,
      matchIndex: m.matchIndex,
      lag: m.lag,
      reachable: m.reachable,
      snapshotTransfer: m.snapshotTransfer,
      lastHeardAtMs: m.lastHeardAtMs,
      catchUp: catchUp.get(m.id) ?? null,
    })),
    pendingConfigChange: s.pendingConfigChange,
    runtime: s.runtime,
    version: VERSION,
    uptimeSeconds,
  };
}

/** Options of `clusterRoutes`. */
export interface ClusterRouteOptions {
  /** Extra fields for `/status`. */
  readonly statusExtra?: () => Record<string, unknown>;
}

const _BODY_BYTES_MAX = 64 * 1024;

async function _jsonBody(c: Context, what: string, emptyOk: boolean): Promise<Record<string, unknown> | Response> {
  const body = await readBody(c.req.raw, _BODY_BYTES_MAX, what);
  if (!body.ok) return body.reply;
  if (emptyOk && body.bytes.length === 0) return {};
  const parsed = parseJsonObject(body.bytes, what);
  return parsed.ok ? parsed.value : parsed.reply;
}

/** How long a membership request waits for the leader to be ready for a change. */
const _SETTLE_TIMEOUT_MS = 5000;
const _SETTLE_POLL_MS = 20;

/**
 * Waits (bounded) until a leader can take a membership change: no change
 * pending, and everything it held when asked is committed (so an entry of
 * its own term is, its no-op: the single-server change rule of dissertation
 * §4.1 and its erratum). Otherwise the node refuses with a
 * MembershipChangeError that only means "retry shortly", which a client
 * could not tell from a real refusal. Returns at once on a follower (the
 * call will redirect).
 */
async function _settledForChange(node: RaftNodeApi): Promise<void> {
  const first = node.status();
  if (first.role !== "leader") return;
  const target = first.lastIndex;
  const deadline = Date.now() + _SETTLE_TIMEOUT_MS;
  for (;;) {
    const s = node.status();
    if (s.role !== "leader" || (!s.pendingConfigChange && s.commitIndex >= target) || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, _SETTLE_POLL_MS));
  }
}

/**
 * A membership change or transfer asked of a member that is not the leader:
 * the 307 (or 503) answer, checked before calling the node so that a
 * follower with a stale view never answers for the leader (e.g. "removed"
 * for a member it has not yet heard was added). Null on the leader.
 */
function _redirectUnlessLeader(c: Context, node: RaftNodeApi): Response | null {
  const s = node.status();
  if (s.role === "leader") return null;
  return failureReply(c, new NotLeaderError(s.leader?.id ?? null, s.leader?.url ?? null), "read");
}

/** Mounts `/status` and the `/cluster/...` routes; returns the function behind `/status` (for the event stream). */
export function clusterRoutes(app: Hono, node: RaftNodeApi, opts: ClusterRouteOptions = {}): { status: () => StatusBody } {
  // Catch-up progress comes only as events: remember the latest per member.
  const catchUp = new Map<NodeId, CatchUpProgress>();
  node.on((e) => {
    if (e.type === "catch-up") catchUp.set(e.id, { round: e.round, lag: e.lag, failed: null });
    else if (e.type === "catch-up-failed") catchUp.set(e.id, { round: catchUp.get(e.id)?.round ?? 0, lag: catchUp.get(e.id)?.lag ?? 0, failed: e.reason });
    else if (e.type === "membership") {
      for (const m of e.members) if (m.voter) catchUp.delete(m.id);
    }
  });

  const members = () => {
    const s = node.status();
    return { leader: s.leader, members: s.members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })) };
  };

  const startedAtMs = performance.now();
  const status = () => statusBody(node.status(), catchUp, opts.statusExtra?.() ?? {}, Math.round((performance.now() - startedAtMs) / 100) / 10);
  app.get("/status", (c) => c.json(status()));

  app.get("/cluster/members", (c) => c.json(members()));

  app.post("/cluster/members", async (c) => {
    const body = await _jsonBody(c, "add-member request", false);
    if (body instanceof Response) return body;
    const id = checkMemberId(body.id);
    if (!id.ok) return errorReply(400, id.error);
    const url = checkBaseUrl(body.url, "member URL");
    if (!url.ok) return errorReply(400, url.error);
    if (body.voter !== undefined && body.voter !== true) {
      return errorReply(400, '"voter": false is not supported: a new member is added as a learner, caught up, then promoted to voter');
    }
    const redirect = _redirectUnlessLeader(c, node);
    if (redirect !== null) return redirect;
    try {
      await _settledForChange(node);
      await node.addMember(id.value, url.value);
    } catch (err) {
      return failureReply(c, err, "write");
    }
    return json(members());
  });

  app.delete("/cluster/members/:id", async (c) => {
    const id = checkMemberId(c.req.param("id"));
    if (!id.ok) return errorReply(400, id.error);
    const redirect = _redirectUnlessLeader(c, node);
    if (redirect !== null) return redirect;
    try {
      await _settledForChange(node);
      await node.removeMember(id.value);
    } catch (err) {
      return failureReply(c, err, "write");
    }
    return json(members());
  });

  app.post("/cluster/transfer", async (c) => {
    const body = await _jsonBody(c, "transfer request", true);
    if (body instanceof Response) return body;
    let to: string | undefined;
    if (body.to !== undefined && body.to !== null) {
      const id = checkMemberId(body.to);
      if (!id.ok) return errorReply(400, id.error);
      to = id.value;
    }
    const redirect = _redirectUnlessLeader(c, node);
    if (redirect !== null) return redirect;
    try {
      await node.transferLeadership(to);
    } catch (err) {
      // An aborted transfer is a plain RaftError: the cluster refused, nothing changed.
      if (err instanceof RaftError && err.constructor === RaftError) return errorReply(409, (err as RaftError).message);
      // Nothing is appended by a transfer: a timeout changes no data.
      return failureReply(c, err, "read");
    }
    return json({ leader: node.status().leader });
  });
  return { status };
}
