/**
 * The process side of `/metrics`: memory (`process.memoryUsage()`, which all
 * three runtimes implement), event-loop delay of the thread serving the
 * route (`./loop-delay.ts`), and a build-info gauge naming the package
 * version and the runtime (`raft_build_info{version, runtime,
 * runtime_version} 1`, as Prometheus exporters name theirs).
 *
 * @module
 */
import process from "node:process";
import { runtime } from "../../adapters/mod.ts";
import { VERSION } from "../version.ts";
import type { LoopDelayReading } from "./loop-delay.ts";
import type { Exposition } from "./metrics.ts";

/** Memory figures as `process.memoryUsage()` gives them (bytes). */
export interface MemoryReading {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
}

/** This process's memory; zeros where the runtime cannot say (never throws). */
export function memoryReading(): MemoryReading {
  try {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal };
  } catch {
    return { rss: 0, heapUsed: 0, heapTotal: 0 };
  }
}

/** Adds the build, memory and event-loop families to `x`; `thread` labels the per-thread ones. */
export function addProcessMetrics(x: Exposition, thread: string, mem: MemoryReading, loop: LoopDelayReading): void {
  x.family("raft_build_info", "gauge", "Always 1: the package version and the runtime this member runs on.");
  x.sample("raft_build_info", 1, { version: VERSION, runtime: runtime.name, runtime_version: runtime.version });
  x.one("raft_process_resident_memory_bytes", "gauge", "Resident set size of the process.", mem.rss);
  x.family("raft_process_heap_used_bytes", "gauge", "JavaScript heap in use, as the runtime reports it for the thread serving /metrics.");
  x.sample("raft_process_heap_used_bytes", mem.heapUsed, { thread });
  x.family("raft_process_heap_total_bytes", "gauge", "JavaScript heap reserved, as the runtime reports it for the thread serving /metrics.");
  x.sample("raft_process_heap_total_bytes", mem.heapTotal, { thread });
  x.histogramMs("raft_event_loop_delay_seconds", "How late a 100 ms timer fires on the thread serving /metrics (time it was busy).", loop.histogram, { thread });
  x.family("raft_event_loop_delay_max_seconds", "gauge", "Largest event-loop delay among the last 100 samples (about 10 s).");
  x.sample("raft_event_loop_delay_max_seconds", loop.recentMaxMs / 1000, { thread });
}
