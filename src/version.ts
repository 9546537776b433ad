/**
 * The package's version, for `raft --version`. A constant rather than a read
 * of package.json at run time: the CLI starts without touching the file
 * system, and the JSR package (which ships no package.json) has it too.
 * tests/package.test.ts checks it against package.json and deno.json.
 *
 * @module
 */

/** This release's version (semver), the same as in package.json and deno.json. */
export const VERSION = "0.1.0";
