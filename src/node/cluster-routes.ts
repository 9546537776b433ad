/**
 * The node-level HTTP routes beside the peer RPCs, and the client side of
 * joining: `GET /raft/v1/info` tells a joining member the cluster id and the
 * members' URLs; `POST /raft/v1/join` asks the leader to add a member
 * (followers redirect to the leader with 307).
 *
 * JSON is fine here: these are called once per join, never on a hot path.
 *
 * @module
 */
import type { Hono } from "hono";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { RuntimeAdapter } from "../../adapters/types.ts";
import { InvalidArgumentError, MembershipChangeError, NotLeaderError, RaftError, TlsError } from "../errors.ts";
import { isMemberId } from "../raft/limits.ts";
import type { Member } from "../raft/types.ts";
import { CLUSTER_ID_HEADER } from "../api/http.ts";
import { bearerMatches, clientTokenFor, mayCarryCredentials } from "../transport/credentials.ts";
import { describeNetworkError } from "../transport/network-error.ts";
import { readBodyLimited } from "../transport/read-body.ts";
import type { RaftNodeApi } from "./types.ts";

/** Path of the cluster information route. */
export const INFO_PATH = "/raft/v1/info";
/** Path of the join route. */
export const JOIN_PATH = "/raft/v1/join";

/**
 * A cluster id: derived from the initial member list (so every member of a
 * statically bootstrapped cluster computes the same one) and a salt (random
 * for a single-member bootstrap, so two such clusters never share an id).
 */
export function clusterIdFor(members: readonly Member[], salt: string): string {
  const text = [...members].map((m) => `${m.id}=${m.url}`).sort().join(",") + `|${salt}`;
  return bytesToHex(sha256(new TextEncoder().encode(text))).slice(0, 16);
}

/** What `GET /raft/v1/info` answers. */
export interface ClusterInfo {
  readonly clusterId: string;
  readonly id: string;
  readonly url: string;
  readonly leader: { readonly id: string; readonly url: string } | null;
  readonly members: readonly Member[];
}

/** Largest join request body (`{"id", "url"}`). */
const _JOIN_BODY_BYTES_MAX = 64 * 1024;

/** Checks `Authorization: Bearer <client token>` in constant time (neither contents nor length leak). */
export function bearerOk(header: string | undefined, secret: Uint8Array | null): boolean {
  if (secret === null) return true;
  return bearerMatches(header, clientTokenFor(secret));
}

/** The header a member sends when it joins: the client token, never the secret itself. */
function _authHeaders(secret: Uint8Array | null): Record<string, string> {
  return secret === null ? {} : { authorization: `Bearer ${clientTokenFor(secret)}` };
}

/** Mounts the info and join routes. */
export function nodeRoutes(app: Hono, opts: { getNode: () => RaftNodeApi & { clusterId: string }; secret: Uint8Array | null }): void {
  app.get(INFO_PATH, (c) => {
    const node = opts.getNode();
    const st = node.status();
    const info: ClusterInfo = {
      clusterId: node.clusterId,
      id: st.id,
      url: st.url,
      leader: st.leader,
      members: st.members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })),
    };
    return c.json(info);
  });
  app.post(JOIN_PATH, async (c) => {
    if (!bearerOk(c.req.header("authorization"), opts.secret)) {
      return c.json({ error: "a valid Authorization: Bearer <client token> header is required" }, 401, { connection: "close" });
    }
    const read = await readBodyLimited(c.req.raw, _JOIN_BODY_BYTES_MAX);
    if (!read.ok) return c.json({ error: `the join request: ${read.reason}` }, read.status, { connection: "close" });
    let body: { id?: unknown; url?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(read.bytes)) as { id?: unknown; url?: unknown };
      if (typeof body !== "object" || body === null) throw new Error("not an object");
    } catch {
      return c.json({ error: "the body must be JSON {\"id\", \"url\"}" }, 400);
    }
    if (typeof body.id !== "string" || typeof body.url !== "string") return c.json({ error: "the body must be JSON {\"id\", \"url\"}" }, 400);
    const node = opts.getNode();
    try {
      await node.addMember(body.id, body.url);
      return c.json({ members: node.status().members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })) });
    } catch (err) {
      if (err instanceof NotLeaderError) {
        if (err.leaderUrl === null) return c.json({ error: err.message }, 503, { "Retry-After": "1" });
        return c.redirect(`${err.leaderUrl}${JOIN_PATH}`, 307);
      }
      if (err instanceof InvalidArgumentError) return c.json({ error: err.message }, 400);
      if (err instanceof MembershipChangeError) return c.json({ error: err.message }, 409);
      return c.json({ error: (err as Error).message }, 503, { "Retry-After": "1" });
    }
  });
}

const _sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The body of a `GET /raft/v1/info` answer, checked (ids and URLs are used as they come), or null if it is not one. */
function _clusterInfo(body: Uint8Array): ClusterInfo | null {
  try {
    const info = JSON.parse(new TextDecoder().decode(body)) as ClusterInfo;
    if (typeof info !== "object" || info === null || typeof info.clusterId !== "string" || !Array.isArray(info.members)) return null;
    for (const m of info.members) {
      if (typeof m !== "object" || m === null || !isMemberId(m.id) || typeof m.url !== "string" || typeof m.voter !== "boolean") return null;
    }
    return info;
  } catch {
    return null;
  }
}

/** ": <message>" from a JSON error body, or "". */
function _errorOf(body: Uint8Array): string {
  try {
    const v = JSON.parse(new TextDecoder().decode(body)) as { error?: unknown };
    return typeof v.error === "string" ? `: ${v.error}` : "";
  } catch {
    return "";
  }
}

/** The client side of joining a running cluster. */
export const joinCluster = {
  /**
   * Asks the given members for the cluster's id and members, retrying (for
   * up to 10 minutes) while none answers or they are starting (503). A URL
   * that answers anything else is some other web server: it is not asked
   * again, and once every URL is one, joining fails at once, naming them.
   *
   * @throws RaftError when every URL is not a raft member, or none answered in time
   */
  async info(rt: RuntimeAdapter, urls: readonly string[], secret: Uint8Array | null, logger: (line: string) => void): Promise<ClusterInfo> {
    const http = rt.httpClient();
    const notMembers = new Map<string, string>();
    const unreachable = new Map<string, string>();
    try {
      const deadline = Date.now() + 600_000;
      for (let attempt = 0; ; attempt++) {
        for (const base of urls) {
          if (notMembers.has(base)) continue;
          try {
            const headers = _authHeaders(secret);
            const res = await http.request({ method: "GET", url: `${base.replace(/\/$/, "")}${INFO_PATH}`, headers, timeoutMs: 5000 });
            unreachable.delete(base);
            if (res.status === 200) {
              const info = _clusterInfo(res.body);
              if (info !== null) return info;
            } else if (res.status === 503) {
              logger(`join: ${base} answered 503 (starting?); retrying`);
              continue;
            } else if (res.headers[CLUSTER_ID_HEADER] !== undefined) {
              // A member that refused (a certificate from another CA, a wrong secret): the operator can fix it.
              const why = `${base} answered ${res.status}${_errorOf(res.body)}`;
              unreachable.set(base, why);
              logger(`join: ${why}; retrying`);
              continue;
            }
            const type = res.headers["content-type"]?.split(";")[0]?.trim();
            const why = `${base} is not a raft member: GET ${INFO_PATH} answered HTTP ${res.status}${type === undefined || type === "" ? "" : ` (${type})`}` +
              (res.status === 200 ? " without cluster information" : "");
            notMembers.set(base, why);
            logger(`join: ${why}`);
          } catch (err) {
            const why = err instanceof TlsError ? err.message : describeNetworkError(err);
            unreachable.set(base, why);
            // A TLS refusal is for the operator to fix: said every time, not every tenth.
            if (err instanceof TlsError) logger(`join: cannot talk to ${base}: ${why}; retrying`);
            else if (attempt % 10 === 0) logger(`join: ${base} is not reachable (${why}); retrying`);
          }
        }
        if (notMembers.size === urls.length) throw new RaftError(`Cannot join: ${[...notMembers.values()].join("; ")}`);
        if (Date.now() > deadline) {
          const detail = [...[...unreachable].map(([u, e]) => `${u}: ${e}`), ...notMembers.values()].join("; ");
          throw new RaftError(`None of ${urls.join(", ")} answered as a raft member for 10 minutes (${detail}); is the cluster running?`);
        }
        await _sleep(Math.min(2000, 200 * (attempt + 1)));
      }
    } finally {
      http.close();
    }
  },

  /** Asks the cluster to add this member (following redirects to the leader), retrying until it is a voter. */
  async requestAdd(
    rt: RuntimeAdapter,
    info: ClusterInfo,
    id: string,
    url: string,
    secret: Uint8Array | null,
    logger: (line: string) => void,
    closed: () => boolean,
  ): Promise<void> {
    const http = rt.httpClient();
    const body = new TextEncoder().encode(JSON.stringify({ id, url }));
    const headers: Record<string, string> = { "content-type": "application/json", ..._authHeaders(secret) };
    const bases = [...new Set([info.leader?.url, ...info.members.map((m) => m.url)].filter((u): u is string => u !== undefined && u !== url))];
    const { authorization: _auth, ...anonymous } = headers;
    try {
      for (let attempt = 0; !closed(); attempt++) {
        for (const base of bases) {
          let target = `${base}${JOIN_PATH}`;
          try {
            for (let hop = 0; hop < 5; hop++) {
              // The token goes only to the members' hosts: a redirect elsewhere gets the request without it.
              const sent = mayCarryCredentials(target, base, bases) ? headers : anonymous;
              const res = await http.request({ method: "POST", url: target, headers: sent, body, timeoutMs: 180_000 });
              if (res.status === 200) {
                logger(`joined the cluster as ${id} (${url})`);
                return;
              }
              const location = res.headers["location"];
              if (res.status === 307 && location !== undefined) {
                target = new URL(location, target).href;
                continue;
              }
              const text = new TextDecoder().decode(res.body);
              if (res.status === 400 || res.status === 401) throw new InvalidArgumentError(`The cluster refused to add ${id}: ${text}`);
              logger(`join: ${target} answered ${res.status} ${text}; retrying`);
              break;
            }
          } catch (err) {
            if (err instanceof InvalidArgumentError) throw err;
            logger(`join: ${target} failed (${describeNetworkError(err)}); retrying`);
          }
          if (closed()) return;
        }
        await _sleep(Math.min(2000, 250 * (attempt + 1)));
      }
    } finally {
      http.close();
    }
  },
};
