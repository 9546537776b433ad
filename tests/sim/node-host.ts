/**
 * One simulated member: a `Raft` core driven the way `src/node/` drives it
 * (Ready, persist, send, apply, advance), with its durable state kept apart
 * from everything volatile so that a crash loses exactly what a real crash
 * would.
 *
 * Durable: the MemoryLog, the HardState, the snapshot meta (the log's
 * compaction point) and the state machine's snapshot taken at that point.
 * Volatile: the core itself, the state machine's applied state, Readys
 * whose write has not finished (the disk has latency, so several are in
 * flight and finish in order), pending reads and received snapshot data.
 *
 * @module
 */
import { Raft } from "../../src/raft/raft.ts";
import { decodeMembership } from "../../src/raft/membership-codec.ts";
import { MemoryLog } from "../../src/raft/memory-log.ts";
import type { ConfigState, Entry, HardState, Member, Message, NodeId, RaftConfig, RaftStatus, ReadState, Ready, SnapshotMeta } from "../../src/raft/types.ts";
import type { Checker, HostView } from "./checks.ts";
import { LogMirror, membersKey } from "./log-mirror.ts";
import type { Prng } from "./prng.ts";
import { emptySm, SimStateMachine, type SmState } from "./state-machine.ts";

/** What a host needs from its world. */
export interface HostEnv {
  readonly checker: Checker;
  /** The world's clock in ticks. */
  now(): number;
  /** Routes a message leaving a host (network, or snapshot stream for MsgSnap). */
  send(from: NodeHost, msg: Message): void;
  /** Trace sink, or null when not tracing. */
  readonly trace: ((line: string) => void) | null;
}

/** A Ready whose write is in flight. */
interface PendingWrite {
  readonly ready: Ready;
  /** Tick at which the write is durable. Invariant: non-decreasing along the queue. */
  readonly doneAt: number;
  /** For a Ready with a snapshot: the state machine content installed with it. */
  readonly sm: SmState | null;
}

/** Counters for the run summary. */
export interface HostStats {
  readys: number;
  writes: number;
  crashes: number;
  snapshotsInstalled: number;
  compactions: number;
}

/** One member and its disk. */
export class NodeHost implements HostView {
  readonly id: NodeId;
  readonly url: string;
  /** Bumped on every start; lets the world drop callbacks meant for an earlier life. */
  incarnation = 0;
  /** The running core; null while crashed (or never started). */
  raft: Raft | null = null;
  /** Taken out of the cluster for good (removed by a committed configuration); never restarted. */
  retired = false;
  /** The state machine persists itself (flushing lazily) instead of being rebuilt from the snapshot on restart. */
  smPersisted = false;
  /** Disk write latency: each write takes 0..diskLatencyTicksMax ticks (0 with probability diskZeroRate). */
  diskLatencyTicksMax = 2;
  diskZeroRate = 0.3;
  readonly mirror = new LogMirror();
  readonly stats: HostStats = { readys: 0, writes: 0, crashes: 0, snapshotsInstalled: 0, compactions: 0 };

  // Durable state.
  private readonly log: MemoryLog;
  private hardState: HardState = { term: 0, votedFor: null, commitIndex: 0 };
  /** The state machine at the log's compaction point. Invariant: smSnapshot.index === log.snapshot.index. */
  private smSnapshot: SmState;
  /**
   * With a persisted state machine: its state as last flushed (lazily, every
   * few applies). A restart resumes from it with `RaftInit.applied`, and the
   * core may hand out entries it already holds again: they are skipped.
   * Invariant: smSnapshot.index <= smFlushed.index <= log.lastIndex().
   */
  private smFlushed: SmState;

  // Volatile state.
  readonly sm: SimStateMachine;
  private writes: PendingWrite[] = [];
  /** Confirmed reads waiting for their index to be applied. */
  private readsWaiting: ReadState[] = [];
  /** Snapshot contents streamed in, waiting for the core to accept (Ready.snapshot) or not. */
  private received: SmState[] = [];
  private pumping = false;
  private status: RaftStatus | null = null;

  private readonly env: HostEnv;
  private readonly rng: Prng;
  private readonly raftConfig: Omit<RaftConfig, "id" | "randomSeed">;

  /**
   * @param bootstrap the initial membership for a founding member; empty for a
   *   member that joins later (it learns everything from the leader)
   */
  constructor(id: NodeId, bootstrap: readonly Member[], raftConfig: Omit<RaftConfig, "id" | "randomSeed">, env: HostEnv, rng: Prng) {
    this.id = id;
    this.url = `sim://${id}`;
    this.raftConfig = raftConfig;
    this.env = env;
    this.rng = rng;
    this.log = new MemoryLog({ index: 0, term: 0, membership: bootstrap });
    this.smSnapshot = emptySm;
    this.smFlushed = emptySm;
    this.sm = new SimStateMachine(emptySm);
  }

  /** Whether the core is running. */
  get alive(): boolean {
    return this.raft !== null;
  }

  durableHardState(): HardState {
    return this.hardState;
  }

  durableLastIndex(): number {
    return this.log.lastIndex();
  }

  durableTerm(index: number): number | undefined {
    if (index < this.log.snapshot.index || index > this.log.lastIndex()) return undefined;
    return this.log.term(index);
  }

  /** The durable compaction point. */
  durableSnapshot(): SnapshotMeta {
    return this.log.snapshot;
  }

  /** The status seen after the last burst of work (null while down). */
  lastStatus(): RaftStatus | null {
    return this.status;
  }

  /** The running core; throws while down. */
  core(): Raft {
    if (this.raft === null) throw new Error(`${this.id} is down`);
    return this.raft;
  }

  private trace(line: string): void {
    if (this.env.trace !== null) this.env.trace(`${this.id}: ${line}`);
  }

  /** Starts (or restarts) the core from the durable state only. */
  start(): void {
    if (this.raft !== null) throw new Error(`${this.id} is already running`);
    this.incarnation++;
    const snap = this.log.snapshot;
    const configs: ConfigState[] = [];
    for (let i = snap.index + 1; i <= this.log.lastIndex(); i++) {
      const [e] = this.log.entries(i, i + 1, 0);
      if (e !== undefined && e.type === "config") configs.push({ index: e.index, members: decodeMembership(e.data) });
    }
    this.mirror.reset(snap.index, snap.term, snap.membership);
    if (this.log.lastIndex() > snap.index) this.mirror.append(this.log.entries(snap.index + 1, this.log.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
    const smStart = this.smPersisted && this.smFlushed.index > this.smSnapshot.index ? this.smFlushed : this.smSnapshot;
    this.sm.restore(smStart);
    this.writes = [];
    this.readsWaiting = [];
    this.received = [];
    this.raft = new Raft({
      config: { ...this.raftConfig, id: this.id, randomSeed: this.rng.u32() },
      log: this.log,
      hardState: this.hardState,
      snapshot: snap,
      configs,
      ...(smStart.index > snap.index ? { applied: smStart.index } : {}),
    });
    this.trace(`start #${this.incarnation} term ${this.hardState.term} vote ${this.hardState.votedFor ?? "-"} commit ${this.hardState.commitIndex} log (${snap.index}, ${this.log.lastIndex()}] applied ${smStart.index}`);
    const status = this.raft.status();
    this.status = status;
    this.env.checker.onStart(this, status);
    this.pump();
  }

  /** Crashes: everything not durable is lost. */
  /**
   * Crashes: everything not durable is lost. With `torn`, the oldest write
   * in flight was cut in the middle: its snapshot and entries reached the
   * disk but its HardState did not (step 1 of the Ready contract is
   * ordered, not atomic; the core takes up a term it finds only in the log).
   */
  crash(torn = false): void {
    if (this.raft === null) return;
    const w = this.writes[0];
    if (torn && w !== undefined && (w.ready.snapshot !== null || w.ready.entries.length > 0)) {
      if (w.ready.snapshot !== null) {
        this.log.reset(w.ready.snapshot);
        this.smSnapshot = w.sm as SmState;
        if (this.smFlushed.index < this.smSnapshot.index) this.smFlushed = this.smSnapshot;
      }
      if (w.ready.entries.length > 0) this.log.append(w.ready.entries);
      this.trace(`torn write: log now (${this.log.snapshot.index}, ${this.log.lastIndex()}], HardState not written`);
    }
    this.trace(`crash (${this.writes.length} writes lost)`);
    this.stats.crashes++;
    this.raft = null;
    this.status = null;
    this.writes = [];
    this.env.checker.forgetReadsOf(this.id);
    this.readsWaiting = [];
    this.received = [];
  }

  /** One tick of the core's clock. */
  tick(): void {
    this.core().tick();
    this.pump();
  }

  /** Delivers a message. */
  step(msg: Message): void {
    this.core().step(msg);
    this.pump();
  }

  /** A snapshot's content arrived over the stream; the MsgSnap is stepped next. */
  receiveSnapshot(content: SmState): void {
    this.received.push(content);
    if (this.received.length > 4) this.received.shift();
  }

  /** Finishes every write due by now, then hands out whatever is ready. */
  flush(): void {
    if (this.raft !== null) this.pump();
  }

  /**
   * Compacts the durable log at `index` (which the state machine has applied),
   * saving the state machine's state there as the new snapshot.
   * @returns false when that is not possible now
   */
  compact(index: number): boolean {
    const raft = this.core();
    if (index <= this.log.snapshot.index || index > this.sm.current().index || index > this.log.lastIndex()) return false;
    if (this.writes.some((w) => w.ready.snapshot !== null)) return false;
    const content = this.sm.at(index);
    if (content === undefined) return false;
    const term = this.log.term(index);
    if (term !== content.term) throw new Error(`${this.id}: applied state at ${index} has term ${content.term}, log says ${term}`);
    this.env.checker.checkSmState(this.id, content, "compaction");
    const members = raft.configAt(index).members;
    const expected = this.mirror.configMembersAt(index);
    if (membersKey(members) !== membersKey(expected)) {
      this.env.checker.fail(this.id, `configAt(${index}) is ${membersKey(members)}, but the log says ${membersKey(expected)}`);
    }
    this.log.compact(index, term, members);
    this.smSnapshot = content;
    this.sm.forgetBefore(index);
    this.mirror.compact(index);
    this.stats.compactions++;
    this.trace(`compact at ${index} term ${term}`);
    return true;
  }

  /** The state machine content at `index`, if this replica can produce it (for a snapshot it sends). */
  contentAt(index: number): SmState | undefined {
    if (index === this.smSnapshot.index) return this.smSnapshot;
    return this.sm.at(index);
  }

  /** Drains the core: hands out Readys and finishes writes that are due, until quiet. */
  pump(): void {
    const raft = this.raft;
    if (raft === null || this.pumping) return;
    this.pumping = true;
    try {
      const now = this.env.now();
      // Every change of role, term, commit or log makes a Ready, so when
      // nothing was handed out or written the last status still holds.
      // After a Ready, the status taken right after ready() still holds
      // unless a write was advanced since (status() is the costliest call
      // of a run: 10% of the time, measured).
      let fresh: RaftStatus | null = null;
      let acted = false;
      for (;;) {
        if (this.raft !== raft) return;
        const w = this.writes[0];
        if (w !== undefined && w.doneAt <= now) {
          this.writes.shift();
          this.finishWrite(raft, w);
          fresh = null;
          acted = true;
          continue;
        }
        if (raft.hasReady()) {
          const rd = raft.ready();
          fresh = raft.status();
          this.handleReady(rd, fresh);
          acted = true;
          continue;
        }
        break;
      }
      if (!acted) return;
      const status = fresh ?? raft.status();
      this.status = status;
      this.env.checker.observe(this, status);
    } finally {
      this.pumping = false;
    }
  }

  private handleReady(rd: Ready, status: RaftStatus): void {
    this.stats.readys++;
    const checker = this.env.checker;
    checker.onReady(this, rd, status);
    let installed: SmState | null = null;
    if (rd.snapshot !== null) {
      const s = rd.snapshot;
      const content = this.received.find((c) => c.index === s.index && c.term === s.term);
      if (content === undefined) throw new Error(`${this.id}: Ready.snapshot ${s.index}/${s.term} without a received snapshot (simulator or core bug)`);
      if (content.index < this.sm.current().index) checker.fail(this.id, `snapshot at ${s.index} would roll the state machine back from ${this.sm.current().index}`);
      this.sm.restore(content);
      installed = content;
      this.mirror.reset(s.index, s.term, s.membership);
      checker.onSnapshotInstalled(this, s, content);
      this.stats.snapshotsInstalled++;
      this.trace(`install snapshot ${s.index}/${s.term}`);
    }
    if (rd.entries.length > 0) this.mirror.append(rd.entries);
    if (this.env.trace !== null) this.traceReady(rd);
    for (const m of rd.messages) this.env.send(this, m);
    for (const e of rd.committedEntries) this.apply(e);
    for (const rs of rd.readStates) {
      checker.onReadState(this, rs);
      this.readsWaiting.push(rs);
    }
    this.serveReads();
    for (const ev of rd.events) {
      if (ev.type === "read-failed") checker.forgetRead(ev.requestId);
      if (ev.type === "removed") checker.onRemovedEvent(this, status);
      if (this.env.trace !== null) this.trace(`event ${JSON.stringify(ev)}`);
    }
    const last = this.writes[this.writes.length - 1];
    const latency = this.rng.chance(this.diskZeroRate) ? 0 : this.rng.range(0, this.diskLatencyTicksMax);
    const doneAt = Math.max(this.env.now() + latency, last === undefined ? 0 : last.doneAt);
    this.writes.push({ ready: rd, doneAt, sm: installed });
  }

  private finishWrite(raft: Raft, w: PendingWrite): void {
    const rd = w.ready;
    this.stats.writes++;
    if (rd.snapshot !== null) {
      this.log.reset(rd.snapshot);
      this.smSnapshot = w.sm as SmState;
      if (this.smFlushed.index < this.smSnapshot.index) this.smFlushed = this.smSnapshot;
    }
    if (rd.entries.length > 0) this.log.append(rd.entries);
    if (rd.hardState !== null) {
      this.env.checker.onDurableHardState(this, rd.hardState);
      this.hardState = rd.hardState;
    }
    for (const m of rd.persistedMessages) this.env.send(this, m);
    raft.advance(rd);
  }

  private apply(e: Entry): void {
    const cur = this.sm.current();
    if (this.smPersisted && e.index <= cur.index) {
      // Already applied before a restart: a persisted machine ignores it (it must be the same entry).
      this.env.checker.onReapplySkipped(this, e);
      return;
    }
    if (e.index !== cur.index + 1) {
      this.env.checker.fail(this.id, `applied entry ${e.index} right after ${cur.index} (must be exactly once, in order)`);
    }
    this.env.checker.checkApplyDurable(this, e);
    const after = this.sm.apply(e);
    this.env.checker.onApply(this, e, after);
    // A lazy flush, never while a snapshot write is in flight (the state would get ahead of the durable log).
    if (this.smPersisted && this.rng.chance(0.2) && !this.writes.some((w) => w.ready.snapshot !== null)) this.smFlushed = after;
  }

  private serveReads(): void {
    if (this.readsWaiting.length === 0) return;
    const s = this.sm.current();
    const still: ReadState[] = [];
    for (const rs of this.readsWaiting) {
      if (rs.index <= s.index) this.env.checker.onReadServed(this, rs, s);
      else still.push(rs);
    }
    this.readsWaiting = still;
  }

  private traceReady(rd: Ready): void {
    const parts: string[] = [];
    if (rd.hardState !== null) parts.push(`hs(t${rd.hardState.term} v${rd.hardState.votedFor ?? "-"} c${rd.hardState.commitIndex})`);
    if (rd.snapshot !== null) parts.push(`snap(${rd.snapshot.index}/${rd.snapshot.term})`);
    if (rd.entries.length > 0) parts.push(`ents[${(rd.entries[0] as Entry).index}..${(rd.entries[rd.entries.length - 1] as Entry).index}]`);
    if (rd.committedEntries.length > 0) parts.push(`apply[${(rd.committedEntries[0] as Entry).index}..${(rd.committedEntries[rd.committedEntries.length - 1] as Entry).index}]`);
    if (rd.config !== null) parts.push(`config@${rd.config.index}(${rd.config.members.map((m) => (m.voter ? m.id : `${m.id}~`)).join(",")})`);
    if (rd.readStates.length > 0) parts.push(`reads(${rd.readStates.map((r) => `${r.requestId}@${r.index}`).join(",")})`);
    parts.push(`msgs ${rd.messages.length}+${rd.persistedMessages.length}`);
    this.trace(`ready ${parts.join(" ")}`);
  }
}
