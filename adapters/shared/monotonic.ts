/**
 * The machine's monotonic clock through libc `clock_gettime`, for runtimes
 * whose `process.hrtime` counts from their own start (Deno, Bun): the
 * write tracer lines up stamps taken in different processes, which needs
 * one clock for all of them.
 *
 * @module
 */

/** Linux's `CLOCK_MONOTONIC`. */
const _CLOCK_MONOTONIC = 1;

/**
 * A nanosecond clock from `clockGettime` (the runtime's FFI binding of
 * `int clock_gettime(clockid_t, struct timespec *)`, the struct passed as
 * two 64-bit integers: seconds, nanoseconds).
 */
export function monotonicClock(clockGettime: (clockId: number, timespec: BigInt64Array) => number): () => bigint {
  const ts = new BigInt64Array(2);
  return () => {
    if (clockGettime(_CLOCK_MONOTONIC, ts) !== 0) throw new Error("clock_gettime(CLOCK_MONOTONIC) failed");
    return ts[0]! * 1_000_000_000n + ts[1]!;
  };
}
