/**
 * `HttpClient` test doubles for the PeerClient tests (plain classes, no
 * mocking APIs): one that serves requests from a Hono app in-process, with
 * hooks to fail or hold chosen requests.
 *
 * @module
 */
import type { Hono } from "hono";
import type { HttpClient, HttpRequest, HttpResponse } from "../../adapters/types.ts";

/** What a hook decides for one request. */
export type HookDecision =
  /** Deliver normally. */
  | "deliver"
  /** Fail without delivering (connection refused). */
  | "refuse"
  /** Deliver, then fail as if the response was lost. */
  | "lose-response";

/** A request held by `AppHttpClient` until the test releases it. */
export interface HeldRequest {
  readonly req: HttpRequest;
  /** Delivers it to the app now. */
  release(): void;
  /** Fails it with `error` without delivering it. */
  fail(error: Error): void;
}

/** Serves requests from a Hono app in-process. */
export class AppHttpClient implements HttpClient {
  readonly #app: Hono;
  /** Every request made, in order. */
  readonly requests: HttpRequest[] = [];
  /** Decides the fate of each request (default: deliver). */
  hook: (req: HttpRequest, n: number) => HookDecision = () => "deliver";
  /** When true, requests wait in `held` until released. */
  hold = false;
  readonly held: HeldRequest[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];
  closed = false;

  constructor(app: Hono) {
    this.#app = app;
  }

  /** Resolves once `n` requests are held at the same time. */
  heldCount(n: number): Promise<void> {
    if (this.held.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const n = this.requests.length;
    this.requests.push(req);
    if (!this.hold) return this.#deliver(req, n);
    return new Promise<HttpResponse>((resolve, reject) => {
      const h: HeldRequest = {
        req,
        release: () => {
          this.held.splice(this.held.indexOf(h), 1);
          this.#deliver(req, n).then(resolve, reject);
        },
        fail: (e) => {
          this.held.splice(this.held.indexOf(h), 1);
          reject(e);
        },
      };
      this.held.push(h);
      this.#waiters = this.#waiters.filter((w) => {
        if (this.held.length < w.n) return true;
        w.resolve();
        return false;
      });
    });
  }

  async #deliver(req: HttpRequest, n: number): Promise<HttpResponse> {
    const decision = this.hook(req, n);
    if (decision === "refuse") throw new Error(`test: connection refused (request ${n})`);
    const init: RequestInit = { method: req.method, headers: { ...req.headers } };
    if (req.body !== undefined) init.body = req.body as Uint8Array<ArrayBuffer>;
    const res = await this.#app.request(req.url, init);
    const body = new Uint8Array(await res.arrayBuffer());
    if (decision === "lose-response") throw new Error(`test: response lost (request ${n})`);
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { status: res.status, headers, body };
  }

  close(): void {
    this.closed = true;
  }
}
