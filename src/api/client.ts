/**
 * The client the `raft` command uses to talk to a cluster over the member
 * HTTP API, on the global `fetch` (fine for a CLI; the peer transport has its
 * own, faster client).
 *
 * - Redirects are followed by hand (`redirect: "manual"`, at most 5 hops), so
 *   a 307 to the leader re-sends the same method and body. The bearer token
 *   goes along only to the hosts the client was given (`urls`) and the host
 *   that redirected: a redirect to any other host is followed without it.
 * - 503 (nothing was applied; no leader yet) and 504 (outcome unknown) are
 *   retried until the deadline. That is safe because every write the CLI
 *   sends carries an `Idempotency-Key` (applied at most once, dissertation
 *   §6.3) and membership changes are idempotent.
 * - A member that cannot be reached is skipped for the next URL given; when
 *   none of them answers at all, the call fails at once (no waiting out the
 *   timeout against a cluster that is down).
 * - An answer without the member header (`CLUSTER_ID_HEADER`) comes from
 *   some other web server: the URL "is not a raft member", said in those
 *   words, rather than read as "key not found" or printed as an HTML page.
 *   (A starting member answers 503 with `Retry-After` before its routes are
 *   mounted: that one is retried like any 503.)
 * - Network errors read the same on every runtime (`describeNetworkError`).
 * - TLS: `https://` URLs, and any URL once `tls` is given, go through the
 *   runtime adapter's client (it trusts `tls.ca` and presents `tls.cert`;
 *   loaded only then, so plain commands start as fast as before). A TLS
 *   failure, or plain HTTP sent to an HTTPS member, is reported in one line
 *   saying which (see adapters/shared/tls-errors.ts).
 *
 * @module
 */
import type { HttpClient, RuntimeAdapter, TlsClientOptions } from "../../adapters/types.ts";
import { TlsError } from "../errors.ts";
import { describeNetworkError } from "../transport/network-error.ts";
import { CLUSTER_ID_HEADER } from "./http.ts";

import { mayCarryCredentials } from "../transport/credentials.ts";

/** Where and how to reach the cluster. */
export interface ClientOptions {
  /** Base URLs of members to try, in order. */
  readonly urls: readonly string[];
  /** The client token sent as `Authorization: Bearer` (see `clientTokenFor`), or null. */
  readonly secret: string | null;
  /** Give up (retries included) after this long. */
  readonly timeoutMs: number;
  /** What to trust and present over TLS (`--cacert`, `--cert`, `--key`). */
  readonly tls?: TlsClientOptions;
}

/** A complete answer. */
export interface ClientResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** The URL that finally answered (after redirects). */
  readonly url: string;
}

/** A call's outcome: an answer, or why there was none (`notMember`: every URL tried is some other web server). */
export type ClientResult =
  | { readonly ok: true; readonly res: ClientResponse }
  | { readonly ok: false; readonly error: string; readonly notMember?: true };

/** Redirects went round in circles (private: `call` turns it into a result). */
class _RedirectLoop extends Error {}

/** The URL answered, but not as a raft member (private: `call` and `getJson` turn it into a result). */
class _NotMember extends Error {}

/** Statuses that mean "try again" (503: nothing was applied; 504: outcome unknown, the key makes a retry safe). */
const _RETRY_STATUSES = new Set([503, 504]);
const _REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const _HOPS_MAX = 5;
/** Pause between rounds over every URL: short, since 503 promises a retry may come at once. */
const _RETRY_PAUSE_MS = 200;

/** Throws `_NotMember` for an answer that no member would give (see the module comment). */
function _checkMember(method: string, base: string, target: string, res: { readonly status: number; readonly headers: Headers }): void {
  if (res.headers.has(CLUSTER_ID_HEADER)) return;
  if (res.status === 503 && res.headers.has("retry-after")) return;
  const type = res.headers.get("content-type")?.split(";")[0]?.trim();
  const path = new URL(target).pathname;
  throw new _NotMember(`${base} is not a raft member: ${method} ${path} answered HTTP ${res.status}${type === undefined || type === "" ? "" : ` (${type})`}, without the ${CLUSTER_ID_HEADER} header of a member`);
}

/** A text rendering of a reply body: its `error` field if it is one, else the text. */
export function replyMessage(res: ClientResponse): string {
  const text = new TextDecoder().decode(res.body).trim();
  try {
    const v = JSON.parse(text) as { error?: unknown };
    if (typeof v.error === "string") return v.error;
  } catch {
    // not JSON
  }
  return text === "" ? `HTTP ${res.status}` : text;
}

/** The runtime adapter, loaded on first use (client commands without TLS never load it). */
let _runtime: Promise<RuntimeAdapter> | null = null;
const _adapter = () => (_runtime ??= import("../../adapters/mod.ts").then((m) => m.runtime));

/** Talks to a cluster through any of its members. */
export class ApiClient {
  private _tlsClient: HttpClient | null = null;

  constructor(private readonly _opts: ClientOptions) {
    if (_opts.urls.length === 0) throw new Error("ApiClient needs at least one URL");
  }

  /** One request through the adapter's client (TLS), shaped like a fetch answer. */
  private async _viaAdapter(method: string, url: string, body: Uint8Array | undefined, headers: Record<string, string>, deadline: number): Promise<{ status: number; headers: Headers; body: Uint8Array }> {
    this._tlsClient ??= (await _adapter()).httpClient(this._opts.tls ?? {});
    const req = { method: method as "GET" | "POST" | "PUT" | "DELETE", url, headers, timeoutMs: Math.max(1, deadline - Date.now()) };
    const res = await this._tlsClient.request(body === undefined ? req : { ...req, body });
    return { status: res.status, headers: new Headers(res.headers), body: res.body };
  }

  /** Why `url` gave no answer, in one line: TLS trouble named, plain HTTP to an HTTPS member detected. */
  private async _explain(url: string, err: unknown): Promise<string> {
    if (err instanceof TlsError) return err.message;
    const text = describeNetworkError(err);
    if (!url.startsWith("http:") || text === "connection refused" || text === "no answer in time") return text;
    try {
      const u = new URL(url);
      if (await (await _adapter()).speaksTls(u.hostname.replace(/^\[|\]$/g, ""), Number(u.port || 80), 1000)) {
        return `TLS: it speaks HTTPS (TLS), not plain HTTP: use https://${u.host}`;
      }
    } catch {
      // the probe itself failed: keep the original reason
    }
    return text;
  }

  /** One request to one URL, following redirects; throws on network errors and redirect loops. */
  private async _once(method: string, url: string, body: Uint8Array | undefined, headers: Record<string, string>, deadline: number): Promise<ClientResponse> {
    let target = url;
    let sent = headers;
    for (let hop = 0; ; hop++) {
      const init: RequestInit = { method, headers: sent, redirect: "manual", signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) };
      if (body !== undefined) init.body = body as Uint8Array<ArrayBuffer>;
      const res = this._opts.tls !== undefined || target.startsWith("https:") ? await this._viaAdapter(method, target, body, headers, deadline) : await fetch(target, init);
      const bytes = res instanceof Response ? new Uint8Array(await res.arrayBuffer()) : res.body;
      _checkMember(method, new URL(target).origin, target, res);
      const location = res.headers.get("location");
      if (_REDIRECT_STATUSES.has(res.status) && location !== null) {
        if (hop >= _HOPS_MAX) throw new _RedirectLoop(`More than ${_HOPS_MAX} redirects (the last from ${target} to ${location}); the members disagree on who leads, retry shortly`);
        const next = new URL(location, target).href;
        if (!mayCarryCredentials(next, target, this._opts.urls)) {
          const { authorization: _dropped, ...rest } = sent;
          sent = rest;
        }
        target = next;
        continue;
      }
      return { status: res.status, headers: res.headers, body: bytes, url: target };
    }
  }

  /**
   * Sends `method path` to the cluster: the first URL that answers, retrying
   * 503/504 and unreachable members until the deadline.
   */
  async call(method: string, path: string, init: { body?: Uint8Array | string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<ClientResult> {
    const deadline = Date.now() + (init.timeoutMs ?? this._opts.timeoutMs);
    const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
    const headers: Record<string, string> = { ...init.headers };
    if (this._opts.secret !== null) headers.authorization = `Bearer ${this._opts.secret}`;
    let last: ClientResponse | null = null;
    const errors = new Map<string, string>();
    const notMembers = new Map<string, string>();
    for (;;) {
      let answered = false;
      for (const base of this._opts.urls) {
        try {
          const res = await this._once(method, base.replace(/\/+$/, "") + path, body, headers, deadline);
          if (!_RETRY_STATUSES.has(res.status)) return { ok: true, res };
          last = res;
          answered = true;
        } catch (err) {
          if (err instanceof _RedirectLoop) return { ok: false, error: err.message };
          if (err instanceof _NotMember) notMembers.set(base, err.message);
          else errors.set(base, await this._explain(base, err));
        }
        if (Date.now() >= deadline) break;
      }
      // Nobody answered at all: say so now rather than after the whole timeout.
      if (!answered) break;
      if (Date.now() + _RETRY_PAUSE_MS >= deadline) break;
      await new Promise((r) => setTimeout(r, _RETRY_PAUSE_MS));
    }
    if (last !== null) return { ok: true, res: last };
    if (errors.size === 0 && notMembers.size > 0) return { ok: false, error: [...notMembers.values()].join("; "), notMember: true };
    const detail = [...[...errors].map(([u, e]) => `${u}: ${e}`), ...notMembers.values()].join("; ");
    return { ok: false, error: `Cannot reach the cluster (${detail || "no answer in time"})` };
  }

  /** GET a JSON document from one specific URL, without retries (for status polls). */
  async getJson(url: string, timeoutMs: number): Promise<{ ok: true; value: unknown; status: number } | { ok: false; error: string; notMember?: true }> {
    try {
      const headers: Record<string, string> = this._opts.secret === null ? {} : { authorization: `Bearer ${this._opts.secret}` };
      const res = await this._once("GET", url, undefined, headers, Date.now() + timeoutMs);
      try {
        return { ok: true, value: JSON.parse(new TextDecoder().decode(res.body)) as unknown, status: res.status };
      } catch {
        return { ok: false, error: `answered ${res.status} with a body that is not JSON` };
      }
    } catch (err) {
      if (err instanceof _NotMember) return { ok: false, error: err.message, notMember: true };
      return { ok: false, error: await this._explain(url, err) };
    }
  }
}
