/**
 * Making text safe to show: request data that goes into a log line, and
 * internal error messages that go into a reply.
 *
 * - `forLog` escapes control characters, so a value from a request (an
 *   id, a path, a reason quoting one) cannot start a forged log line.
 * - `redactPaths` shortens absolute file paths to their last component, so
 *   a 500 reply does not tell a client where the data directory lives; the
 *   member's own log keeps the full message.
 *
 * @module
 */

/** `s` with every control character (newlines included) escaped as `\xNN` / `\uNNNN`. */
export function forLog(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** `s` with absolute POSIX and Windows paths replaced by `…/` and their last component. */
export function redactPaths(s: string): string {
  return s
    .replace(/(^|[\s('"`=:])\/(?:[^\s/'"`()]+\/)+([^\s/'"`()]*)/g, (_m, lead: string, last: string) => `${lead}…/${last}`)
    .replace(/(^|[\s('"`=])[A-Za-z]:\\(?:[^\s\\'"`()]+\\)+([^\s\\'"`()]*)/g, (_m, lead: string, last: string) => `${lead}…\\${last}`);
}
