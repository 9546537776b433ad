/**
 * The write tracer, for the benchmarks only (`bench/trace.ts`): with
 * `RAFT_TRACE_WRITES=DIR` in its environment a member records, for every
 * log index, when the write reached each stage of its way through it
 * (`DriverProbe.stage`), one line `stage index nanoseconds` in
 * `DIR/<member id>.trace`. The time is the machine's monotonic clock
 * (`now`, the adapter's `monotonicNs`), the same in every process, so the
 * lines of the leader and its followers can be put side by side, whatever
 * runtime each runs on. Off (no probe at all) when the variable is unset.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import type { DriverProbe } from "./ready-loop.ts";

/** A probe writing stage lines for member `id`, or null when tracing is off. */
export function writeTracerFromEnv(id: string, now: () => bigint): DriverProbe | null {
  const dir = process.env.RAFT_TRACE_WRITES;
  if (dir === undefined || dir === "") return null;
  fs.mkdirSync(dir, { recursive: true });
  const fd = fs.openSync(path.join(dir, `${id}.trace`), "w");
  let position = 0;
  let lines: string[] = [];
  const flush = () => {
    if (lines.length === 0) return;
    const bytes = new TextEncoder().encode(lines.join(""));
    lines = [];
    fs.writeSync(fd, bytes, 0, bytes.length, position);
    position += bytes.length;
  };
  const timer = setInterval(flush, 200);
  process.on("exit", flush);
  (timer as { unref?: () => void }).unref?.();
  return {
    stage(name, index) {
      lines.push(`${name} ${index} ${now()}\n`);
      if (lines.length >= 512) flush();
    },
  };
}
