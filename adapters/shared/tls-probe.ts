/**
 * Does this port speak TLS? A handshake with `node:tls` (which Node, Deno
 * and Bun all provide), certificate unchecked, then closed at once. Used only
 * after a request failed, to tell "plain HTTP sent to an HTTPS member" from
 * "nothing answers"; results are kept for a few seconds so a peer that keeps
 * failing is not probed on every request.
 *
 * @module
 */
import * as tls from "node:tls";

const _CACHE_MS = 5000;
const _cache = new Map<string, { atMs: number; tls: boolean }>();

/** How long the peer clients' probe waits for a handshake. */
const _CLIENT_PROBE_MS = 1000;

/** The probe the peer clients hand `explainHttpError` (tls-errors.ts) after a failed request. */
export function probeTls(host: string, port: number): Promise<boolean> {
  return speaksTls(host, port, _CLIENT_PROBE_MS);
}

/** Resolves true if host:port completes a TLS handshake within `timeoutMs`. */
export function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const key = `${host}:${port}`;
  const hit = _cache.get(key);
  if (hit !== undefined && performance.now() - hit.atMs < _CACHE_MS) return Promise.resolve(hit.tls);
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      _cache.set(key, { atMs: performance.now(), tls: ok });
      resolve(ok);
    };
    const opts: tls.ConnectionOptions = { host, port, rejectUnauthorized: false };
    // SNI takes names only, never IP addresses.
    if (!/^[0-9.]+$|:/.test(host)) opts.servername = host;
    const socket = tls.connect(opts, () => finish(true));
    socket.on("error", () => finish(false));
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}
