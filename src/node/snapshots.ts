/**
 * Snapshots and compaction around one driver: built-in snapshots of a state
 * machine that has `snapshot`/`restore` (taken once the log holds
 * `snapshotLogBytes` since the last one), the seed's `beginSnapshot` /
 * `endSnapshot` otherwise, compaction that never drops what the state
 * machine, a follower or a transfer still needs, streaming snapshots to
 * followers whose entries are gone, and installing the ones a leader sends:
 * received data is kept apart until the core accepts it, adopted into the
 * store by the Ready that installs it, and restored into the state machine
 * only once the store and the log both hold it (`./ready-loop.ts`).
 *
 * @module
 */
import { RaftError, StorageCorruptError, StorageFailedError } from "../errors.ts";
import type { Raft } from "../raft/raft.ts";
import type { MsgSnap, NodeId, SnapshotMeta } from "../raft/types.ts";
import type { IncomingSnapshot, StoredSnapshot } from "../storage/snapshot-store.ts";
import type { Applier } from "./applier.ts";
import type { NodeCounters } from "./metrics.ts";
import { type NodeStorage, restorableSnapshot } from "./node-storage.ts";
import type { PendingTable } from "./pending.ts";
import type { ReadyLoop } from "./ready-loop.ts";
import { SnapshotReceiver } from "./snapshot-receiver.ts";
import type { Transport } from "./transport.ts";
import { TransferProgress } from "./transfer-progress.ts";
import type { NodeEvent, SnapshotTaken } from "./types.ts";

/** What `Snapshots` needs from its driver. */
export interface SnapshotsDeps {
  readonly storage: NodeStorage;
  readonly applier: Applier;
  readonly raft: Raft;
  readonly loop: ReadyLoop;
  readonly transport: Transport;
  readonly pending: PendingTable;
  readonly counters: NodeCounters;
  /** Built-in snapshot once this many bytes of entries were appended since the last. */
  readonly snapshotLogBytes: number;
  readonly logger: (line: string) => void;
  /** The driver's clock (ms, monotonic): paces transfer progress lines. */
  now(): number;
  emit(ev: NodeEvent): void;
  /** The index the state machine holds (Invariant: <= the commit index). */
  applied(): number;
  /** The state machine was replaced by a snapshot at `index`. */
  restored(index: number): void;
  closed(): boolean;
  /** Schedules a turn of the Ready loop. */
  kick(): void;
  /** A storage operation failed: the node must stop (a failed fsync is never retried). */
  fatal(err: unknown): void;
}

/** A snapshot being sent to a follower. */
export interface SnapshotTransfer {
  sentBytes: number;
  totalBytes: number | null;
  /** The index being sent: compaction keeps the log from it on. */
  index: number;
}

/** Snapshot and compaction work of one driver (see the module comment). */
export class Snapshots {
  readonly receiver: SnapshotReceiver;
  readonly #d: SnapshotsDeps;
  readonly #transfers = new Map<NodeId, SnapshotTransfer>();
  /** Received snapshots the core accepted, waiting for the Ready that installs them, by "index/term". */
  readonly #accepted = new Map<string, IncomingSnapshot>();
  #bytesSinceSnapshot = 0;
  #snapshotting = false;
  #compactions: Promise<void> = Promise.resolve();
  /** Indexes of installed snapshots whose restore into the state machine is still queued: never pruned before it runs. */
  readonly #toRestore = new Set<number>();

  constructor(deps: SnapshotsDeps) {
    this.#d = deps;
    this.receiver = new SnapshotReceiver(deps.storage.snapshots, deps.counters, (msg, incoming) => this.#received(msg, incoming), { logger: deps.logger, now: () => deps.now() });
  }

  /** The transfer to `id` in progress, if any. */
  transfer(id: NodeId): SnapshotTransfer | undefined {
    return this.#transfers.get(id);
  }

  // ---- taking snapshots and compacting ----

  /** Entry bytes were made durable: maybe time for a built-in snapshot. */
  onAppended(bytes: number): void {
    const d = this.#d;
    this.#bytesSinceSnapshot += bytes;
    if (this.#bytesSinceSnapshot < d.snapshotLogBytes || d.applier.snapshot === null || d.applier.restore === null || this.#snapshotting) return;
    this.#bytesSinceSnapshot = 0;
    void this.#builtIn().catch((err) => this.#failed("built-in snapshot", err));
  }

  /** Built-in compaction: seal the log, snapshot the state machine to the data directory, drop the log up to it. */
  async #builtIn(): Promise<void> {
    this.#snapshotting = true;
    try {
      await this.#d.storage.log.beginSnapshot();
      const s = await this.take();
      await this.compact(s.meta.index);
    } finally {
      this.#snapshotting = false;
    }
  }

  /**
   * `raft snapshot take`: a built-in snapshot now and compaction up to it
   * (never past what a follower or a transfer still needs, as always).
   * @throws RaftError when the state machine has no snapshot()/restore()
   */
  async takeNow(): Promise<SnapshotTaken> {
    const d = this.#d;
    if (d.applier.snapshot === null || d.applier.restore === null) {
      throw new RaftError("The state machine has no snapshot() and restore(): compact with beginSnapshot()/endSnapshot() instead");
    }
    this.#bytesSinceSnapshot = 0;
    this.#snapshotting = true;
    try {
      await d.storage.log.beginSnapshot().catch((err) => this.#storageFailure(err));
      const s = await this.take().catch((err) => this.#storageFailure(err));
      await this.compact(s.meta.index);
      return { index: s.meta.index, term: s.meta.term, bytes: s.byteLength, compactedThrough: d.storage.log.snapshotMeta().index };
    } finally {
      this.#snapshotting = false;
    }
  }

  /**
   * A consistent image for a backup: the stored snapshot at the applied
   * index when there is one, else a fresh one (taken on the apply chain, so
   * as of one applied, hence committed, index). Call `release` when done:
   * it prunes the snapshots no restart needs.
   */
  async forBackup(): Promise<{ stored: StoredSnapshot; release: () => Promise<void> }> {
    const d = this.#d;
    if (d.applier.snapshot === null) throw new RaftError("The state machine has no snapshot(): a backup needs one");
    const have = restorableSnapshot(d.storage);
    // The state machine's own last id (no-ops and config entries never reach it, so it may trail the applied index).
    const smApplied = Math.min(await d.applier.lastApplied(), d.applied());
    // A failed write of the snapshot stops the node, as any failed fsync does.
    const stored = have !== null && have.meta.index === smApplied ? have : await this.take().catch((err) => this.#storageFailure(err));
    const release = async () => {
      if (d.closed()) return;
      await d.storage.snapshots.prune(d.storage.log.snapshotMeta().index, this.#toRestore).catch((err) => this.#failed("pruning snapshots after a backup", err));
    };
    return { stored, release };
  }

  /** The seed's `beginSnapshot`: seals the log; returns the marker (the state machine's own last id). */
  async beginSnapshot(): Promise<number> {
    await this.#d.storage.log.beginSnapshot().catch((err) => this.#storageFailure(err));
    return Math.min(await this.#d.applier.lastApplied(), this.#d.applied());
  }

  /**
   * Snapshots the state machine into the store. Runs on the apply chain
   * (nothing is applied meanwhile), so the stream is the state as of one index.
   */
  take(): Promise<StoredSnapshot> {
    return this.#d.loop.exclusive(async () => {
      const d = this.#d;
      if (d.applier.snapshot === null) throw new RaftError("The state machine has no snapshot()");
      const src = await d.applier.snapshot();
      const log = d.storage.log;
      const index = src.index;
      const first = log.firstIndex();
      if (index < first - 1 || index > d.applied()) {
        throw new RaftError(`The state machine's snapshot is at ${index}, outside what the log can describe [${first - 1}, ${d.applied()}]`);
      }
      const term = index === first - 1 ? log.snapshotMeta().term : log.term(index);
      const membership = d.raft.configAt(index).members;
      const stored = await d.storage.snapshots.write({ index, term, membership }, src.chunks);
      d.logger(`took snapshot ${index} (${stored.byteLength} bytes)`);
      d.emit({ type: "snapshot", what: "taken", index });
      return stored;
    });
  }

  /**
   * Drops the log up to `marker` at most: never past what is applied, or
   * what a follower or snapshot transfer still needs. Compactions run one
   * at a time (built-in ones and the seed's `endSnapshot` may overlap), each
   * deciding its point once the previous one is done.
   */
  compact(marker: number): Promise<void> {
    const run = this.#compactions.then(() => this.#compact(marker)).catch((err) => this.#storageFailure(err));
    this.#compactions = run.catch(() => {});
    return run;
  }

  async #compact(marker: number): Promise<void> {
    const d = this.#d;
    const log = d.storage.log;
    // Never past the state machine's own last id: a restart must find every entry after it in the log.
    let upTo = Math.min(marker, d.applied(), await d.applier.lastApplied());
    if (d.raft.status().role === "leader") upTo = Math.min(upTo, d.raft.compactionFloor() - 1);
    for (const t of this.#transfers.values()) upTo = Math.min(upTo, t.index);
    if (upTo <= log.snapshotMeta().index || d.closed()) return;
    const term = log.term(upTo);
    const membership = d.raft.configAt(upTo).members;
    await log.endSnapshot(upTo, term, membership);
    await d.storage.snapshots.prune(log.snapshotMeta().index, this.#toRestore);
    d.logger(`compacted the log through index ${upTo}`);
  }

  /** Rethrows `err`, stopping the node first when it is a storage failure. */
  #storageFailure(err: unknown): never {
    if (err instanceof StorageFailedError || err instanceof StorageCorruptError) this.#d.fatal(err);
    throw err;
  }

  /** A snapshot task failed: a storage failure stops the node; anything else is logged (the core retries). */
  #failed(what: string, err: unknown): void {
    const d = this.#d;
    if (d.closed()) return;
    if (err instanceof StorageFailedError || err instanceof StorageCorruptError) d.fatal(err);
    else d.logger(`${what} failed: ${(err as Error).message}`);
  }

  // ---- sending ----

  /** Streams a snapshot to a follower whose entries are compacted away; reports the outcome to the core. */
  send(msg: MsgSnap): void {
    if (this.#transfers.has(msg.to)) return;
    const d = this.#d;
    const transfer: SnapshotTransfer = { sentBytes: 0, totalBytes: null, index: msg.snapshot.index };
    this.#transfers.set(msg.to, transfer);
    let progress: TransferProgress | null = null;
    void (async () => {
      let s = restorableSnapshot(d.storage);
      if (s === null || s.meta.index < d.storage.log.firstIndex() - 1) s = await this.take();
      transfer.index = s.meta.index;
      transfer.totalBytes = s.byteLength;
      const stored = s;
      const p = new TransferProgress(d.logger, `sending snapshot ${stored.meta.index} to ${msg.to}`, stored.byteLength, () => d.now());
      progress = p;
      await d.transport.sendSnapshot({ ...msg, snapshot: stored.meta }, (offset) => d.storage.snapshots.read(stored, offset), stored.byteLength, (bytes) => {
        d.counters.snapshotBytesSent += bytes - transfer.sentBytes;
        transfer.sentBytes = bytes;
        p.update(bytes);
      });
      p.end(stored.byteLength);
      d.emit({ type: "snapshot", what: "sent", index: stored.meta.index, peer: msg.to });
      if (!d.closed()) d.raft.reportSnapshot(msg.to, true);
    })().catch((err) => {
      if (d.closed()) return;
      progress?.end(transfer.sentBytes, err instanceof Error ? err : new Error(String(err)));
      this.#failed(`snapshot transfer to ${msg.to}`, err);
      d.raft.reportSnapshot(msg.to, false);
    }).finally(() => {
      this.#transfers.delete(msg.to);
      if (!d.closed()) d.kick();
    });
  }

  // ---- receiving and installing ----

  /** A transfer finished: the core decides; its data is kept only if the core accepted exactly this snapshot. */
  async #received(msg: MsgSnap, incoming: IncomingSnapshot): Promise<void> {
    const d = this.#d;
    if (d.closed()) {
      await incoming.discard();
      return;
    }
    d.raft.step(msg);
    const accepted = d.raft.acceptedSnapshot();
    const key = `${msg.snapshot.index}/${msg.snapshot.term}`;
    if (accepted !== null && accepted.index === msg.snapshot.index && accepted.term === msg.snapshot.term && !this.#accepted.has(key)) {
      this.#accepted.set(key, incoming);
    } else {
      await incoming.discard();
    }
    d.kick();
  }

  /** Ready.snapshot, step 1: the received data becomes a stored snapshot (durable) before the log is reset to it. */
  async store(meta: SnapshotMeta): Promise<void> {
    const key = `${meta.index}/${meta.term}`;
    const incoming = this.#accepted.get(key);
    if (incoming === undefined) throw new RaftError(`The core installs snapshot ${key}, but no received data for it is held`);
    this.#accepted.delete(key);
    this.#toRestore.add(meta.index);
    await this.#d.storage.snapshots.adopt(incoming, meta);
  }

  /** Ready.snapshot, last step (the store and the log hold it): the state machine becomes the snapshot. */
  async restore(meta: SnapshotMeta): Promise<void> {
    const d = this.#d;
    const s = d.storage.snapshots.get(meta.index);
    if (s === null || s.meta.term !== meta.term) throw new RaftError(`Snapshot ${meta.index} (term ${meta.term}) to install is not in the snapshot store`);
    if (d.applier.restore === null) {
      throw new RaftError("A snapshot arrived from the leader but the state machine has no restore(): give it snapshot() and restore() to let members catch up after compaction");
    }
    await d.applier.restore(meta.index, d.storage.snapshots.read(s));
    this.#toRestore.delete(meta.index);
    d.restored(meta.index);
    d.pending.dropUpTo(meta.index);
    await d.storage.snapshots.prune(d.storage.log.snapshotMeta().index, this.#toRestore);
    d.logger(`installed snapshot ${meta.index} (term ${meta.term}) from the leader`);
    d.emit({ type: "snapshot", what: "installed", index: meta.index });
  }

  /** Drops received data still waiting (the node stops). */
  async close(): Promise<void> {
    await this.receiver.close().catch(() => {});
    for (const incoming of this.#accepted.values()) await incoming.discard();
    this.#accepted.clear();
  }
}
