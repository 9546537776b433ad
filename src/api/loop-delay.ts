/**
 * Event-loop delay, measured the portable way (Node's `monitorEventLoopDelay`
 * does not exist on Deno or Bun): a timer asks to fire every
 * `SAMPLE_INTERVAL_MS`, and how late it fires is the time the thread was
 * busy with something else. One sampler per thread, shared by every
 * `/metrics` route mounted on it, running only while one is mounted (and
 * never keeping the process alive).
 *
 * The thread's name labels the series: "main" unless `setThreadName` said
 * otherwise (the worker of `thread: "worker"` calls itself "worker").
 *
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import { LatencyHistogram } from "../node/metrics.ts";
import type { Histogram } from "../node/types.ts";

/** How often the sampler's timer asks to fire. */
export const SAMPLE_INTERVAL_MS = 100;
/** The "recent maximum" covers this many of the latest samples (10 s). */
const _RECENT_SAMPLES = 100;

let _threadName = "main";

/** Names the thread this module runs on, for the `thread` label (call once, before any route is mounted). */
export function setThreadName(name: string): void {
  _threadName = name;
}

/** The name set by `setThreadName` ("main" by default). */
export function threadName(): string {
  return _threadName;
}

/** What the sampler has seen. */
export interface LoopDelayReading {
  /** Delay of each sample, ms (Prometheus-style cumulative buckets). */
  readonly histogram: Histogram;
  /** Largest delay among the latest samples (about the last 10 s), ms. */
  readonly recentMaxMs: number;
}

/** Measures how late a repeating timer fires (see the module comment). */
export class LoopDelaySampler {
  readonly #histogram = new LatencyHistogram();
  readonly #recent: number[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;
  #expected = 0;
  #users = 0;

  /** Starts sampling (counted: every `acquire` needs its `release`). */
  acquire(): void {
    if (this.#users++ > 0) return;
    this.#expected = performance.now() + SAMPLE_INTERVAL_MS;
    this.#timer = setInterval(() => this.#sample(), SAMPLE_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stops sampling once the last user released it. */
  release(): void {
    if (this.#users === 0 || --this.#users > 0) return;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #sample(): void {
    const now = performance.now();
    const delayMs = Math.max(0, now - this.#expected);
    this.#expected = now + SAMPLE_INTERVAL_MS;
    this.#histogram.observe(delayMs);
    this.#recent.push(delayMs);
    if (this.#recent.length > _RECENT_SAMPLES) this.#recent.shift();
  }

  /** The histogram so far and the recent maximum. */
  reading(): LoopDelayReading {
    return { histogram: this.#histogram.snapshot(), recentMaxMs: this.#recent.reduce((a, b) => Math.max(a, b), 0) };
  }
}

/** This thread's sampler. */
export const loopDelay = new LoopDelaySampler();
