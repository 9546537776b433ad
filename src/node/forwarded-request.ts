/**
 * Client requests for the user's routes in worker mode: the worker's server
 * receives them, and the routes run on the caller's thread. This file is
 * both ends of that hop, and it never lets the worker buffer a body the
 * routes did not ask for:
 *
 * - a body with a small declared `Content-Length` (up to
 *   `EAGER_BODY_BYTES_MAX`, the common case: a KV write) crosses with the
 *   request head in one transferred buffer, as before;
 * - any other body (no length, chunked, or a larger one) stays in the
 *   worker's server and is pulled chunk by chunk only as the route on the
 *   caller's thread reads it (`ChunkStreams`). A route that refuses the
 *   request first (401 before the bearer check passes, 413 on a declared or
 *   counted size) never pulls it: the worker reads nothing more, drops the
 *   stream once the answer is sent, and the answer closes the connection.
 *
 * So the limits and the authentication of the user's routes apply before a
 * body is read, in worker mode as in caller mode.
 *
 * @module
 */
import type { ChunkStreams } from "./worker/protocol.ts";

/** Largest body read in the worker before the route sees the request (declared by Content-Length). */
export const EAGER_BODY_BYTES_MAX = 64 * 1024;

/** The head of a forwarded request, and its body (inline, streamed, or none). */
export interface ForwardedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: [string, string][];
  /** The whole body, when small and declared. */
  readonly body: ArrayBuffer | null;
  /** Stream id of a body pulled on demand (see `ChunkStreams.offer`), or null. */
  readonly stream: number | null;
}

/** Reads `body` as it is pulled; cancels it when the puller stops. */
async function* _chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Worker side: turns a request into what crosses to the caller's thread.
 * Call `done()` once its answer is back: a body stream the route did not
 * finish is cancelled then, and `done()` says so (true: answer with
 * `Connection: close`, the rest of the body will not be read). A body
 * that fails while read here (the client hung up) is answered 400 at once,
 * one still incomplete after `timeoutMs` 408.
 */
export async function forwardRequest(req: Request, streams: ChunkStreams, timeoutMs: number): Promise<{ request: ForwardedRequest; transfer: ArrayBuffer[]; done: () => boolean } | Response> {
  const headers: [string, string][] = [];
  req.headers.forEach((v, k) => headers.push([k, v]));
  const base = { method: req.method, url: req.url, headers };
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  if (!hasBody) return { request: { ...base, body: null, stream: null }, transfer: [], done: () => false };
  const length = req.headers.get("content-length");
  if (length !== null && /^[0-9]{1,15}$/.test(length) && Number(length) <= EAGER_BODY_BYTES_MAX) {
    // The server stops reading at the declared length: at most EAGER_BODY_BYTES_MAX here.
    let body: ArrayBuffer;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
      const got = await Promise.race([req.arrayBuffer(), late]);
      if (got === null) {
        // A body that stops short of its Content-Length: refused in time, not waited for.
        await req.body?.cancel().catch(() => {});
        return new Response(`The request body did not arrive within ${timeoutMs} ms\n`, { status: 408, headers: { connection: "close" } });
      }
      body = got;
    } catch {
      // The client went away mid-body: nobody is left to read an answer, and nothing reaches the routes.
      return new Response("The request body could not be read\n", { status: 400, headers: { connection: "close" } });
    } finally {
      clearTimeout(timer);
    }
    return { request: { ...base, body, stream: null }, transfer: [body], done: () => false };
  }
  const stream = streams.offer(_chunks(req.body!));
  return { request: { ...base, body: null, stream }, transfer: [], done: () => streams.close(stream) };
}

/** Caller side: the `Request` the user's routes see, its body (if streamed) pulled from the worker as it is read. */
export function rebuildRequest(m: ForwardedRequest, streams: ChunkStreams): Request {
  const init: RequestInit & { duplex?: "half" } = { method: m.method, headers: m.headers };
  if (m.body !== null) {
    init.body = m.body;
  } else if (m.stream !== null) {
    const it = streams.open(m.stream)[Symbol.asyncIterator]();
    // highWaterMark 0: nothing is pulled before the route reads.
    init.body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const r = await it.next();
        if (r.done === true) ctl.close();
        else ctl.enqueue(r.value);
      },
    }, { highWaterMark: 0 });
    init.duplex = "half";
  }
  return new Request(m.url, init);
}
