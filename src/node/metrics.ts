/**
 * Counters and fixed-bucket latency histograms a node keeps for `/metrics`.
 * Recording is a few array writes: cheap enough for every commit and fsync.
 *
 * @module
 */
import type { Histogram, NodeMetrics } from "./types.ts";

const _BOUNDS_MS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** A latency histogram being recorded. */
export class LatencyHistogram {
  readonly #counts = new Array<number>(_BOUNDS_MS.length + 1).fill(0);
  #sumMs = 0;
  #count = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < _BOUNDS_MS.length && ms > _BOUNDS_MS[i]!) i++;
    this.#counts[i]!++;
    this.#sumMs += ms;
    this.#count++;
  }

  snapshot(): Histogram {
    const cumulative: number[] = [];
    let acc = 0;
    for (const c of this.#counts) cumulative.push((acc += c));
    return { boundsMs: _BOUNDS_MS, cumulative, sumMs: this.#sumMs, count: this.#count };
  }
}

/** The mutable counters behind `NodeMetrics`. */
export class NodeCounters {
  proposals = 0;
  proposalsFailed = 0;
  readonly commitLatency = new LatencyHistogram();
  readonly fsyncLatency = new LatencyHistogram();
  rpcsSent = 0;
  rpcsReceived = 0;
  rpcsRefused = 0;
  /** Messages sent in the response of the request they answer (reply-slots.ts); also counted in `rpcsSent`. */
  rpcsSentInResponses = 0;
  snapshotBytesSent = 0;
  snapshotBytesReceived = 0;
  leaderChanges = 0;

  snapshot(): Omit<NodeMetrics, "logBytes" | "snapshotBytes"> {
    return {
      proposals: this.proposals,
      proposalsFailed: this.proposalsFailed,
      commitLatency: this.commitLatency.snapshot(),
      fsyncLatency: this.fsyncLatency.snapshot(),
      rpcsSent: this.rpcsSent,
      rpcsReceived: this.rpcsReceived,
      rpcsRefused: this.rpcsRefused,
      rpcsSentInResponses: this.rpcsSentInResponses,
      snapshotBytesSent: this.snapshotBytesSent,
      snapshotBytesReceived: this.snapshotBytesReceived,
      leaderChanges: this.leaderChanges,
    };
  }
}
