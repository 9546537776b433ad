/**
 * One wording for a failed HTTP request, whichever runtime made it. The same
 * refused connection reads "fetch failed" with an `ECONNREFUSED` cause on
 * Node, "ECONNREFUSED: Unable to connect. Is the computer able to access the
 * url?" on Bun and "error sending request for url (...): client error
 * (Connect): tcp connect error: Connection refused (os error 111)" on Deno
 * (measured); operators get "connection refused" from all three.
 *
 * @module
 */

/** [what the runtimes say, what we say], first match wins. */
const _KINDS: readonly [RegExp, string][] = [
  [/ECONNREFUSED|connection refused/i, "connection refused"],
  [/ECONNRESET|UND_ERR_SOCKET|other side closed|connection (was )?closed|socket connection was closed|connection reset|broken pipe|EPIPE/i, "connection closed before an answer"],
  [/ENOTFOUND|EAI_AGAIN|EAI_NONAME|dns error|failed to lookup|name or service not known|name resolution/i, "host not found"],
  [/EHOSTUNREACH|ENETUNREACH|no route to host|network is unreachable/i, "host unreachable"],
];

/**
 * Says why a request failed in a few words, the same on Node, Deno and Bun:
 * "no answer in time", "connection refused", "connection closed before an
 * answer", "host not found", "host unreachable", or else the most specific
 * message the runtime gave.
 */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError" || err.name === "AbortError") return "no answer in time";
  const cause = (err as { cause?: unknown }).cause;
  const parts = [_code(err), err.message];
  if (cause instanceof Error || (typeof cause === "object" && cause !== null)) parts.push(_code(cause), String((cause as { message?: unknown }).message ?? ""));
  const text = parts.join(" ");
  for (const [re, words] of _KINDS) if (re.test(text)) return words;
  if (cause instanceof Error && cause.message !== "") return cause.message;
  return err.message;
}

function _code(x: object): string {
  const code = (x as { code?: unknown }).code;
  return typeof code === "string" ? code : "";
}
