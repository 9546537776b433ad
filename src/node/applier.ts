/**
 * The applier seam: what the driver hands committed entries to. In caller
 * mode it is the user's state machine on the driver's own thread
 * (`localApplier`); in worker mode a remote applier that ships batches to
 * the state machine's thread (`./worker/remote-applier.ts`); in the
 * simulator a model state machine that checks idempotent replay.
 *
 * An applier applies entries in log order and settles the proposals
 * waiting on them (the driver's `PendingTable` hands them over with the
 * entries): the result of `apply` goes to the caller of `propose` as is.
 *
 * @module
 */
import type { Entry } from "../raft/types.ts";
import type { Proposal } from "./pending.ts";
import type { SnapshotSource, StateMachine } from "./types.ts";

/** Settles a proposal with what the state machine returned or threw. */
export type SettleFn = (p: Proposal, result: unknown, failed: Error | null) => void;

/** Where committed entries go (see the module comment). */
export interface Applier {
  /**
   * Applies `entries` in order (only "normal" ones reach the state machine;
   * the driver already skipped what was applied before) and settles
   * `waiting[i]`, the proposal waiting on `entries[i]` (or null), through
   * `settle`. Returns a promise only when some work is asynchronous; the
   * driver counts the batch as applied once it returns or resolves.
   */
  apply(entries: readonly Entry[], waiting: readonly (Proposal | null)[], settle: SettleFn): void | Promise<void>;
  /** The index of the last entry the state machine ever applied (0 if none). */
  lastApplied(): number | Promise<number>;
  /** The state as of `lastApplied()`, or null when the state machine cannot snapshot. */
  readonly snapshot: (() => Promise<SnapshotSource>) | null;
  /** Replaces the whole state with a snapshot taken at `index`, or null when it cannot restore. */
  readonly restore: ((index: number, chunks: AsyncIterable<Uint8Array>) => Promise<void>) | null;
}

function _asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The user's state machine on the driver's thread. */
export function localApplier(sm: StateMachine): Applier {
  /** The slow path: a state machine whose apply returned a promise; the rest of the batch waits for it. */
  const applyAsync = async (entries: readonly Entry[], waiting: readonly (Proposal | null)[], settle: SettleFn, from: number, pending: Promise<unknown>): Promise<void> => {
    let current: Promise<unknown> | null = pending;
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!;
      if (current === null && e.type !== "normal") continue;
      let result: unknown;
      let failed: Error | null = null;
      try {
        result = await (current ?? sm.apply(e.index, e.data));
      } catch (err) {
        failed = _asError(err);
      }
      current = null;
      const p = waiting[i];
      if (p !== null && p !== undefined) settle(p, result, failed);
    }
  };
  return {
    apply(entries, waiting, settle) {
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (e.type !== "normal") continue;
        let result: unknown;
        let failed: Error | null = null;
        try {
          result = sm.apply(e.index, e.data);
        } catch (err) {
          failed = _asError(err);
        }
        if (failed === null && result instanceof Promise) return applyAsync(entries, waiting, settle, i, result);
        const p = waiting[i];
        if (p !== null && p !== undefined) settle(p, result, failed);
      }
    },
    lastApplied: () => sm.lastApplied(),
    snapshot: sm.snapshot === undefined ? null : async () => await sm.snapshot!(),
    restore: sm.restore === undefined ? null : (index, chunks) => sm.restore!(index, chunks),
  };
}
