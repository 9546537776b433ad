/**
 * Picks the adapter for the runtime we are running on. This is the only
 * place that asks which runtime it is; everything else receives `runtime`.
 * Each adapter is imported dynamically so that one runtime never loads
 * another's modules (`bun:ffi` does not exist on Node).
 *
 * @module
 */
import type { RuntimeAdapter } from "./types.ts";

export type * from "./types.ts";

async function _load(): Promise<RuntimeAdapter> {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno !== undefined) return (await import("./deno/mod.ts")).denoAdapter;
  if (g.Bun !== undefined) return (await import("./bun/mod.ts")).bunAdapter;
  return (await import("./node/mod.ts")).nodeAdapter;
}

/** The adapter for the current runtime. */
export const runtime: RuntimeAdapter = await _load();
