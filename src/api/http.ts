/**
 * What every client route shares: turning the module's errors into HTTP
 * answers that keep the retry promises (307 and 503: nothing was applied,
 * retry at once; 504: a write's outcome is unknown), reading request bodies
 * with a size cap, and JSON replies.
 *
 * @module
 */
import type { Context } from "hono";
import {
  ClosedError,
  DiskSpaceError,
  InvalidArgumentError,
  MembershipChangeError,
  NotLeaderError,
  ProposalDroppedError,
  TimeoutError,
} from "../errors.ts";
import { readBodyLimited } from "../transport/read-body.ts";
import { redactPaths } from "../transport/sanitize.ts";

/**
 * The header on every answer of a member's client API, carrying its cluster
 * id (as etcd's `X-Etcd-Cluster-ID`): what tells a raft member from any
 * other web server at that URL.
 */
export const CLUSTER_ID_HEADER = "x-raft-cluster-id";

/** Whether the failed operation may have changed the replicated state. */
export type OperationKind = "write" | "read";

/** A JSON reply with `status`. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** An error reply: `{"error": message}` plus optional extra fields. */
export function errorReply(status: number, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return json({ error: message, ...extra }, status, headers);
}

/** The same path and query on another member (for a 307 to the leader). */
export function sameRequestOn(baseUrl: string, requestUrl: string): string {
  const u = new URL(requestUrl);
  return baseUrl.replace(/\/+$/, "") + u.pathname + u.search;
}

/**
 * Maps an error thrown by `RaftNodeApi` to a reply.
 *
 * - NotLeaderError: 307 to the same path on the leader; 503 + Retry-After while no leader is known.
 * - ProposalDroppedError "not-applied": 503 (certainly not applied).
 * - ProposalDroppedError "unknown", and a write's TimeoutError or ClosedError: 504 saying the
 *   outcome is unknown (never 503 or 307, which promise that nothing was applied). A node that
 *   closes rejects proposals already appended with ClosedError, so for a write it cannot promise
 *   "not applied". For a read, ClosedError and TimeoutError are 503.
 * - DiskSpaceError: 507 (refused before anything was appended).
 * - InvalidArgumentError: 400; MembershipChangeError: 409; anything else: 500.
 */
export function failureReply(c: Context, err: unknown, kind: OperationKind): Response {
  if (err instanceof NotLeaderError) {
    if (err.leaderUrl !== null) {
      return errorReply(307, err.message, { leader: { id: err.leaderId, url: err.leaderUrl } }, { location: sameRequestOn(err.leaderUrl, c.req.url) });
    }
    return errorReply(503, err.message, {}, { "retry-after": "1" });
  }
  if (err instanceof ProposalDroppedError) {
    if (err.outcome === "not-applied") return errorReply(503, err.message, { outcome: "not-applied" }, { "retry-after": "1" });
    return errorReply(504, `The write's outcome is unknown: ${err.message}. Retry with the same Idempotency-Key to apply it at most once`, { outcome: "unknown" });
  }
  if (err instanceof TimeoutError || err instanceof ClosedError) {
    if (kind === "write") {
      return errorReply(504, `The write's outcome is unknown: ${err.message}. Retry with the same Idempotency-Key to apply it at most once`, { outcome: "unknown" });
    }
    return errorReply(503, err.message, {}, { "retry-after": "1" });
  }
  if (err instanceof DiskSpaceError) return errorReply(507, err.message, { outcome: "not-applied" });
  if (err instanceof InvalidArgumentError) return errorReply(400, err.message);
  if (err instanceof MembershipChangeError) return errorReply(409, err.message);
  // No file paths in a reply: the member's own log has the whole message.
  const message = redactPaths(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  return errorReply(500, `Internal error: ${message}`, kind === "write" ? { outcome: "unknown" } : {});
}

/** A request body that was too large, or the body. */
export type BodyRead = { readonly ok: true; readonly bytes: Uint8Array } | { readonly ok: false; readonly reply: Response };

/**
 * Reads the request body, stopping as soon as it passes `maxBytes` (a
 * client cannot make the member buffer more than that).
 */
export async function readBody(req: Request, maxBytes: number, what: string, timeoutMs?: number): Promise<BodyRead> {
  const r = await readBodyLimited(req, maxBytes, timeoutMs);
  if (r.ok) return r;
  const message = r.status === 413 ? `The ${what} is larger than the limit of ${maxBytes} bytes` : r.status === 408 ? `The ${what} did not arrive in time: ${r.reason}` : `The ${what} has a problem: ${r.reason}`;
  // The rest of the body is never read: the connection cannot carry another request.
  return { ok: false, reply: errorReply(r.status, message, {}, { connection: "close" }) };
}

/** Parses a JSON object body; a reply (400) if it is not one. */
export function parseJsonObject(bytes: Uint8Array, what: string): { ok: true; value: Record<string, unknown> } | { ok: false; reply: Response } {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    return { ok: false, reply: errorReply(400, `The ${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`) };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reply: errorReply(400, `The ${what} must be a JSON object`) };
  }
  return { ok: true, value: value as Record<string, unknown> };
}
