/**
 * Progress lines for a long transfer (a snapshot sent to a follower, or
 * received from the leader): one when it starts, at most one per
 * `PROGRESS_LOG_INTERVAL_MS` while it runs (bytes so far and, when the total
 * is known, the percentage), and one when it ends. The clock is passed in,
 * so the simulator's virtual time works as well as the real one. Also the
 * percentage of a learner's catch-up (`CatchUpGaps`).
 *
 * @module
 */

/** At most one progress line per transfer per this many milliseconds. */
export const PROGRESS_LOG_INTERVAL_MS = 1000;

function _amount(bytes: number, totalBytes: number | null): string {
  if (totalBytes === null || totalBytes <= 0) return `${bytes} bytes`;
  return `${bytes} of ${totalBytes} bytes (${Math.floor((100 * Math.min(bytes, totalBytes)) / totalBytes)}%)`;
}

/** The progress log of one transfer. */
export class TransferProgress {
  readonly #logger: (line: string) => void;
  readonly #what: string;
  readonly #now: () => number;
  readonly #startedMs: number;
  #totalBytes: number | null;
  #lastLogMs: number;
  #ended = false;

  /** Logs the start: "`what`: started, N bytes". */
  constructor(logger: (line: string) => void, what: string, totalBytes: number | null, now: () => number, startedAtBytes = 0) {
    this.#logger = logger;
    this.#what = what;
    this.#now = now;
    this.#totalBytes = totalBytes;
    this.#startedMs = now();
    this.#lastLogMs = this.#startedMs;
    this.#logger(`${what}: started${startedAtBytes > 0 ? ` at ${_amount(startedAtBytes, totalBytes)}` : totalBytes === null ? "" : `, ${totalBytes} bytes`}`);
  }

  /** `bytes` have gone through so far: logs them if the last line is old enough. */
  update(bytes: number): void {
    if (this.#ended) return;
    const now = this.#now();
    if (now - this.#lastLogMs < PROGRESS_LOG_INTERVAL_MS) return;
    this.#lastLogMs = now;
    this.#logger(`${this.#what}: ${_amount(bytes, this.#totalBytes)}`);
  }

  /** The transfer ended: done, or failed with `error`. Logs once. */
  end(bytes: number, error: Error | null = null): void {
    if (this.#ended) return;
    this.#ended = true;
    const s = ((this.#now() - this.#startedMs) / 1000).toFixed(1);
    this.#logger(error === null ? `${this.#what}: done, ${bytes} bytes in ${s} s` : `${this.#what}: failed after ${_amount(bytes, this.#totalBytes)} in ${s} s: ${error.message}`);
  }
}

/**
 * A learner's catch-up, as a percentage: of the gap it had at its first
 * round, how much is closed (catch-up rounds come at most once per election
 * timeout, so their lines are already rare). Entries, not bytes: the core
 * counts a learner's lag in entries.
 */
export class CatchUpGaps {
  readonly #firstLag = new Map<string, number>();

  /** The percentage for round `round` of `id` at `lag` entries behind (0 when it fell further behind). */
  percent(id: string, round: number, lag: number): number {
    if (round <= 1 || !this.#firstLag.has(id)) this.#firstLag.set(id, lag);
    const first = this.#firstLag.get(id)!;
    if (first <= 0) return 100;
    return Math.max(0, Math.floor((100 * (first - lag)) / first));
  }

  /** Catching up `id` ended. */
  forget(id: string): void {
    this.#firstLag.delete(id);
  }
}
