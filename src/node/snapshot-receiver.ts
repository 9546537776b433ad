/**
 * The receiving end of InstallSnapshot: the `SnapshotSink` the peer routes
 * (or the simulated network) write into. Chunks go straight to a partial
 * file of the snapshot store, named from the store's own counter (never
 * from request data), so the whole snapshot is never in memory; a resumed
 * transfer continues at the offset already held; a finished one is made
 * durable and handed, with its MsgSnap, to the driver, which lets the core
 * decide whether to install it. Nothing received becomes a stored snapshot
 * before the core installs it (`SnapshotStore.adopt`).
 *
 * One transfer per sender: a new one from the same sender replaces the
 * unfinished one.
 *
 * @module
 */
import { RaftError } from "../errors.ts";
import type { MsgSnap, NodeId } from "../raft/types.ts";
import type { IncomingSnapshot, SnapshotStore } from "../storage/snapshot-store.ts";
import type { SnapshotSink } from "../transport/routes.ts";
import { TransferProgress } from "./transfer-progress.ts";
import type { NodeCounters } from "./metrics.ts";

interface _Transfer {
  readonly from: NodeId;
  readonly snapshotId: string;
  readonly incoming: IncomingSnapshot;
  readonly msg: MsgSnap;
  readonly progress: TransferProgress | null;
}

/** Implements `SnapshotSink` over a `SnapshotStore`. */
export class SnapshotReceiver implements SnapshotSink {
  readonly #store: SnapshotStore;
  readonly #counters: NodeCounters;
  readonly #onComplete: (msg: MsgSnap, incoming: IncomingSnapshot) => Promise<void>;
  /** Unfinished transfers by sender. */
  readonly #transfers = new Map<NodeId, _Transfer>();
  #closed = false;
  readonly #log: { readonly logger: (line: string) => void; readonly now: () => number } | null;

  /**
   * `onComplete` gets the MsgSnap and the durable data of a finished
   * transfer; it owns the file from then on. With `log`, each transfer logs
   * its progress (see `TransferProgress`).
   */
  constructor(store: SnapshotStore, counters: NodeCounters, onComplete: (msg: MsgSnap, incoming: IncomingSnapshot) => Promise<void>, log: { readonly logger: (line: string) => void; readonly now: () => number } | null = null) {
    this.#store = store;
    this.#counters = counters;
    this.#onComplete = onComplete;
    this.#log = log;
  }

  async begin(from: NodeId, snapshotId: string, msg: MsgSnap, totalBytes?: number): Promise<number> {
    if (this.#closed) throw new RaftError("The node is closing");
    const t = this.#transfers.get(from);
    if (t !== undefined && t.snapshotId === snapshotId && t.msg.snapshot.index === msg.snapshot.index && t.msg.snapshot.term === msg.snapshot.term) {
      return t.incoming.bytes;
    }
    if (t !== undefined) await this.#drop(t);
    const incoming = await this.#store.createIncoming();
    const progress = this.#log === null ? null : new TransferProgress(this.#log.logger, `receiving snapshot ${msg.snapshot.index} from ${from}`, totalBytes ?? null, this.#log.now);
    this.#transfers.set(from, { from, snapshotId, incoming, msg, progress });
    return 0;
  }

  receivedOffset(from: NodeId, snapshotId: string): number | null {
    const t = this.#transfers.get(from);
    return t === undefined || t.snapshotId !== snapshotId ? null : t.incoming.bytes;
  }

  async write(from: NodeId, snapshotId: string, offset: number, chunk: Uint8Array): Promise<void> {
    const t = this.#transfer(from, snapshotId);
    if (t.incoming.bytes !== offset) throw new RaftError(`snapshot transfer ${snapshotId} from ${from} is not at offset ${offset}`);
    await t.incoming.write(chunk);
    this.#counters.snapshotBytesReceived += chunk.length;
    t.progress?.update(t.incoming.bytes);
  }

  async finish(from: NodeId, snapshotId: string, totalBytes: number): Promise<void> {
    const t = this.#transfer(from, snapshotId);
    if (t.incoming.bytes !== totalBytes) throw new RaftError(`snapshot transfer ${snapshotId} holds ${t.incoming.bytes} bytes, the sender says ${totalBytes}`);
    this.#transfers.delete(from);
    await t.incoming.finish();
    t.progress?.end(t.incoming.bytes);
    await this.#onComplete(t.msg, t.incoming);
  }

  /** Drops unfinished transfers (their partial files go too); new ones may begin. */
  async dropAll(): Promise<void> {
    for (const t of [...this.#transfers.values()]) await this.#drop(t);
  }

  /** Drops unfinished transfers (their partial files go too) and refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.dropAll();
  }

  #transfer(from: NodeId, snapshotId: string): _Transfer {
    const t = this.#transfers.get(from);
    if (t === undefined || t.snapshotId !== snapshotId) throw new RaftError(`snapshot transfer ${snapshotId} from ${from} is unknown`);
    return t;
  }

  async #drop(t: _Transfer): Promise<void> {
    this.#transfers.delete(t.from);
    t.progress?.end(t.incoming.bytes, new Error("dropped (superseded, idle or closing)"));
    await t.incoming.discard();
  }
}
