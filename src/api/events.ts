/**
 * `GET /events`: the dashboard's live feed, as Server-Sent Events (Hono's
 * `streamSSE`). Messages, each a JSON `data` line:
 *
 * - `hello` once: this member's id and URL, and the stream's pace
 *   (`heartbeatMs`, `minIntervalMs`);
 * - `report`: the cluster as `raft status` sees it from here (every
 *   member's own status, the leader's view of each, the problems in words;
 *   see `./ui/cluster-view.ts`), sent when it changed;
 * - `timeline`: entries of this member's timeline, the last hour at first,
 *   then the new ones;
 * - `series`: chart samples (commits/s, commit and fsync latency), the kept
 *   history at first, then one per `sampleIntervalMs`;
 * - `bye`: the member is stopping; the stream ends after it.
 *
 * Bounded in rate: a subscriber gets at most one batch (one `report`, one
 * `timeline`, one `series`) per `minIntervalMs`; what changes meanwhile is
 * merged (the newest report wins). A comment line goes out when nothing was
 * sent for `heartbeatMs`, so both ends notice a dead connection. The report
 * is gathered (every member's `/status`, as `raft status` does) only while
 * someone listens: every `reportIntervalMs`, and soon after a node event.
 *
 * @module
 */
import type { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { NodeEvent, RaftNodeApi } from "../node/types.ts";
import { ApiClient } from "./client.ts";
import type { StatusBody } from "./cluster-routes.ts";
import { errorReply } from "./http.ts";
import { gatherStatus, statusFetcher } from "./status-report.ts";
import type { StatusFetcher } from "./status-report.ts";
import { dashboardReport } from "./ui/cluster-view.ts";
import type { DashboardReport } from "./ui/cluster-view.ts";
import { SeriesRecorder } from "./ui/series.ts";
import type { SeriesSample } from "./ui/series.ts";
import { Timeline } from "./ui/timeline.ts";
import type { TimelineEntry } from "./ui/timeline.ts";

/** Options of the event stream. */
export interface EventStreamOptions {
  /** This member's `/status` body (the report asks it directly, not over HTTP). */
  readonly localStatus: () => StatusBody;
  /** The client token, sent as the bearer token when asking the other members (their `/status` needs none today). */
  readonly secret?: string | null;
  /** How the other members' `/status` is fetched. Default: over HTTP, with `statusTimeoutMs`. */
  readonly fetchStatus?: StatusFetcher;
  /** Default 1000. */
  readonly statusTimeoutMs?: number;
  /** At most one batch per subscriber per this. Default 250. */
  readonly minIntervalMs?: number;
  /** Re-gather the report this often while someone listens. Default 1000. */
  readonly reportIntervalMs?: number;
  /** One chart sample per this. Default 1000. */
  readonly sampleIntervalMs?: number;
  /** A comment line when nothing was sent for this long. Default 10 000. */
  readonly heartbeatMs?: number;
}

/** One batch for one subscriber, in the order it is written. */
interface _Pending {
  report: DashboardReport | null;
  timeline: TimelineEntry[];
  series: SeriesSample[];
  bye: string | null;
}

/** Bounds what one slow subscriber can make the member hold. */
const _PENDING_ENTRIES_MAX = 500;

/** One open stream. */
class _Subscriber {
  pending: _Pending = { report: null, timeline: [], series: [], bye: null };
  #wake: (() => void) | null = null;
  closed = false;

  /** Something is pending: wake the writer. */
  poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  hasPending(): boolean {
    const p = this.pending;
    return p.report !== null || p.timeline.length > 0 || p.series.length > 0 || p.bye !== null;
  }

  /** Waits up to `ms` for something pending (or the end); true if there is. */
  wait(ms: number): Promise<boolean> {
    if (this.closed || this.hasPending()) return Promise.resolve(this.hasPending());
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve(this.hasPending());
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve(this.hasPending());
      };
    });
  }

  /** Sleeps `ms` unless the stream ends first (the rate bound). */
  pause(ms: number): Promise<void> {
    if (this.closed || this.pending.bye !== null || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      const check = () => {
        if (this.closed || this.pending.bye !== null) {
          clearTimeout(timer);
          resolve();
        } else {
          this.#wake = check;
        }
      };
      this.#wake = check;
    });
  }

  take(): _Pending {
    const p = this.pending;
    this.pending = { report: null, timeline: [], series: [], bye: null };
    return p;
  }
}

/**
 * The shared state behind every `/events` stream of one member: its
 * timeline (always recorded), its chart samples and the cluster report
 * (while someone listens).
 */
export class EventHub {
  readonly #node: RaftNodeApi;
  readonly #o: Required<Omit<EventStreamOptions, "secret" | "fetchStatus">> & { fetchStatus: StatusFetcher };
  readonly #subs = new Set<_Subscriber>();
  readonly #timeline: Timeline;
  readonly #series = new SeriesRecorder();
  #report: DashboardReport | null = null;
  #reportJson = "";
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  #sampleTimer: ReturnType<typeof setInterval> | null = null;
  #gathering = false;
  #again = false;
  #lastGatherMs = 0;
  #stopped: string | null = null;
  readonly #unsubscribe: () => void;

  constructor(node: RaftNodeApi, opts: EventStreamOptions) {
    this.#node = node;
    const statusTimeoutMs = opts.statusTimeoutMs ?? 1000;
    let fetchStatus = opts.fetchStatus;
    if (fetchStatus === undefined) {
      const client = new ApiClient({ urls: [node.url], secret: opts.secret ?? null, timeoutMs: statusTimeoutMs });
      fetchStatus = statusFetcher((url) => client.getJson(url, statusTimeoutMs));
    }
    const remote = fetchStatus;
    const self = node.url.replace(/\/+$/, "");
    this.#o = {
      localStatus: opts.localStatus,
      statusTimeoutMs,
      fetchStatus: (base) => (base.replace(/\/+$/, "") === self ? Promise.resolve({ ok: true, value: opts.localStatus() }) : remote(base)),
      minIntervalMs: opts.minIntervalMs ?? 250,
      reportIntervalMs: opts.reportIntervalMs ?? 1000,
      sampleIntervalMs: opts.sampleIntervalMs ?? 1000,
      heartbeatMs: opts.heartbeatMs ?? 10_000,
    };
    this.#timeline = new Timeline(node.id);
    this.#unsubscribe = node.on((ev) => this.#onEvent(ev));
  }

  /** The stream's pace, for the `hello` message. */
  get pace(): { readonly minIntervalMs: number; readonly heartbeatMs: number } {
    return { minIntervalMs: this.#o.minIntervalMs, heartbeatMs: this.#o.heartbeatMs };
  }

  /** Why the hub stopped (the member is stopping), or null while it runs. */
  get stopped(): string | null {
    return this.#stopped;
  }

  /** Number of open streams. */
  get subscribers(): number {
    return this.#subs.size;
  }

  /** Opens a subscription primed with the history; null once the member is stopping. */
  subscribe(): _Subscriber | null {
    if (this.#stopped !== null) return null;
    const sub = new _Subscriber();
    const now = Date.now();
    sub.pending.timeline = this.#timeline.entries(now).slice(-_PENDING_ENTRIES_MAX);
    sub.pending.series = this.#series.history().slice();
    sub.pending.report = this.#report;
    this.#subs.add(sub);
    if (this.#sampleTimer === null) {
      this.#series.sample(now, this.#node.status(), this.#node.metrics());
      this.#sampleTimer = setInterval(() => this.#sample(), this.#o.sampleIntervalMs);
    }
    if (this.#report === null || this.#subs.size === 1) this.#schedule(0);
    return sub;
  }

  /** Ends a subscription (the client went away or the stream ended). */
  unsubscribe(sub: _Subscriber): void {
    sub.closed = true;
    sub.poke();
    this.#subs.delete(sub);
    if (this.#subs.size === 0 && this.#pollTimer !== null) {
      clearTimeout(this.#pollTimer);
      this.#pollTimer = null;
    }
  }

  /** Stops everything: each stream says `bye` and ends; timers are cleared. Idempotent. */
  stop(reason: string): void {
    if (this.#stopped !== null) return;
    this.#stopped = reason;
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    if (this.#sampleTimer !== null) clearInterval(this.#sampleTimer);
    this.#pollTimer = null;
    this.#sampleTimer = null;
    this.#unsubscribe();
    for (const s of this.#subs) {
      s.pending.bye = reason;
      s.poke();
    }
  }

  #push(f: (p: _Pending) => void): void {
    for (const s of this.#subs) {
      f(s.pending);
      if (s.pending.timeline.length > _PENDING_ENTRIES_MAX) s.pending.timeline.splice(0, s.pending.timeline.length - _PENDING_ENTRIES_MAX);
      if (s.pending.series.length > _PENDING_ENTRIES_MAX) s.pending.series.splice(0, s.pending.series.length - _PENDING_ENTRIES_MAX);
      s.poke();
    }
  }

  #onEvent(ev: NodeEvent): void {
    const entries = this.#timeline.record(Date.now(), ev);
    if (entries.length > 0) this.#push((p) => p.timeline.push(...entries));
    if (ev.type === "closing") this.stop("the member is stopping");
    else if (ev.type === "stopped") this.stop(ev.error === null ? "the member stopped" : `the member stopped: ${ev.error.message}`);
    else if (ev.type !== "removed") this.#kick();
  }

  #sample(): void {
    if (this.#stopped !== null) return;
    const s = this.#series.sample(Date.now(), this.#node.status(), this.#node.metrics());
    if (s !== null) this.#push((p) => p.series.push(s));
  }

  /** Something happened: gather the report soon (not sooner than `minIntervalMs` after the last). */
  #kick(): void {
    if (this.#subs.size === 0 || this.#stopped !== null) return;
    if (this.#gathering) {
      this.#again = true;
      return;
    }
    this.#schedule(Math.max(0, this.#lastGatherMs + this.#o.minIntervalMs - Date.now()));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped !== null || this.#gathering) return;
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      void this.#gather();
    }, delayMs);
  }

  async #gather(): Promise<void> {
    if (this.#subs.size === 0 || this.#stopped !== null) return;
    this.#gathering = true;
    this.#again = false;
    this.#lastGatherMs = Date.now();
    try {
      const g = await gatherStatus(this.#o.fetchStatus, [this.#node.url]);
      if ("report" in g && this.#stopped === null) this.#publish(dashboardReport(g.report));
    } catch (err) {
      // The local status always answers; anything else is a bug worth seeing in the timeline.
      const e = this.#timeline.add(Date.now(), "member", null, `the dashboard could not gather the cluster's status: ${(err as Error).message}`);
      this.#push((p) => p.timeline.push(e));
    } finally {
      this.#gathering = false;
    }
    if (this.#subs.size > 0 && this.#stopped === null) this.#schedule(this.#again ? this.#o.minIntervalMs : this.#o.reportIntervalMs);
  }

  #publish(report: DashboardReport): void {
    const json = JSON.stringify(report);
    if (json === this.#reportJson) return;
    const before = this.#report;
    this.#report = report;
    this.#reportJson = json;
    if (before !== null) {
      const now = Date.now();
      const entries: TimelineEntry[] = [];
      for (const m of report.members) {
        const was = before.members.find((b) => b.id === m.id);
        if (was === undefined) continue;
        if (was.role !== "down" && m.role === "down") entries.push(this.#timeline.add(now, "member", m.id, `${m.id} stopped answering: ${m.error ?? "no answer"}`));
        else if (was.role === "down" && m.role !== "down") entries.push(this.#timeline.add(now, "member", m.id, `${m.id} answers again`));
      }
      if (entries.length > 0) this.#push((p) => p.timeline.push(...entries));
    }
    this.#push((p) => (p.report = report));
  }
}

/** Mounts `GET /events` (see the module comment); returns the hub behind it. */
export function eventsRoute(app: Hono, node: RaftNodeApi, opts: EventStreamOptions): EventHub {
  const hub = new EventHub(node, opts);
  app.get("/events", (c) => {
    const sub = hub.subscribe();
    if (sub === null) return errorReply(503, `No event stream: ${hub.stopped ?? "the member is stopping"}`, {}, { "retry-after": "1" });
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => hub.unsubscribe(sub));
      try {
        const { minIntervalMs, heartbeatMs } = hub.pace;
        await stream.writeSSE({ event: "hello", data: JSON.stringify({ id: node.id, url: node.url, minIntervalMs, heartbeatMs, serverNowMs: Date.now() }) });
        while (!sub.closed) {
          if (!(await sub.wait(heartbeatMs))) {
            if (!sub.closed) await stream.write(": ping\n\n");
            continue;
          }
          const p = sub.take();
          if (p.report !== null) await stream.writeSSE({ event: "report", data: JSON.stringify({ ...p.report, from: { id: node.id, url: node.url }, serverNowMs: Date.now() }) });
          if (p.timeline.length > 0) await stream.writeSSE({ event: "timeline", data: JSON.stringify(p.timeline) });
          if (p.series.length > 0) await stream.writeSSE({ event: "series", data: JSON.stringify(p.series) });
          if (p.bye !== null) {
            await stream.writeSSE({ event: "bye", data: JSON.stringify({ reason: p.bye }) });
            break;
          }
          await sub.pause(minIntervalMs);
        }
      } finally {
        hub.unsubscribe(sub);
      }
    });
  });
  return hub;
}
