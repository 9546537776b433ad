/**
 * The clock seam: the only way the driver learns the time, waits, or draws
 * randomness. Production passes `systemClock`; the simulator passes its
 * seeded scheduler's virtual time, so a run of the real driver is a
 * function of one seed.
 *
 * @module
 */

/** Time, timers and randomness for a driver. */
export interface Clock {
  /** Milliseconds on a monotonic clock (any origin). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  /** A random unsigned 32-bit integer (seeds the core's PRNG). */
  randomU32(): number;
  /** Wall-clock milliseconds since the epoch, for what status reports to people (never for decisions). */
  wallMs(): number;
}

/** The real clock: `performance.now`, `setTimeout`, `crypto.getRandomValues`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  randomU32: () => crypto.getRandomValues(new Uint32Array(1))[0]!,
  wallMs: () => Date.now(),
};

/** Calls `fn` every `ms` milliseconds on `clock` until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let cancel: (() => void) | null = null;
  let stopped = false;
  const arm = () => {
    cancel = clock.setTimer(ms, () => {
      if (stopped) return;
      arm();
      fn();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel?.();
  };
}
