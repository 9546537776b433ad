/**
 * A peer-RPC client over the platform `fetch`, for runtimes whose `fetch`
 * pools keep-alive connections natively (Deno, Bun): their client for
 * `https:`, and the fallback of `./http1-client.ts`, which serves plain
 * `http:` on every runtime. Node uses `node:http` instead: its `fetch`
 * measured 5-8x slower here.
 *
 * For TLS the adapter hands in what its `fetch` takes beside the standard
 * options (Deno: `client` from `Deno.createHttpClient`; Bun: `tls`); failed
 * handshakes reject with `TlsError` (see `./tls-errors.ts`).
 *
 * @module
 */
import { TimeoutError } from "../../src/errors.ts";
import type { HttpClient, HttpRequest, HttpResponse } from "../types.ts";
import { explainHttpError } from "./tls-errors.ts";
import { probeTls } from "./tls-probe.ts";

/**
 * Creates an `HttpClient` on top of the global `fetch`. `extraInit` is
 * merged into every request's init; `onClose` runs on `close()`.
 */
export function fetchHttpClient(extraInit: Readonly<Record<string, unknown>> | null = null, onClose: (() => void) | null = null): HttpClient {
  const pending = new Set<AbortController>();
  return {
    async request(req: HttpRequest): Promise<HttpResponse> {
      const ctl = new AbortController();
      pending.add(ctl);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ctl.abort();
      }, req.timeoutMs);
      try {
        // Redirects are the caller's to follow (the join client does, deciding where its token may go).
        const init: RequestInit = extraInit === null ? { method: req.method, signal: ctl.signal, redirect: "manual" } : { ...extraInit, method: req.method, signal: ctl.signal, redirect: "manual" };
        if (req.headers !== undefined) init.headers = req.headers;
        if (req.body !== undefined) init.body = req.body as Uint8Array<ArrayBuffer>;
        const res = await fetch(req.url, init);
        const body = new Uint8Array(await res.arrayBuffer());
        const headers: Record<string, string> = {};
        res.headers.forEach((value, key) => {
          headers[key.toLowerCase()] = value;
        });
        return { status: res.status, headers, body };
      } catch (err) {
        if (timedOut) throw new TimeoutError(`${req.method} ${req.url} got no answer within ${req.timeoutMs} ms`);
        throw await explainHttpError(req.url, err, probeTls);
      } finally {
        clearTimeout(timer);
        pending.delete(ctl);
      }
    },
    close() {
      for (const ctl of pending) ctl.abort();
      pending.clear();
      onClose?.();
    },
  };
}
