/**
 * The driver's inner loop: takes `Ready`s from the pure core and carries out
 * what each one asks, in the order the `Ready` contract requires
 * (src/raft/types.ts):
 *
 *  - `messages` go out at once (a leader replicates while its own write is
 *    in flight, Raft §10.2.1);
 *  - writes are group committed: while one batch is being written, every
 *    Ready produced meanwhile queues, and the next batch writes them all
 *    with one append and one fdatasync;
 *  - within a batch the writes are ordered, each durable before the next
 *    starts: a new term or vote (with the commit index already true of the
 *    durable log); a snapshot's data into the snapshot store, then the log's
 *    reset to it; the entries; the membership file; last, the new commit
 *    index. The term goes first because the entries may truncate ones this
 *    member acknowledged in the old term: a restart that found them gone
 *    under the old term would hold less than that term's leader counted
 *    (found by the simulator). The commit index goes last because it is only
 *    true of a log that holds the entries it counts: written beside a log
 *    repair (a truncation is a new segment, an fdatasync and a directory
 *    fsync), a commit-only write (one pwrite) could reach the disk first, and
 *    a crash there would leave a commit index over entries of an old term
 *    that never committed (etcd writes its hard state after the entries for
 *    the same reason);
 *  - `persistedMessages` (votes, AppendEntries acknowledgements) go out only
 *    once their batch is durable ("saved to stable storage BEFORE messages
 *    are sent"), and only those of the term the batch left durable: a later
 *    Ready in the same batch may have moved to a new term and truncated
 *    entries an earlier one acknowledged to the old term's leader, which
 *    may still count that ack (found by the simulator, seed 100190);
 *  - committed entries are applied in order on an apply chain that runs
 *    beside the writes (they are durable already); a snapshot is restored
 *    into the state machine only once the snapshot store and the log hold
 *    it durably, so a crash never leaves the state machine ahead of the log;
 *  - each Ready is advanced, in order, once it is both durable and applied.
 *
 * Any storage error is fatal: the loop stops and never reports anything
 * durable after it (a failed fsync is never retried, "fsyncgate").
 *
 * @module
 */
import type { Raft } from "../raft/raft.ts";
import type { ConfigState, Entry, HardState, Message, RaftStatus, Ready, SnapshotMeta } from "../raft/types.ts";
import type { Clock } from "./clock.ts";
import type { NodeCounters } from "./metrics.ts";
import type { NodeStorage } from "./node-storage.ts";

/**
 * What a simulator (or a test) may watch; production passes none. The
 * calls happen at the moments their names say, synchronously.
 */
export interface DriverProbe {
  /** The core was built from the durable state (before the first tick); `status` is its status. */
  started?(status: RaftStatus): void;
  /** A Ready was taken from the core, before anything is done with it; `status` is the core's right after. */
  ready?(rd: Ready, status: RaftStatus): void;
  /** A write batch is durable: the hard state the state file now holds durably (term and vote; its commit index may be older). */
  persisted?(durable: HardState): void;
  /**
   * A write reached a stage of its way through this member (the write tracer,
   * `./write-trace.ts`): "propose", "durable", "send-app", "recv-app",
   * "send-ack", "recv-ack", "commit", "apply", "applied", for log `index`.
   */
  stage?(name: string, index: number): void;
}

/** What the loop needs from the driver around it. */
export interface ReadyLoopDeps {
  readonly raft: Raft;
  readonly storage: NodeStorage;
  readonly clock: Clock;
  readonly counters: NodeCounters;
  readonly probe: DriverProbe | null;
  /** Called at the start of every turn, before Readys are taken (flushes buffered proposals). */
  beforeTurn(): void;
  /** Sees every Ready first (events, read states). */
  onReady(rd: Ready): void;
  /** Sends messages to peers (fire and forget); MsgSnap included. */
  send(msgs: readonly Message[]): void;
  /** Makes the received snapshot `meta` describes durable in the snapshot store (before the log is reset to it). */
  storeSnapshot(meta: SnapshotMeta): Promise<void>;
  /** Replaces the state machine with the stored snapshot `meta` describes (once it is durable everywhere). */
  restoreSnapshot(meta: SnapshotMeta): Promise<void>;
  /** Applies committed entries in order; returns a promise only if some apply was asynchronous. */
  apply(entries: readonly Entry[]): void | Promise<void>;
  /** Called before a batch with entries is written, with them (the free-space check). */
  beforeAppend(entries: readonly Entry[]): void;
  /** Entry data bytes made durable (for the built-in snapshot trigger). */
  onAppended(bytes: number): void;
  /** Called after every turn (waiters re-check their conditions). */
  afterTurn(): void;
  /** A write or apply failed: the node must stop. */
  onFatal(err: unknown): void;
}

interface _Item {
  readonly rd: Ready;
  persisted: boolean;
  applied: boolean;
  /** Resolves once `persisted` is set (a snapshot restore waits for it). */
  readonly durable: Promise<void>;
  readonly markDurable: () => void;
}

/** Minimum time between lazy writes of the commit index alone. */
const _COMMIT_WRITE_INTERVAL_MS = 1000;

/** Drives one `Raft` core (see the module comment). */
export class ReadyLoop {
  readonly #d: ReadyLoopDeps;
  /** Readys handed out and not yet advanced, oldest first. */
  readonly #pending: _Item[] = [];
  /** Readys waiting for the next write batch. */
  #toPersist: _Item[] = [];
  #writing = false;
  #scheduled = false;
  #stopped = false;
  /** A write or apply failed: reported once, nothing is durable after it. */
  #failed = false;
  #applyChain: Promise<void> = Promise.resolve();
  /** The hard state last written (durably for term and vote; its commit index possibly lazily). */
  #written: HardState;
  /**
   * The newest commit index seen in a Ready whose batch is durable.
   * Invariant: every entry up to it is in the durable log (so it may be written to the state file).
   */
  #commitIndex: number;
  #commitWrittenAtMs = -Infinity;
  /** Resolves waiters of `idle()`. */
  #idleWaiters: (() => void)[] = [];

  constructor(deps: ReadyLoopDeps, written: HardState) {
    this.#d = deps;
    this.#written = written;
    this.#commitIndex = written.commitIndex;
  }

  /** Schedules a turn (coalesced: many kicks in one tick make one turn). */
  kick(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#turn());
  }

  /** Stops taking Readys; writes in flight finish. */
  stop(): void {
    this.#stopped = true;
  }

  /** True once stopped (closed, or after a fatal error). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Resolves once nothing is being written or applied. */
  idle(): Promise<void> {
    if (!this.#writing && this.#pending.every((i) => i.persisted && i.applied)) return this.#applyChain;
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /**
   * Runs `fn` on the apply chain: after every apply scheduled so far and
   * before any scheduled later, so the state machine holds still while `fn`
   * runs (a snapshot of it is then the state as of one index).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#applyChain.then(fn);
    this.#applyChain = run.then(() => {}, () => {});
    return run;
  }

  /** Writes the newest commit index if it moved (on close, and from ticks), unless a batch is being written. */
  async flushCommitIndex(force: boolean): Promise<void> {
    if (this.#writing || this.#failed || (this.#stopped && !force) || this.#commitIndex <= this.#written.commitIndex) return;
    if (!force && this.#d.clock.now() - this.#commitWrittenAtMs < _COMMIT_WRITE_INTERVAL_MS) return;
    this.#writing = true;
    const hs = { ...this.#written, commitIndex: this.#commitIndex };
    try {
      await this.#d.storage.state.write(hs);
      this.#written = hs;
      this.#commitWrittenAtMs = this.#d.clock.now();
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#writing = false;
    this.#pump();
  }

  #turn(): void {
    this.#scheduled = false;
    if (this.#stopped) return;
    const d = this.#d;
    try {
      d.beforeTurn();
      while (d.raft.hasReady()) {
        const rd = d.raft.ready();
        d.probe?.ready?.(rd, d.raft.status());
        let markDurable!: () => void;
        const durable = new Promise<void>((r) => (markDurable = r));
        const item: _Item = { rd, persisted: false, applied: false, durable, markDurable };
        this.#pending.push(item);
        this.#toPersist.push(item);
        d.onReady(rd);
        if (rd.messages.length > 0) d.send(rd.messages);
        if (rd.snapshot !== null || rd.committedEntries.length > 0) this.#scheduleApply(item);
        else item.applied = true;
      }
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#pump();
    d.afterTurn();
  }

  #scheduleApply(item: _Item): void {
    const { snapshot, committedEntries } = item.rd;
    this.#applyChain = this.#applyChain.then(async () => {
      if (snapshot !== null) {
        // The state machine may move to the snapshot only once the store and the log hold it.
        await item.durable;
        if (this.#stopped) return;
        await this.#d.restoreSnapshot(snapshot);
      }
      if (this.#stopped) return;
      if (committedEntries.length > 0) {
        const p = this.#d.apply(committedEntries);
        if (p !== undefined) await p;
      }
      item.applied = true;
      this.#tryAdvance();
    }).catch((err) => this.#fail(err));
  }

  /** Starts the next write batch if none is in flight. */
  #pump(): void {
    if (this.#writing || this.#stopped || this.#toPersist.length === 0) {
      this.#notifyIdle();
      return;
    }
    const batch = this.#toPersist;
    this.#toPersist = [];
    this.#writing = true;
    // What follows the write (advancing the core, which reads the log) can meet a store another
    // operation poisoned meanwhile: that stops the node too, never an unhandled rejection.
    this.#write(batch).catch((err: unknown) => this.#fail(err));
  }

  async #write(batch: _Item[]): Promise<void> {
    const d = this.#d;
    const { log, state, membership } = d.storage;
    const t0 = d.clock.now();
    let bytes = 0;
    let synced = false;
    let entries: Entry[] = [];
    try {
      let snapshot: SnapshotMeta | null = null;
      let hs: HardState | null = null;
      let config: ConfigState | null = null;
      for (const { rd } of batch) {
        if (rd.snapshot !== null) {
          // Entries before a snapshot in the same batch are superseded by it.
          if (snapshot !== null) {
            await d.storeSnapshot(snapshot);
            await log.installSnapshot(snapshot);
          }
          snapshot = rd.snapshot;
          entries = [];
        }
        if (rd.entries.length > 0) {
          const first = rd.entries[0]!.index;
          // A later Ready may overwrite the tail of an earlier one (a new leader's entries, §5.3).
          while (entries.length > 0 && entries[entries.length - 1]!.index >= first) entries.pop();
          for (const e of rd.entries) {
            entries.push(e);
            bytes += e.data.length;
          }
        }
        if (rd.hardState !== null) hs = rd.hardState;
        if (rd.config !== null) config = rd.config;
      }
      // A new term or vote goes first, durably: the entries of this batch may truncate ones acknowledged
      // in the old term, and a restart that finds them gone must not find the old term either. Its commit
      // index is the one already true of the durable log (this batch's entries are not there yet).
      if (hs !== null && (hs.term !== this.#written.term || hs.votedFor !== this.#written.votedFor)) {
        const next: HardState = { term: hs.term, votedFor: hs.votedFor, commitIndex: this.#commitIndex };
        await state.write(next);
        this.#written = next;
        synced = true;
      }
      if (snapshot !== null) {
        await d.storeSnapshot(snapshot);
        await log.installSnapshot(snapshot);
        synced = true;
      }
      if (entries.length > 0) {
        d.beforeAppend(entries);
        await log.append(entries);
        synced = true;
      }
      if (config !== null) {
        await membership.write(config);
        synced = true;
      }
      if (hs !== null) {
        // Everything up to hs.commitIndex is durable in the log now (committed <= lastIndex at ready()):
        // only now may the state file say so, lazily (losing it means replaying less).
        if (hs.commitIndex > this.#commitIndex) this.#commitIndex = hs.commitIndex;
        if (this.#commitIndex > this.#written.commitIndex && d.clock.now() - this.#commitWrittenAtMs >= _COMMIT_WRITE_INTERVAL_MS) {
          const next: HardState = { ...this.#written, commitIndex: this.#commitIndex };
          await state.write(next);
          this.#written = next;
          this.#commitWrittenAtMs = d.clock.now();
        }
      }
      if (synced) d.counters.fsyncLatency.observe(d.clock.now() - t0);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (this.#stopped) return;
    this.#writing = false;
    d.probe?.persisted?.(this.#written);
    if (d.probe?.stage !== undefined && entries.length > 0) d.probe.stage("durable", entries[entries.length - 1]!.index);
    if (bytes > 0) d.onAppended(bytes);
    const term = this.#written.term;
    for (const item of batch) {
      item.persisted = true;
      item.markDurable();
      const msgs = _ofTerm(item.rd.persistedMessages, term);
      if (msgs.length > 0) d.send(msgs);
    }
    this.#tryAdvance();
    this.#pump();
  }

  #tryAdvance(): void {
    let advanced = false;
    while (this.#pending.length > 0 && this.#pending[0]!.persisted && this.#pending[0]!.applied) {
      this.#d.raft.advance(this.#pending.shift()!.rd);
      advanced = true;
    }
    if (advanced) this.kick();
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0 || this.#writing) return;
    if (!this.#pending.every((i) => i.persisted && i.applied)) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#stopped = true;
    this.#writing = false;
    this.#d.onFatal(err);
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

/** The messages of `term` (a batch's older-term acknowledgements may promise entries it has since truncated). */
function _ofTerm(msgs: readonly Message[], term: number): readonly Message[] {
  for (const m of msgs) {
    if (m.term < term) return msgs.filter((x) => x.term >= term);
  }
  return msgs;
}
