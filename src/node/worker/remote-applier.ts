/**
 * The applier of a driver in a worker thread: the state machine lives on
 * the caller's thread, so each batch of committed entries crosses as one
 * message (the entries' bytes packed into one transferred buffer), tagged
 * with the call ids of the proposals made there: the caller's thread
 * settles each of them with `apply`'s result as it applies the entry (the
 * result never crosses threads). `lastApplied`, `snapshot` and `restore`
 * are calls across the boundary; snapshot bytes travel as pull-based chunk
 * streams.
 *
 * @module
 */
import type { Entry } from "../../raft/types.ts";
import type { Applier } from "../applier.ts";
import type { SnapshotSource } from "../types.ts";
import { APPLY_WINDOW, type ChunkStreams, type FromWorker, packBatch } from "./protocol.ts";

/** What the remote applier needs from the worker. */
export interface RemoteApplierPort {
  post(m: FromWorker, transfer?: ArrayBuffer[]): void;
  /** Asks the caller's thread to run a state-machine method; resolves with its answer. */
  smCall(method: "lastApplied" | "snapshot" | "restore", args: readonly unknown[]): Promise<unknown>;
  readonly streams: ChunkStreams;
}

/** Builds the applier (see the module comment); `acked(n)` must be called with every acknowledgement of `n` applied batches. */
export function remoteApplier(port: RemoteApplierPort, can: { readonly snapshot: boolean; readonly restore: boolean }): { applier: Applier; acked(count: number): void } {
  let outstanding = 0;
  const waiters: (() => void)[] = [];
  const applier: Applier = {
    apply(entries: readonly Entry[], waiting, settle) {
      const data: Uint8Array[] = [];
      const keys: number[] = [];
      const tags: number[] = [];
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const p = waiting[i] ?? null;
        if (e.type !== "normal") continue;
        data.push(e.data);
        keys.push(e.index);
        tags.push(p?.tag ?? 0);
        // Settled here for the worker's bookkeeping (commit latency); the caller's thread resolves the call itself.
        if (p !== null) settle(p, undefined, null);
      }
      const buf = packBatch(data, keys);
      port.post({ t: "apply", buf, tags, lastIndex: entries[entries.length - 1]!.index }, [buf]);
      outstanding++;
      // The caller's thread applies in order and handles every later message (read barriers,
      // snapshots, routes, calls) only after this one: the batch counts as applied once sent.
      if (outstanding <= APPLY_WINDOW) return;
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    lastApplied: () => port.smCall("lastApplied", []) as Promise<number>,
    snapshot: !can.snapshot ? null : async (): Promise<SnapshotSource> => {
      const { index, stream } = await port.smCall("snapshot", []) as { index: number; stream: number };
      return { index, chunks: port.streams.open(stream) };
    },
    restore: !can.restore ? null : async (index, chunks) => {
      await port.smCall("restore", [index, port.streams.offer(chunks)]);
    },
  };
  return {
    applier,
    acked(count) {
      if (!Number.isInteger(count) || count < 0 || count > outstanding) {
        throw new Error(`Assertion failed: ${count} apply batches acknowledged with ${outstanding} outstanding`);
      }
      outstanding -= count;
      // As before, each acknowledged batch lets one batch waiting past the window go on.
      for (let i = 0; i < count && waiters.length > 0; i++) waiters.shift()!();
    },
  };
}
