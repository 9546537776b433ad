/**
 * Small helpers every benchmark prints through, so figures from different
 * benchmarks and runtimes line up in one table.
 *
 * @module
 */
import process from "node:process";

/** The p-th percentile (0-100) of `values` (not modified). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** CPU time this process has used so far, every thread (`process.cpuUsage()` is process-wide on Node, Deno and Bun), in µs. */
export function processCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Prints one result line: runtime, what was measured, the figure. */
export function printRow(runtimeName: string, what: string, figure: string): void {
  console.log(`${runtimeName.padEnd(5)} ${what.padEnd(44)} ${figure}`);
}
