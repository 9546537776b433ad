/**
 * Reading an HTTP request body with a size limit, shared by the peer RPC
 * routes and the client API: a client can never make a member buffer more
 * than the limit.
 *
 * With a declared Content-Length within the limit, the body is read with
 * `arrayBuffer()` (the server stops at the declared length): on Node,
 * reading `req.body` as a web stream measured about 7x slower. Without
 * one, the stream is read and refused as soon as it passes the limit.
 * Either way a body that does not arrive within `timeoutMs` (a
 * `Content-Length` that promises more than is sent, a client that stalls)
 * is refused with 408 rather than waited for until the client gives up.
 *
 * @module
 */

/** The body, or why it was refused. */
export type BodyResult =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly status: 400 | 408 | 413; readonly reason: string };

const _EMPTY = new Uint8Array(0);

/** Default of `timeoutMs`: as long as a server gives a whole request. */
export const BODY_READ_TIMEOUT_MS_DEFAULT = 30_000;

/** What a timed-out read resolves with. */
const _TIMED_OUT = Symbol("timed out");

/**
 * Reads `req`'s body into one buffer, refusing (413) past `maxBytes`, (400)
 * a malformed Content-Length and (408) a body still incomplete after
 * `timeoutMs`. A body that fails mid-way (the client went away) is refused
 * with 400, never thrown.
 */
export async function readBodyLimited(req: Request, maxBytes: number, timeoutMs = BODY_READ_TIMEOUT_MS_DEFAULT): Promise<BodyResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<typeof _TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(_TIMED_OUT), timeoutMs)));
  try {
    const r = await Promise.race([_read(req, maxBytes), expired]);
    if (r !== _TIMED_OUT) return r;
    await req.body?.cancel().catch(() => {});
    return { ok: false, status: 408, reason: `body not received within ${timeoutMs} ms` };
  } catch (err) {
    return { ok: false, status: 400, reason: `body could not be read (${err instanceof Error ? err.message : String(err)})` };
  } finally {
    clearTimeout(timer);
  }
}

async function _read(req: Request, maxBytes: number): Promise<BodyResult> {
  const lengthHeader = req.headers.get("content-length");
  if (lengthHeader !== null) {
    if (!/^[0-9]{1,15}$/.test(lengthHeader)) return { ok: false, status: 400, reason: "malformed Content-Length" };
    const declared = Number(lengthHeader);
    if (declared > maxBytes) return { ok: false, status: 413, reason: `body of ${declared} bytes exceeds the limit of ${maxBytes}` };
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (bytes.length > maxBytes) return { ok: false, status: 413, reason: `body exceeds the limit of ${maxBytes} bytes` };
    return { ok: true, bytes };
  }
  if (req.body === null) return { ok: true, bytes: _EMPTY };
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return { ok: false, status: 413, reason: `body exceeds the limit of ${maxBytes} bytes` };
    }
    parts.push(value);
  }
  if (parts.length === 1) return { ok: true, bytes: parts[0]! };
  const bytes = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    bytes.set(p, pos);
    pos += p.length;
  }
  return { ok: true, bytes };
}
