/**
 * Waiting for a condition with a deadline: the only way tests synchronise
 * with processes and timers (never a bare sleep).
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";

/**
 * Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs` with
 * `what` (a function is called then, so the message can say how far things got).
 */
export async function waitFor<T>(what: string | (() => string), check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}${lastErr === undefined ? "" : ` (last error: ${String(lastErr)})`}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves with the first line of the child's stdout that matches `pattern`. */
export function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let errBuf = "";
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; stdout so far: ${JSON.stringify(buf.slice(-500))}; stderr: ${JSON.stringify(errBuf.slice(-1000))}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        if (pattern.test(line)) {
          cleanup();
          resolve(line);
          return;
        }
      }
    };
    const onErr = (d: Buffer) => {
      errBuf += d.toString();
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`Process exited (${code}) before ${what}; stdout: ${JSON.stringify(buf.slice(-500))}; stderr: ${JSON.stringify(errBuf.slice(-1000))}`));
    };
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onErr);
      child.off("exit", onExit);
    }
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onErr);
    child.on("exit", onExit);
  });
}

const _exits = new WeakMap<ChildProcess, Promise<void>>();

/**
 * Starts watching `child` for its exit; call right after spawning. (Deno's
 * `node:child_process` sets `signalCode` as soon as `kill()` is called, before
 * the process is gone, so the exit must be observed as an event.)
 */
export function trackExit(child: ChildProcess): ChildProcess {
  _exits.set(child, new Promise((r) => child.once("exit", () => r())));
  return child;
}

/** Resolves once `child` (passed to `trackExit` when spawned) has exited. */
export function exited(child: ChildProcess): Promise<void> {
  const p = _exits.get(child);
  if (p === undefined) throw new Error("exited() needs a child passed to trackExit() when it was spawned");
  return p;
}
