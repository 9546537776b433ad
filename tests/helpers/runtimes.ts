/**
 * How tests start real processes on each runtime, with the binaries that
 * `npm install` put in node_modules/.bin (nothing global is assumed).
 *
 * @module
 */
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository's root directory. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A runtime a test can start a child process on. */
export type RuntimeName = "node" | "deno" | "bun";

/** All three runtimes. */
export const RUNTIMES: readonly RuntimeName[] = ["node", "deno", "bun"];

/** tsx's ESM loader, for `node --import`. */
export const TSX_LOADER = pathToFileURL(path.join(REPO_ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** The command and arguments that run the TypeScript file `file` on `rt`. */
export function runCommand(rt: RuntimeName, file: string, args: readonly string[] = []): [string, string[]] {
  const bin = (name: string) => path.join(REPO_ROOT, "node_modules", ".bin", name);
  switch (rt) {
    case "node":
      // Node itself with tsx's loader, not the `tsx` launcher: the launcher runs
      // node as a grandchild, which a SIGKILL of the launcher would leave alive.
      return ["node", ["--import", TSX_LOADER, file, ...args]];
    case "deno":
      return [bin("deno"), ["run", "-A", file, ...args]];
    case "bun":
      return [bin("bun"), [file, ...args]];
  }
}

/**
 * The run of the suite that takes the checks whose outcome does not depend
 * on the runtime running the test file (clusters with one member per
 * runtime, the package linters): they run once per `npm test`, on the run
 * with the most room (Bun's, which runs its files two at a time and
 * finishes first).
 */
export const ONCE_PER_SUITE: RuntimeName = "bun";

/** The runtime running this test. */
export const CURRENT_RUNTIME: RuntimeName = (globalThis as { Deno?: unknown }).Deno !== undefined
  ? "deno"
  : (globalThis as { process?: { versions?: { bun?: string } } }).process?.versions?.bun !== undefined
  ? "bun"
  : "node";
