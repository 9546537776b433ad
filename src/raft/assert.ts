/**
 * Invariant checks that stay on in production (TigerBeetle style): a broken
 * invariant means the core's state can no longer be trusted, so it throws
 * at once instead of carrying on and corrupting the log.
 *
 * @module
 */

/**
 * Throws an `Error` naming the broken invariant when `condition` is false.
 *
 * @param condition what must hold
 * @param invariant names the invariant, e.g. "applied <= committed"
 * @param detail optional values that show how it broke
 * @throws Error "Raft invariant violated: <invariant>"
 */
export function assert(condition: boolean, invariant: string, detail?: string): asserts condition {
  if (!condition) {
    throw new Error(`Raft invariant violated: ${invariant}${detail === undefined ? "" : ` (${detail})`}`);
  }
}
