/**
 * Runs the CLI as a real process on the runtime the tests run on, and
 * collects its exit code and output. On Node that is the compiled
 * `dist/cli.js` when the build is current (as `bin/raft` runs it; `npm test`
 * builds first), which starts in a fraction of the time `cli.ts` takes
 * through tsx; otherwise, and on Deno and Bun, `cli.ts` itself.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import * as path from "node:path";
import { runtime } from "../../adapters/mod.ts";
import { buildIsCurrent } from "../helpers/build.ts";
import { REPO_ROOT, runCommand } from "../helpers/runtimes.ts";
import type { RuntimeName } from "../helpers/runtimes.ts";

/** The CLI's entry file. */
export const CLI = path.join(REPO_ROOT, "cli.ts");

/** The runtime these tests run on (child processes use the same one). */
export const RUNTIME: RuntimeName = runtime.name;

let _compiled: boolean | undefined;

/** The command and arguments that run `raft ARGS` on `rt` (decided once per test process). */
export function cliCommand(rt: RuntimeName, args: readonly string[]): [string, string[]] {
  _compiled ??= buildIsCurrent();
  if (rt === "node" && _compiled) return ["node", [path.join(REPO_ROOT, "dist", "cli.js"), ...args]];
  return runCommand(rt, CLI, args);
}

/** What a finished CLI run left behind. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line, for failure messages. */
  readonly cmd: string;
}

/** Runs `raft ARGS` to completion (killed after `timeoutMs`), with `env` added to this process's environment. */
export function runCli(args: readonly string[], opts: { rt?: RuntimeName; timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  const [cmd, argv] = cliCommand(opts.rt ?? RUNTIME, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: opts.cwd ?? REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", ...opts.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, cmd: `${opts.rt ?? RUNTIME}: raft ${args.map((a) => JSON.stringify(a)).join(" ")}` });
    });
  });
}

/** Runs `tasks` with at most `limit` at a time. */
export async function pool<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}
