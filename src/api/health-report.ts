/**
 * `raft health` (as etcdctl's `endpoint health`): finds every member from
 * the membership (asking the given URLs for `/status`), asks each member and
 * each given URL for `GET /health`, and reports one row per URL: healthy or
 * not, the reason, and how long the answer took. Pure apart from the
 * fetching function it is given.
 *
 * @module
 */
import { formatTable } from "./status-report.ts";

/** Fetches one JSON document from an exact URL (the CLI's `ApiClient.getJson`). */
export type JsonFetcher = (url: string) => Promise<{ ok: true; value: unknown; status: number } | { ok: false; error: string }>;

/** One member's row. */
export interface HealthRow {
  /** The URL asked. */
  readonly url: string;
  /** The member's id, when known (from the membership or its `/status`). */
  readonly id: string | null;
  readonly healthy: boolean;
  /** Why it is unhealthy (its own reason, or why it did not answer); "" when healthy. */
  readonly reason: string;
  /** Milliseconds until its answer (or the failure). */
  readonly tookMs: number;
}

const _base = (u: string) => u.replace(/\/+$/, "");

interface _StatusView {
  readonly id: string;
  readonly members: readonly { readonly id: string; readonly url: string }[];
}

function _statusView(v: unknown): _StatusView | null {
  const s = v as _StatusView;
  if (typeof v !== "object" || v === null || typeof s.id !== "string" || !Array.isArray(s.members)) return null;
  return s.members.every((m) => typeof m === "object" && m !== null && typeof m.id === "string" && typeof m.url === "string") ? s : null;
}

async function _askHealth(fetchJson: JsonFetcher, url: string, id: string | null, now: () => number): Promise<HealthRow> {
  const start = now();
  const r = await fetchJson(`${url}/health`);
  const tookMs = Math.round((now() - start) * 10) / 10;
  if (!r.ok) return { url, id, healthy: false, reason: r.error, tookMs };
  const body = r.value as { health?: unknown; reason?: unknown };
  if (typeof body !== "object" || body === null || (body.health !== "true" && body.health !== "false")) {
    return { url, id, healthy: false, reason: `answered HTTP ${r.status} without a health report`, tookMs };
  }
  const healthy = body.health === "true" && r.status === 200;
  const reason = typeof body.reason === "string" && body.reason !== "" ? body.reason : healthy ? "" : `HTTP ${r.status}`;
  return { url, id, healthy, reason, tookMs };
}

/**
 * Asks `entryUrls` for the membership, then every member (and every entry
 * URL not already among them) for `/health`. A URL given that belongs to a
 * member (by id) stands for it: that member is not asked a second time at
 * its peer URL.
 */
export async function gatherHealth(fetchJson: JsonFetcher, entryUrls: readonly string[], now: () => number = () => performance.now()): Promise<HealthRow[]> {
  const entries = [...new Set(entryUrls.map(_base))];
  const views = await Promise.all(entries.map(async (u) => {
    const r = await fetchJson(`${u}/status`);
    return r.ok && r.status === 200 ? _statusView(r.value) : null;
  }));
  const targets: { url: string; id: string | null }[] = entries.map((url, i) => ({ url, id: views[i]?.id ?? null }));
  const members = views.find((v) => v !== null)?.members ?? [];
  for (const m of members) {
    const url = _base(m.url);
    if (targets.some((t) => t.url === url || t.id === m.id)) continue;
    targets.push({ url, id: m.id });
  }
  return await Promise.all(targets.map((t) => _askHealth(fetchJson, t.url, t.id, now)));
}

/** The rows as `raft health` prints them. */
export function formatHealth(rows: readonly HealthRow[]): string {
  const table = rows.map((r) => [r.url, r.id ?? "?", r.healthy ? "true" : "false", `${r.tookMs} ms`, r.reason]);
  return formatTable(["URL", "ID", "HEALTHY", "TOOK", "REASON"], table) + "\n";
}
