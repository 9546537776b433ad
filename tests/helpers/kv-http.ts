/**
 * The built-in KV store's HTTP API as the CLI tests use it, with the global
 * `fetch` (what a client of the README would use), 15 s per request.
 *
 * @module
 */

/** PUTs `value` at `key`; the log index of the write. Anything but 200 throws, with the answer. */
export async function httpPut(base: string, key: string, value: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${base}/kv/${encodeURIComponent(key)}`, { method: "PUT", body: value, headers, signal: AbortSignal.timeout(15_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`PUT ${key} at ${base}: ${res.status} ${body}`);
  return (JSON.parse(body) as { index: number }).index;
}

/** GETs `key` (a linearizable read, or with `stale` the member's own state): its value, or null on 404. */
export async function httpGet(base: string, key: string, stale = false): Promise<string | null> {
  const res = await fetch(`${base}/kv/${encodeURIComponent(key)}${stale ? "?stale" : ""}`, { signal: AbortSignal.timeout(15_000) });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${key} at ${base}: ${res.status} ${body}`);
  return body;
}
