/**
 * Checks for the values operators type and clients send: member ids, member
 * URLs, `HOST:PORT` addresses, idempotency keys. Shared by the HTTP routes
 * and the CLI, so both accept and refuse the same things. Each returns the
 * normalised value or a sentence saying what is wrong.
 *
 * @module
 */
import { MEMBER_ID_RE as _ID } from "../raft/limits.ts";

/** A checked value, or why it was refused. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A member id: 1 to 64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export function checkMemberId(id: unknown): Checked<string> {
  if (typeof id !== "string" || !_ID.test(id)) {
    return { ok: false, error: `Invalid member id ${JSON.stringify(id)}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit` };
  }
  return { ok: true, value: id };
}

/**
 * An http(s) base URL such as `http://10.0.0.5:7000`: no credentials, query,
 * fragment or path. Returned without a trailing slash.
 */
export function checkBaseUrl(url: unknown, what = "URL"): Checked<string> {
  if (typeof url !== "string" || url.length === 0) return { ok: false, error: `Missing ${what}` };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: expected something like http://127.0.0.1:7000` };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    // new URL("localhost:7000") parses, with "localhost:" as its scheme.
    if (!url.includes("://") && checkHostPort(url).ok) return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: no scheme; write http://${url}` };
    return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: only http:// and https:// are supported` };
  }
  if (u.hostname === "") return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: no host` };
  if (u.username !== "" || u.password !== "") return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: credentials do not belong in the URL (use --secret-file)` };
  if (u.search !== "" || u.hash !== "" || (u.pathname !== "/" && u.pathname !== "")) {
    return { ok: false, error: `Malformed ${what} ${JSON.stringify(url)}: give only scheme, host and port (no path, query or fragment)` };
  }
  return { ok: true, value: `${u.protocol}//${u.host}` };
}

/**
 * A member to talk to, as operators type it: a base URL (`checkBaseUrl`), or
 * a bare `HOST:PORT`, understood as `http://HOST:PORT` (as etcdctl takes
 * `--endpoints localhost:2379`).
 */
export function checkMemberAddress(addr: unknown, what = "URL"): Checked<string> {
  if (typeof addr === "string" && !addr.includes("://")) {
    const hp = checkHostPort(addr);
    if (hp.ok) return checkBaseUrl(`http://${addr}`, what);
  }
  return checkBaseUrl(addr, what);
}

/** A listen address `HOST:PORT` (`[::1]:7000` for IPv6). Port 0 picks a free port. */
export function checkHostPort(addr: unknown): Checked<{ host: string; port: number }> {
  const bad = (why: string): Checked<{ host: string; port: number }> => ({
    ok: false,
    error: `Malformed address ${JSON.stringify(addr)}: ${why} (expected HOST:PORT, e.g. 127.0.0.1:7000)`,
  });
  if (typeof addr !== "string") return bad("not a string");
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(addr);
  if (m === null) return bad("not HOST:PORT");
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) return bad(`port ${port} is above 65535`);
  return { ok: true, value: { host, port } };
}

export { isLoopbackHost } from "../node/listen-policy.ts";

/** Longest accepted `Idempotency-Key`, in bytes (the command encoding's ceiling). */
export const IDEMPOTENCY_HEADER_BYTES_MAX = 256;

/** An `Idempotency-Key` header: 1 to 256 visible ASCII characters. null when the header is absent. */
export function checkIdempotencyKey(header: string | undefined): Checked<string | null> {
  if (header === undefined) return { ok: true, value: null };
  if (header.length === 0 || header.length > IDEMPOTENCY_HEADER_BYTES_MAX || !/^[\x21-\x7e]+$/.test(header)) {
    return { ok: false, error: `Invalid Idempotency-Key: use 1 to ${IDEMPOTENCY_HEADER_BYTES_MAX} visible ASCII characters` };
  }
  return { ok: true, value: header };
}
