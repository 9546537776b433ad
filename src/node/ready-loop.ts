/**
 * The driver's inner loop: takes `Ready`s from the pure core and carries out
 * what each one asks, in the order the `Ready` contract requires
 * (src/raft/types.ts):
 *
 *  - `messages` go out at once (a leader replicates while its own write is
 *    in flight, Raft §10.2.1);
 *  - writes (snapshot install, entries, hard state, membership) are group
 *    committed: while one batch is being written and fsynced, every Ready
 *    produced meanwhile queues, and the next batch writes them all with one
 *    append and one fdatasync;
 *  - `persistedMessages` (votes, AppendEntries acknowledgements) go out only
 *    once their batch is durable ("saved to stable storage BEFORE messages
 *    are sent");
 *  - committed entries are applied in order on an apply chain that runs
 *    beside the writes;
 *  - each Ready is advanced, in order, once it is both durable and applied.
 *
 * Any storage error is fatal: the loop stops and never reports anything
 * durable after it (a failed fsync is never retried, "fsyncgate").
 *
 * @module
 */
import type { Raft } from "../raft/raft.ts";
import type { Entry, HardState, Message, Ready, SnapshotMeta } from "../raft/types.ts";
import type { SegmentedLog } from "../storage/segmented-log.ts";
import type { StateFile } from "../storage/state-file.ts";
import type { MembershipFile } from "../storage/membership-file.ts";
import type { NodeCounters } from "./metrics.ts";

/** What the loop needs from the node around it. */
export interface ReadyLoopDeps {
  readonly raft: Raft;
  readonly log: SegmentedLog;
  readonly state: StateFile;
  readonly membership: MembershipFile;
  readonly counters: NodeCounters;
  /** Called at the start of every turn, before Readys are taken (flushes buffered proposals). */
  beforeTurn(): void;
  /** Sees every Ready first (events, read states). */
  onReady(rd: Ready): void;
  /** Sends messages to peers (fire and forget). */
  send(msgs: readonly Message[]): void;
  /** Replaces the state machine with the stored snapshot `meta` describes. */
  restoreSnapshot(meta: SnapshotMeta): Promise<void>;
  /** Applies committed entries in order; returns a promise only if some apply was asynchronous. */
  apply(entries: readonly Entry[]): void | Promise<void>;
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
  #applyChain: Promise<void> = Promise.resolve();
  /** The hard state last made durable. */
  #durable: HardState;
  /** The newest commit index seen, written lazily. */
  #commitIndex: number;
  #commitWrittenAtMs = 0;
  /** Resolves waiters of `idle()`. */
  #idleWaiters: (() => void)[] = [];

  constructor(deps: ReadyLoopDeps, durable: HardState) {
    this.#d = deps;
    this.#durable = durable;
    this.#commitIndex = durable.commitIndex;
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

  /** Writes the newest commit index if it moved (on close, and from ticks). */
  async flushCommitIndex(force: boolean): Promise<void> {
    if (this.#writing || this.#commitIndex <= this.#durable.commitIndex) return;
    if (!force && performance.now() - this.#commitWrittenAtMs < _COMMIT_WRITE_INTERVAL_MS) return;
    this.#writing = true;
    const hs = { ...this.#durable, commitIndex: this.#commitIndex };
    try {
      await this.#d.state.write(hs);
      this.#durable = hs;
      this.#commitWrittenAtMs = performance.now();
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
        const item: _Item = { rd, persisted: false, applied: false };
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
      if (this.#stopped) return;
      if (snapshot !== null) await this.#d.restoreSnapshot(snapshot);
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
    if (this.#writing || this.#stopped) {
      this.#notifyIdle();
      return;
    }
    if (this.#toPersist.length === 0) {
      this.#notifyIdle();
      return;
    }
    const batch = this.#toPersist;
    this.#toPersist = [];
    this.#writing = true;
    void this.#write(batch);
  }

  async #write(batch: _Item[]): Promise<void> {
    const d = this.#d;
    const t0 = performance.now();
    let bytes = 0;
    try {
      let entries: Entry[] = [];
      let hs: HardState | null = null;
      let config = null;
      for (const { rd } of batch) {
        if (rd.snapshot !== null) {
          // Entries before a snapshot in the same batch are superseded by it.
          entries = [];
          await d.log.installSnapshot(rd.snapshot);
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
      const writes: Promise<void>[] = [];
      if (entries.length > 0) writes.push(d.log.append(entries));
      let newDurable: HardState | null = null;
      if (hs !== null) {
        if (hs.commitIndex > this.#commitIndex) this.#commitIndex = hs.commitIndex;
        const mustWrite = hs.term !== this.#durable.term || hs.votedFor !== this.#durable.votedFor;
        const lazyDue = this.#commitIndex > this.#durable.commitIndex && performance.now() - this.#commitWrittenAtMs >= _COMMIT_WRITE_INTERVAL_MS;
        if (mustWrite || lazyDue) {
          newDurable = { term: hs.term, votedFor: hs.votedFor, commitIndex: this.#commitIndex };
          writes.push(d.state.write(newDurable));
        }
      }
      if (config !== null) writes.push(d.membership.write(config));
      if (writes.length > 0) {
        await Promise.all(writes);
        d.counters.fsyncLatency.observe(performance.now() - t0);
      }
      if (newDurable !== null) {
        this.#durable = newDurable;
        this.#commitWrittenAtMs = performance.now();
      }
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (this.#stopped) return;
    this.#writing = false;
    if (bytes > 0) d.onAppended(bytes);
    for (const item of batch) {
      item.persisted = true;
      if (item.rd.persistedMessages.length > 0) d.send(item.rd.persistedMessages);
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
    if (this.#stopped) return;
    this.#stopped = true;
    this.#writing = false;
    this.#d.onFatal(err);
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}
