/**
 * The receiving end of InstallSnapshot: the `SnapshotSink` the peer routes
 * write into. Chunks go straight to a partial file in the data directory
 * (never the whole snapshot in memory); a resumed transfer continues at the
 * offset already held; a finished one is fsynced, adopted into the
 * `SnapshotStore`, and its MsgSnap handed to the core, which decides whether
 * to install it.
 *
 * @module
 */
import * as fs from "node:fs";
import { StorageFailedError } from "../errors.ts";
import type { MsgSnap, NodeId } from "../raft/types.ts";
import type { SnapshotSink } from "../transport/routes.ts";
import type { NodeCounters } from "./metrics.ts";
import type { SnapshotStore } from "./snapshot-store.ts";

interface _Transfer {
  readonly key: string;
  readonly file: string;
  readonly handle: fs.promises.FileHandle;
  readonly msg: MsgSnap;
  offset: number;
}

/** Implements `SnapshotSink` over a `SnapshotStore`. */
export class SnapshotReceiver implements SnapshotSink {
  readonly #store: SnapshotStore;
  readonly #counters: NodeCounters;
  readonly #onComplete: (msg: MsgSnap) => void;
  readonly #transfers = new Map<string, _Transfer>();

  /** `onComplete` gets the MsgSnap of a snapshot now durable in the store. */
  constructor(store: SnapshotStore, counters: NodeCounters, onComplete: (msg: MsgSnap) => void) {
    this.#store = store;
    this.#counters = counters;
    this.#onComplete = onComplete;
  }

  async begin(from: NodeId, snapshotId: string, msg: MsgSnap): Promise<number> {
    const key = `${from}/${snapshotId}`;
    const existing = this.#transfers.get(key);
    if (existing !== undefined && existing.msg.snapshot.index === msg.snapshot.index && existing.msg.snapshot.term === msg.snapshot.term) {
      return existing.offset;
    }
    // One transfer per sender: a new one replaces whatever it sent before.
    for (const t of [...this.#transfers.values()]) {
      if (t.key.startsWith(`${from}/`)) await this.#drop(t);
    }
    const file = this.#store.incomingPath(from, snapshotId);
    const handle = await fs.promises.open(file, "w");
    this.#transfers.set(key, { key, file, handle, msg, offset: 0 });
    return 0;
  }

  receivedOffset(from: NodeId, snapshotId: string): number | null {
    return this.#transfers.get(`${from}/${snapshotId}`)?.offset ?? null;
  }

  async write(from: NodeId, snapshotId: string, offset: number, chunk: Uint8Array): Promise<void> {
    const t = this.#transfers.get(`${from}/${snapshotId}`);
    if (t === undefined || t.offset !== offset) throw new Error(`snapshot transfer ${snapshotId} from ${from} is not at offset ${offset}`);
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await t.handle.write(chunk, done, chunk.length - done, offset + done);
      done += bytesWritten;
    }
    t.offset += chunk.length;
    this.#counters.snapshotBytesReceived += chunk.length;
  }

  async finish(from: NodeId, snapshotId: string, totalBytes: number): Promise<void> {
    const key = `${from}/${snapshotId}`;
    const t = this.#transfers.get(key);
    if (t === undefined) throw new Error(`snapshot transfer ${snapshotId} from ${from} is unknown`);
    if (t.offset !== totalBytes) throw new Error(`snapshot transfer ${snapshotId} holds ${t.offset} bytes, the sender says ${totalBytes}`);
    this.#transfers.delete(key);
    try {
      await t.handle.datasync();
      await t.handle.close();
    } catch (err) {
      throw new StorageFailedError(t.file, "fdatasync", err);
    }
    await this.#store.adopt(t.file, t.msg.snapshot);
    this.#onComplete(t.msg);
  }

  /** Closes partial transfers (their files are removed at the next start). */
  async close(): Promise<void> {
    for (const t of [...this.#transfers.values()]) await this.#drop(t);
  }

  async #drop(t: _Transfer): Promise<void> {
    this.#transfers.delete(t.key);
    await t.handle.close().catch(() => {});
    fs.rmSync(t.file, { force: true });
  }
}
