/**
 * Runs one seed of the simulator and reports what happened, never throwing:
 * a violated invariant, an assertion inside the core or any unexpected
 * exception becomes a failed {@link RunResult} that names the seed and the
 * command replaying it.
 *
 * @module
 */
import { SimViolation } from "./checks.ts";
import { World, type WorldStats } from "./world.ts";

/** Default lengths of the two phases, in ticks. */
export const faultTicksDefault = 400;
export const livenessTicksMaxDefault = 400;
/** Simulated time per tick. */
export { TICK_MS as tickMs } from "./world.ts";

/** What to run. */
export interface RunOptions {
  readonly seed: number;
  /** 3, 5 or 7; when omitted the seed picks it. */
  readonly nodes?: number;
  readonly faultTicks?: number;
  readonly livenessTicksMax?: number;
  /** Trace sink, or null/undefined for none. */
  readonly trace?: ((line: string) => void) | null;
}

/** The outcome of one seed. */
export interface RunResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  /** What failed (with stack for unexpected errors); null when ok. */
  readonly failure: string | null;
  /** The command that replays this seed exactly. */
  readonly replay: string;
  readonly stats: WorldStats;
}

/** The cluster size a seed uses when none is given. */
export function nodesForSeed(seed: number): number {
  return [3, 5, 7][Math.abs(seed) % 3] as number;
}

/** The command that replays a seed (with `--nodes` only when it was given). */
export function replayCommand(seed: number, nodes?: number): string {
  return `npm run sim -- --seed ${seed}${nodes === undefined ? "" : ` --nodes ${nodes}`}`;
}

/** Runs one seed to the end. */
export async function runSeed(opts: RunOptions): Promise<RunResult> {
  const nodes = opts.nodes ?? nodesForSeed(opts.seed);
  const world = new World({
    seed: opts.seed,
    nodes,
    faultTicks: opts.faultTicks ?? faultTicksDefault,
    livenessTicksMax: opts.livenessTicksMax ?? livenessTicksMaxDefault,
    trace: opts.trace ?? null,
  });
  const replay = replayCommand(opts.seed, opts.nodes);
  try {
    await world.run();
    return { seed: opts.seed, nodes, ok: true, failure: null, replay, stats: world.stats };
  } catch (err) {
    const what = err instanceof SimViolation ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { seed: opts.seed, nodes, ok: false, failure: `seed ${opts.seed} (${nodes} nodes) failed: ${what}\nreplay: ${replay}`, replay, stats: world.stats };
  }
}
