/**
 * Steps of one `describe` that build on each other (one cluster, one page):
 * a failing step gets `context()` appended to its message, what is needed to
 * reproduce it (ports, data directories, member logs), and every later step
 * fails at once instead of running against a broken setup.
 *
 * @module
 */

/** A step wrapper for one chain of steps (see the module doc). */
export function stepper(context: () => string | Promise<string>): (fn: () => Promise<void>) => () => Promise<void> {
  let broken = false;
  return (fn) => async () => {
    if (broken) throw new Error("skipped: an earlier step failed");
    try {
      await fn();
    } catch (err) {
      broken = true;
      const e = err instanceof Error ? err : new Error(String(err));
      e.message = `${e.message}\n${await context()}`;
      throw e;
    }
  };
}
