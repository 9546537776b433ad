/**
 * The dashboard's charts: one sample per interval of commits per second and
 * of commit and fsync latency percentiles, computed from the differences
 * between two readings of the node's counters and histograms (so each
 * sample describes that interval alone, not the whole life of the node).
 *
 * @module
 */
import type { Histogram, NodeMetrics, NodeStatus } from "../../node/types.ts";

/** One point of the charts. Latencies are null when nothing was observed in the interval. */
export interface SeriesSample {
  /** End of the interval (wall clock, ms since the epoch). */
  readonly atMs: number;
  /** Entries committed per second (commit index advance over the interval). */
  readonly commitsPerS: number;
  readonly commitP50Ms: number | null;
  readonly commitP99Ms: number | null;
  readonly fsyncP50Ms: number | null;
  readonly fsyncP99Ms: number | null;
}

/**
 * The `q`-quantile (0..1) of the observations between two readings of one
 * histogram, interpolated linearly inside the bucket it falls in (as
 * Prometheus' `histogram_quantile` does). Observations past the last bound
 * are reported as that bound. Null if there were none.
 */
export function quantileBetweenMs(before: Histogram | null, after: Histogram, q: number): number | null {
  const bounds = after.boundsMs;
  const cum = after.cumulative.map((c, i) => c - (before?.cumulative[i] ?? 0));
  const total = cum[cum.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const upTo = cum[i]!;
    if (upTo >= rank) {
      const below = i === 0 ? 0 : cum[i - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i]!;
      const inBucket = upTo - below;
      return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
  }
  return bounds[bounds.length - 1] ?? null;
}

interface _Reading {
  readonly atMs: number;
  readonly commitIndex: number;
  readonly commit: Histogram;
  readonly fsync: Histogram;
}

/** Keeps the last `samplesMax` samples of one node. */
export class SeriesRecorder {
  readonly #samplesMax: number;
  readonly #samples: SeriesSample[] = [];
  #prev: _Reading | null = null;

  constructor(samplesMax = 300) {
    this.#samplesMax = samplesMax;
  }

  /** Takes a reading; returns the sample for the interval since the last one (null on the first). */
  sample(atMs: number, status: NodeStatus, metrics: NodeMetrics): SeriesSample | null {
    const now: _Reading = { atMs, commitIndex: status.commitIndex, commit: metrics.commitLatency, fsync: metrics.fsyncLatency };
    const prev = this.#prev;
    this.#prev = now;
    if (prev === null || atMs <= prev.atMs) return null;
    const s: SeriesSample = {
      atMs,
      commitsPerS: (Math.max(0, now.commitIndex - prev.commitIndex) * 1000) / (atMs - prev.atMs),
      commitP50Ms: quantileBetweenMs(prev.commit, now.commit, 0.5),
      commitP99Ms: quantileBetweenMs(prev.commit, now.commit, 0.99),
      fsyncP50Ms: quantileBetweenMs(prev.fsync, now.fsync, 0.5),
      fsyncP99Ms: quantileBetweenMs(prev.fsync, now.fsync, 0.99),
    };
    this.#samples.push(s);
    if (this.#samples.length > this.#samplesMax) this.#samples.shift();
    return s;
  }

  /** The samples kept, oldest first. */
  history(): readonly SeriesSample[] {
    return this.#samples.slice();
  }
}
