/**
 * `RaftDriver`: one member's consensus loop, wired from the pure core
 * (`src/raft`) and four seams it is handed — a clock, the durable storage
 * (on a `FileLayer`), a transport and an applier — so that production
 * (`./start.ts`) and the seeded simulator (`tests/sim/`) run the same
 * object. It ticks the core, feeds it what peers send, runs the Ready loop
 * (`./ready-loop.ts`), keeps the callers' table (`./pending.ts`), and does
 * snapshots and compaction (`./snapshots.ts`); membership and leadership
 * calls and status live here too.
 *
 * @module
 */
import { ClosedError, InvalidArgumentError, NotLeaderError, TimeoutError } from "../errors.ts";
import { decodeMembership } from "../raft/membership-codec.ts";
import { Raft } from "../raft/raft.ts";
import { encodedSize } from "../storage/segment-format.ts";
import type { ConfigState, Entry, Message, MsgSnap, NodeId, RaftConfig, RaftEvent, Ready, SnapshotMeta } from "../raft/types.ts";
import type { Applier } from "./applier.ts";
import { type Clock, every } from "./clock.ts";
import { NodeCounters } from "./metrics.ts";
import { closeNodeStorage, type NodeStorage, restorableSnapshot } from "./node-storage.ts";
import { DiskSpace } from "./disk-space.ts";
import { ProposalIntake } from "./intake.ts";
import { MembershipCalls } from "./membership-calls.ts";
import { PendingTable } from "./pending.ts";
import { type DriverProbe, ReadyLoop } from "./ready-loop.ts";
import { type MembershipView, membershipViewOf } from "./peer-admission.ts";
import { Snapshots } from "./snapshots.ts";
import { CatchUpGaps } from "./transfer-progress.ts";
import type { Transport } from "./transport.ts";
import type { MemberStatus, NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, SnapshotTaken, TlsOptions } from "./types.ts";

/** Tunables of a driver, with their defaults in `DRIVER_DEFAULTS`. */
export interface DriverTunables {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotLogBytes: number;
  readonly diskFreeBytesMin: number;
  readonly proposeTimeoutMs: number;
  readonly membershipTimeoutMs: number;
  /** Largest proposal: an entry travels to followers in one peer request, which their body limit bounds. */
  readonly proposalBytesMax: number;
  /** Flow control and batching of the core (`RaftConfig`). */
  readonly raft: Pick<RaftConfig, "preVote" | "checkQuorum" | "maxInflightMsgs" | "maxInflightBytes" | "maxMsgBytes" | "catchUpRoundsMax">;
}

/** The defaults of `DriverTunables`. */
export const DRIVER_DEFAULTS: DriverTunables = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotLogBytes: 64 * 1024 * 1024,
  diskFreeBytesMin: 64 * 1024 * 1024,
  proposeTimeoutMs: 10_000,
  membershipTimeoutMs: 120_000,
  proposalBytesMax: 8 * 1024 * 1024 - 64 * 1024,
  raft: { preVote: true, checkQuorum: true, maxInflightMsgs: 256, maxInflightBytes: 32 * 1024 * 1024, maxMsgBytes: 1024 * 1024, catchUpRoundsMax: 10 },
};

/** The settle function of a proposal nobody waits on here (see `proposeTagged`). */
function _ignore(): void {}

/** Everything a driver is made of (see the module comment). */
export interface DriverInit {
  readonly id: NodeId;
  readonly url: string;
  readonly clusterId: string;
  readonly tunables: DriverTunables;
  readonly clock: Clock;
  /** Opened and checked (`openNodeStorage`); the driver closes it. */
  readonly storage: NodeStorage;
  /** Built once the driver exists: it reports unreachable peers back to it. */
  readonly transport: (driver: RaftDriver) => Transport;
  readonly applier: Applier;
  readonly logger: (line: string) => void;
  /** Members known before the log says so (a joining member learns them from the cluster). */
  readonly knownMembers?: readonly { readonly id: NodeId; readonly url: string }[];
  /** For status only ("node", "deno", "bun", "sim"). */
  readonly runtimeName: string;
  readonly probe?: DriverProbe;
  /** Runs when the driver closes, after the loop is idle and before the storage closes (the HTTP server). */
  readonly beforeStorageClose?: () => Promise<void>;
  /** Runs last when the driver closes (the data-directory lock). */
  readonly afterClose?: () => Promise<void> | void;
  /** Swaps the TLS material of the server and the peer clients (production only). */
  readonly reloadTls?: (tls: TlsOptions) => Promise<void>;
}

/** A running member of a Raft cluster (see the module comment). */
export class RaftDriver implements RaftNodeApi {
  readonly id: NodeId;
  readonly url: string;
  readonly clusterId: string;

  readonly #t: DriverTunables;
  readonly #clock: Clock;
  readonly #storage: NodeStorage;
  readonly #applier: Applier;
  readonly #logger: (line: string) => void;
  readonly #init: DriverInit;
  readonly #counters = new NodeCounters();
  readonly #pending: PendingTable;
  readonly #listeners = new Set<(ev: NodeEvent) => void>();
  readonly #raft: Raft;
  readonly #loop: ReadyLoop;
  readonly #snapshots: Snapshots;
  readonly #transport: Transport;
  #stopTicks: () => void = () => {};

  /** Invariant: #applied <= the core's commit index; the state machine holds every normal entry <= #applied. */
  #applied: number;
  #serving = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #fatal: Error | null = null;
  readonly #disk: DiskSpace;
  /** A "removed" event went out (from the core, or from a peer's 410). */
  #removedByPeer = false;
  readonly #intake: ProposalIntake;
  readonly #membership: MembershipCalls;
  #dropsLoggedAtMs = -Infinity;
  #ticks = 0;
  #lastLeader: NodeId | null = null;
  /** When a peer message last arrived from each member (wall clock, for status only). */
  readonly #heardAtMs = new Map<NodeId, number>();
  /** Each learner's gap at its first catch-up round, for the percentage in the progress lines. */
  readonly #catchUp = new CatchUpGaps();

  private constructor(init: DriverInit, applied: number) {
    this.#init = init;
    this.id = init.id;
    this.url = init.url;
    this.clusterId = init.clusterId;
    this.#t = init.tunables;
    this.#clock = init.clock;
    this.#storage = init.storage;
    this.#applier = init.applier;
    this.#logger = init.logger;
    this.#pending = new PendingTable(this.#counters);
    this.#intake = new ProposalIntake(this.#counters);
    this.#disk = new DiskSpace(init.storage.fs, init.storage.dir, init.tunables.diskFreeBytesMin, init.logger);
    this.#disk.check(); // before the first message: a member that starts low takes no entries at all
    const log = init.storage.log;
    const snapshot = log.snapshotMeta();
    const configs: ConfigState[] = log.configs().map((c) => ({ index: c.index, members: decodeMembership(c.data) }));
    this.#applied = Math.max(applied, snapshot.index);
    this.#raft = new Raft({
      config: { id: this.id, electionTicks: this.#t.electionTicks, heartbeatTicks: this.#t.heartbeatTicks, randomSeed: (init.clock.randomU32() >>> 0) || 1, ...this.#t.raft },
      log,
      hardState: init.storage.state.read(),
      snapshot,
      configs,
      applied: this.#applied,
    });
    this.#loop = new ReadyLoop({
      raft: this.#raft,
      storage: init.storage,
      clock: init.clock,
      counters: this.#counters,
      probe: init.probe ?? null,
      beforeTurn: () => this.#flushProposals(),
      onReady: (rd) => this.#onReady(rd),
      send: (msgs) => this.#send(msgs),
      storeSnapshot: (meta) => this.#snapshots.store(meta),
      restoreSnapshot: (meta) => this.#snapshots.restore(meta),
      apply: (entries) => this.#apply(entries),
      beforeAppend: (entries) => this.#checkDisk(encodedSize(entries)),
      onAppended: (bytes) => this.#snapshots.onAppended(bytes),
      afterTurn: () => this.#pending.checkWaiters(this.#clock.now()),
      onFatal: (err) => this.#onFatal(err),
    }, init.storage.state.read());
    this.#transport = init.transport(this);
    this.#snapshots = new Snapshots({
      storage: init.storage,
      applier: init.applier,
      raft: this.#raft,
      loop: this.#loop,
      transport: this.#transport,
      pending: this.#pending,
      counters: this.#counters,
      snapshotLogBytes: this.#t.snapshotLogBytes,
      logger: this.#logger,
      now: () => init.clock.now(),
      emit: (ev) => this.#emit(ev),
      applied: () => this.#applied,
      restored: (index) => {
        this.#applied = index;
        this.#pending.onApplied(index);
      },
      closed: () => this.#closed,
      kick: () => this.#loop.kick(),
      fatal: (err) => this.#onFatal(err),
    });
    this.#membership = new MembershipCalls({
      id: this.id,
      raft: this.#raft,
      pending: this.#pending,
      transport: this.#transport,
      clock: init.clock,
      tunables: this.#t,
      kick: () => this.#loop.kick(),
      notLeader: () => this.#notLeader(),
    });
    for (const m of init.knownMembers ?? []) this.#transport.setUrl(m.id, m.url);
    this.#updateUrls(this.#raft.status().config);
    init.probe?.started?.(this.#raft.status());
  }

  /**
   * Brings a state machine to what the storage holds and starts the
   * member: restores the snapshot the log's compaction point depends on
   * when the state machine is behind it, then ticks.
   *
   * @throws InvalidArgumentError when the state machine and the storage cannot be reconciled (said why)
   */
  static async create(init: DriverInit): Promise<RaftDriver> {
    const { storage, applier, logger } = init;
    const log = storage.log;
    let applied = await applier.lastApplied();
    if (!Number.isSafeInteger(applied) || applied < 0) throw new InvalidArgumentError(`The state machine's lastApplied() is ${applied}, not a non-negative integer`);
    if (applied > log.lastIndex()) {
      throw new InvalidArgumentError(
        `The state machine has applied up to ${applied}, but the log in ${storage.dir} ends at ${log.lastIndex()}: ` +
          "the state machine's data is newer than this member's log (another member's data, or a restored backup); give it data from this member or start it empty",
      );
    }
    const compacted = log.snapshotMeta().index;
    if (applied < compacted) {
      const snap = restorableSnapshot(storage);
      if (snap === null || applier.restore === null) {
        throw new InvalidArgumentError(
          `The state machine has applied up to ${applied}, but the log starts after ${compacted} and ` +
            (applier.restore === null ? "the state machine has no restore()" : "no snapshot agreeing with the log is stored") +
            ": the state machine's own data is behind what was compacted; restore it, or remove this member's data directory and add it again",
        );
      }
      await applier.restore(snap.meta.index, storage.snapshots.read(snap));
      applied = snap.meta.index;
      logger(`restored the state machine from snapshot ${snap.meta.index}`);
    }
    const d = new RaftDriver(init, applied);
    d.#stopTicks = every(init.clock, d.#t.tickMs, () => d.#tick());
    // A single voter has nobody to wait for: campaign at once rather than after an election timeout.
    const voters = d.#raft.status().config.members.filter((m) => m.voter);
    if (voters.length === 1 && voters[0]!.id === d.id) d.#raft.campaign();
    d.#loop.kick();
    return d;
  }

  /** Replays committed entries into the state machine; resolves once they are applied (routes serve from then on). */
  async replay(): Promise<void> {
    const commit = this.#storage.state.read().commitIndex;
    if (this.#applied < commit) {
      this.#logger(`replaying committed entries ${this.#applied + 1}..${commit} into the state machine`);
      await new Promise<void>((resolve, reject) => {
        this.#pending.waitApplied(commit, { resolve, reject });
        this.#loop.kick();
      });
    }
    this.#serving = true;
  }

  /**
   * The only voter of its configuration campaigned at create and leads as
   * soon as its vote is durable (a loop turn or two): `start` waits for that,
   * so the README's first proposal right after `start` is accepted at once.
   * Bounded by an election timeout; proposals made before it leads wait for
   * a leader anyway (see `propose`).
   */
  async awaitSoleLeadership(): Promise<void> {
    const voters = this.#raft.status().config.members.filter((m) => m.voter);
    if (voters.length !== 1 || voters[0]!.id !== this.id) return;
    const timeoutMs = this.#t.tickMs * this.#t.electionTicks;
    try {
      await this.#pending.waitFor("this sole voter to lead", () => this.#raft.status().role === "leader", () => null, this.#clock.now(), timeoutMs);
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      this.#logger(`not leading ${timeoutMs} ms after start although the only voter; proposals wait for a leader`);
    }
  }

  /** True once `close` was called (or a fatal error stopped the node). */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once the replay is done (user routes answer from then on). */
  get serving(): boolean {
    return this.#serving;
  }

  /** Metrics counters, for the transport and routes that count on the driver's behalf. */
  get counters(): NodeCounters {
    return this.#counters;
  }

  /** The core's membership and leadership as of now (reused for 10 ms), for peer admission. */
  membershipView(): MembershipView {
    return membershipViewOf(this.#raft);
  }

  /** The snapshot sink peers stream InstallSnapshot into. */
  get snapshotSink(): Snapshots["receiver"] {
    return this.#snapshots.receiver;
  }

  // ---- Inputs from the transport ----

  /** Messages from one peer (already authenticated and decoded; all from the same sender). */
  receive(msgs: readonly Message[]): void {
    if (this.#closed || msgs.length === 0) return;
    this.#counters.rpcsReceived += msgs.length;
    this.#heardAtMs.set(msgs[0]!.from, this.#clock.wallMs());
    try {
      for (const m of msgs) {
        if (this.#disk.low && m.type === "MsgApp" && m.entries.length > 0) {
          // Below the free-space minimum a member takes no new entries (the others can still commit);
          // heartbeats keep it a follower.
          this.#logDrop(`${this.#disk.describe()}: refusing entries from ${m.from}`);
          continue;
        }
        this.#raft.step(m);
      }
      if (this.#init.probe?.stage !== undefined) this.#traceReceived(msgs);
    } catch (err) {
      // The core never throws for peer input; if it did, its state cannot be trusted.
      this.#onFatal(err);
      return;
    }
    this.#loop.kick();
  }

  /** A send to `id` failed: stop pipelining to it. */
  reportUnreachable(id: NodeId): void {
    if (this.#closed) return;
    this.#raft.reportUnreachable(id);
    this.#loop.kick();
  }

  /**
   * A peer answered 410: it saw a configuration that leaves this member out
   * commit. Taken as this member's removal when its own latest
   * configuration leaves it out too (its removal reached its log but the
   * commit index never did: the leader stops sending once the removal
   * commits), as etcd stops a member its peers call removed.
   */
  peerSaysRemoved(peer: NodeId): void {
    if (this.#closed || this.#removedByPeer) return;
    const st = this.#raft.status();
    if (st.config.members.some((m) => m.id === this.id)) return;
    this.#removedByPeer = true;
    this.#logger(`member ${peer} saw the removal of this member commit, and this member's latest configuration leaves it out: this member was removed from the cluster`);
    this.#emit({ type: "removed" });
  }

  // ---- Public API ----

  /**
   * Replicates `data`; resolves with `apply`'s result once committed and
   * applied here. While no leader is known it waits for one (within the
   * propose timeout) instead of failing at once.
   */
  propose(data: Uint8Array): Promise<unknown> {
    const err = this.#refuseProposal(data);
    if (err !== null) return Promise.reject(err);
    return new Promise((resolve, reject) => {
      if (this.#intake.add(data, null, this.#clock.now(), resolve, reject)) this.#loop.kick();
    });
  }

  /**
   * `propose` for a call made on the thread that applies (worker mode), as
   * `tag`: that thread settles it when it applies the entry, so no promise
   * is made here; `failed` is called instead if it fails before.
   */
  proposeTagged(data: Uint8Array, tag: number, failed: (err: Error) => void): void {
    const err = this.#refuseProposal(data);
    if (err !== null) failed(err);
    else if (this.#intake.add(data, tag, this.#clock.now(), _ignore, failed)) this.#loop.kick();
  }

  #refuseProposal(data: Uint8Array): Error | null {
    const err = this.#refuseWrite();
    if (err !== null) return err;
    const max = this.#init.tunables.proposalBytesMax;
    return data.length > max ? new InvalidArgumentError(`A proposal of ${data.length} bytes is larger than the ${max} one peer request carries (maxRpcBytes)`) : null;
  }

  readBarrier(): Promise<void> {
    if (this.#fatal !== null || this.#closed) return Promise.reject(this.#fatal ?? new ClosedError("The node is closed"));
    if (this.#raft.status().role !== "leader") return Promise.reject(this.#notLeader());
    return new Promise((resolve, reject) => {
      if (this.#pending.addRead({ resolve, reject })) this.#loop.kick();
    });
  }

  async addMember(id: NodeId, url: string): Promise<void> {
    this.#checkOpen(); // a rejection, never a throw: these return promises
    return this.#membership.addMember(id, url);
  }

  async removeMember(id: NodeId): Promise<void> {
    this.#checkOpen(); // a rejection, never a throw: these return promises
    return this.#membership.removeMember(id);
  }

  async transferLeadership(to?: NodeId): Promise<void> {
    this.#checkOpen(); // a rejection, never a throw: these return promises
    return this.#membership.transferLeadership(to);
  }

  /** Replaces the TLS certificates for new connections (see member-tls.ts). @throws InvalidArgumentError without TLS */
  reloadTls(tls: TlsOptions): Promise<void> {
    if (this.#init.reloadTls === undefined) return Promise.reject(new InvalidArgumentError("This member was started without TLS"));
    return this.#init.reloadTls(tls);
  }

  async beginSnapshot(): Promise<number> {
    this.#checkOpen();
    return await this.#snapshots.beginSnapshot();
  }

  async endSnapshot(marker: number): Promise<void> {
    this.#checkOpen();
    if (!Number.isSafeInteger(marker) || marker < 0) throw new InvalidArgumentError(`endSnapshot(${marker}): the marker must be an index returned by beginSnapshot()`);
    await this.#snapshots.compact(marker);
  }

  /** A built-in snapshot now, then compaction up to it (`raft snapshot take`). */
  async takeSnapshot(): Promise<SnapshotTaken> {
    this.#checkOpen();
    return await this.#snapshots.takeNow();
  }

  /**
   * A consistent image of the state machine as of one committed index, for
   * a backup (`../api/backup-routes.ts`): its meta, length and chunks; call
   * `release` once read.
   */
  async backupSnapshot(): Promise<{ meta: SnapshotMeta; byteLength: number; chunks: AsyncIterable<Uint8Array>; release: () => Promise<void> }> {
    this.#checkOpen();
    const { stored, release } = await this.#snapshots.forBackup();
    return { meta: stored.meta, byteLength: stored.byteLength, chunks: this.#storage.snapshots.read(stored), release };
  }

  status(): NodeStatus {
    const st = this.#raft.status();
    const leaderId = st.leaderId;
    const leaderUrl = leaderId === null ? null : leaderId === this.id ? this.url : (st.config.members.find((m) => m.id === leaderId)?.url ?? this.#transport.url(leaderId) ?? null);
    const now = this.#clock.wallMs();
    const timeoutMs = this.#t.tickMs * this.#t.electionTicks;
    const members: MemberStatus[] = st.config.members.map((m) => {
      const p = st.progress.find((x) => x.id === m.id);
      const heardAt = this.#heardAtMs.get(m.id);
      const t = this.#snapshots.transfer(m.id);
      return {
        id: m.id,
        url: m.url,
        voter: m.voter,
        matchIndex: p?.matchIndex ?? null,
        lag: p === undefined ? null : Math.max(0, st.lastIndex - p.matchIndex),
        // The core's recentActive is cleared every election timeout (check-quorum): alone it would
        // call every follower unreachable for a moment each time, until its next reply.
        reachable: p === undefined ? null : m.id === this.id ? true : p.recentActive || (heardAt !== undefined && now - heardAt <= timeoutMs),
        snapshotTransfer: t === undefined ? null : { sentBytes: t.sentBytes, totalBytes: t.totalBytes },
        lastHeardAtMs: heardAt ?? null,
      };
    });
    return {
      id: this.id,
      url: this.url,
      clusterId: this.clusterId,
      role: st.isLearner ? "learner" : st.role,
      term: st.term,
      leader: leaderId === null || leaderUrl === null ? null : { id: leaderId, url: leaderUrl },
      commitIndex: st.commitIndex,
      lastApplied: this.#applied,
      lastIndex: st.lastIndex,
      firstIndex: this.#storage.log.firstIndex(),
      members,
      pendingConfigChange: st.config.index > st.commitIndex,
      runtime: this.#init.runtimeName,
    };
  }

  metrics(): NodeMetrics {
    return { ...this.#counters.snapshot(), logBytes: this.#storage.log.diskBytes(), snapshotBytes: this.#storage.snapshots.diskBytes() };
  }

  on(listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops ticking, fails what waits (appended proposals: outcome unknown), waits for writes in flight, closes the storage. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#emit({ type: "closing" });
    this.#stopTicks();
    this.#rejectAll(new ClosedError("The node was closed"));
    await this.#init.beforeStorageClose?.().catch(() => {});
    if (this.#fatal === null) {
      await this.#loop.idle();
      this.#loop.stop();
      await this.#loop.flushCommitIndex(true).catch(() => {});
    } else {
      this.#loop.stop();
    }
    this.#transport.close();
    // After a storage failure the files answer every call with it: closing them fails the same way.
    // The node still reports itself stopped; a close error of a healthy node is rethrown after that.
    let closeError: unknown = null;
    await this.#snapshots.close().catch((e: unknown) => {
      closeError ??= e;
    });
    await closeNodeStorage(this.#storage).catch((e: unknown) => {
      closeError ??= e;
    });
    await this.#init.afterClose?.();
    this.#emit({ type: "stopped", error: this.#fatal });
    if (closeError !== null && this.#fatal === null) throw closeError;
  }

  // ---- The loop's callbacks ----

  #tick(): void {
    if (this.#closed) return;
    this.#raft.tick();
    this.#ticks++;
    const now = this.#clock.now();
    this.#pending.expire(now, this.#t.proposeTimeoutMs);
    this.#intake.expire(now, this.#t.proposeTimeoutMs);
    if (this.#ticks % 10 === 0) {
      this.#checkDisk();
      void this.#loop.flushCommitIndex(false);
    }
    this.#loop.kick();
  }

  #send(msgs: readonly Message[]): void {
    if (this.#init.probe?.stage !== undefined) this.#traceSent(msgs);
    let snaps: MsgSnap[] | null = null;
    for (const m of msgs) if (m.type === "MsgSnap") (snaps ??= []).push(m);
    if (snaps === null) {
      this.#transport.send(msgs);
      return;
    }
    const rest = msgs.filter((m) => m.type !== "MsgSnap");
    if (rest.length > 0) this.#transport.send(rest);
    for (const m of snaps) this.#snapshots.send(m);
  }

  #flushProposals(): void {
    this.#intake.flush(this.#raft, this.#pending, () => this.#notLeader(), this.#init.probe?.stage);
    const readId = this.#pending.takeReadBatch(this.#clock.now());
    if (readId !== null) {
      try {
        this.#raft.readIndex(readId);
      } catch (err) {
        this.#pending.failReadRound(readId, err instanceof NotLeaderError ? this.#notLeader() : err as Error);
      }
    }
  }

  #onReady(rd: Ready): void {
    if (rd.hardState !== null) this.#init.probe?.stage?.("commit", rd.hardState.commitIndex);
    for (const ev of rd.events) this.#onRaftEvent(ev);
    for (const rs of rd.readStates) this.#pending.confirmRead(rs.requestId, rs.index);
    if (rd.config !== null) this.#updateUrls(rd.config);
    if (rd.readStates.length > 0) this.#pending.onApplied(this.#applied);
  }

  #onRaftEvent(ev: RaftEvent): void {
    this.#pending.onEvent(ev);
    switch (ev.type) {
      case "role": {
        const learner = this.#raft.status().isLearner;
        if (ev.leaderId !== this.#lastLeader) {
          this.#lastLeader = ev.leaderId;
          if (ev.leaderId !== null) this.#counters.leaderChanges++;
        }
        this.#logger(`role ${learner ? "learner" : ev.role}, term ${ev.term}, leader ${ev.leaderId ?? "unknown"}`);
        // Reads waiting for a leadership confirmation will never get one here.
        if (ev.role !== "leader") this.#pending.failReadsInFlight(() => this.#notLeader());
        if (ev.leaderId !== null && this.#intake.awaitingLeader > 0) this.#loop.kick();
        this.#emit({ type: "role", role: learner ? "learner" : ev.role, term: ev.term, leader: ev.leaderId });
        break;
      }
      case "membership":
        for (const m of ev.config.members) if (m.voter) this.#catchUp.forget(m.id);
        this.#logger(`membership (from index ${ev.config.index}): ${ev.config.members.map((m) => `${m.id}${m.voter ? "" : " (learner)"} ${m.url}`).join(", ")}`);
        this.#emit({ type: "membership", members: ev.config.members });
        break;
      case "catch-up":
        this.#logger(`catching up ${ev.id}: round ${ev.round}, ${ev.lag} entries behind (${this.#catchUp.percent(ev.id, ev.round, ev.lag)}% of the first round's gap closed)`);
        this.#emit({ type: "catch-up", id: ev.id, round: ev.round, lag: ev.lag });
        break;
      case "catch-up-failed":
        this.#catchUp.forget(ev.id);
        this.#logger(`gave up catching up ${ev.id}: ${ev.reason}`);
        this.#emit({ type: "catch-up-failed", id: ev.id, reason: ev.reason });
        break;
      case "transfer-aborted":
        this.#logger(`leadership transfer to ${ev.to} aborted: ${ev.reason}`);
        break;
      case "read-failed":
        this.#pending.failReadRound(ev.requestId, new NotLeaderError(null, null));
        break;
      case "removed":
        if (this.#removedByPeer) break;
        this.#removedByPeer = true;
        this.#logger("this member was removed from the cluster");
        this.#emit({ type: "removed" });
        break;
    }
  }

  /** Applies committed entries past #applied; the applier settles the proposals waiting on them. */
  #apply(entries: readonly Entry[]): void | Promise<void> {
    let from = 0;
    while (from < entries.length && entries[from]!.index <= this.#applied) from++;
    if (from === entries.length) return;
    const batch = from === 0 ? entries : entries.slice(from);
    const waiting = this.#pending.takeForEntries(batch);
    const last = batch[batch.length - 1]!.index;
    const stage = this.#init.probe?.stage;
    stage?.("apply", last);
    const done = () => {
      this.#applied = last;
      this.#pending.onApplied(last);
      stage?.("applied", last);
    };
    const p = this.#applier.apply(batch, waiting, (proposal, result, failed) => this.#pending.settle(proposal, this.#clock.now(), result, failed));
    if (p === undefined) return done();
    return p.then(done);
  }

  /** The write tracer's view of messages arriving (see `DriverProbe.stage`). */
  #traceReceived(msgs: readonly Message[]): void {
    const stage = this.#init.probe!.stage!;
    for (const m of msgs) {
      if (m.type === "MsgApp" && m.entries.length > 0) stage("recv-app", m.entries[m.entries.length - 1]!.index);
      else if (m.type === "MsgAppResp" && m.success) stage("recv-ack", m.matchIndex);
    }
  }

  /** The write tracer's view of messages leaving. */
  #traceSent(msgs: readonly Message[]): void {
    const stage = this.#init.probe!.stage!;
    for (const m of msgs) {
      if (m.type === "MsgApp" && m.entries.length > 0) stage("send-app", m.entries[m.entries.length - 1]!.index);
      else if (m.type === "MsgAppResp" && m.success) stage("send-ack", m.matchIndex);
    }
  }

  #updateUrls(config: ConfigState): void {
    for (const m of config.members) this.#transport.setUrl(m.id, m.url);
  }

  #onFatal(err: unknown): void {
    if (this.#fatal !== null) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.#fatal = e;
    this.#logger(`FATAL: ${e.message}; the node has stopped`);
    this.close().catch((c: unknown) => this.#logger(`closing after the failure: ${(c as Error).message}`));
  }

  // ---- Helpers ----

  #emit(ev: NodeEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch (err) {
        this.#logger(`event listener threw: ${(err as Error).message}`);
      }
    }
  }

  /** Reads the free space: before an append of `bytes` when due (`DiskSpace.beforeAppend`), or every 10 ticks, a second at the default tick (no `bytes`). */
  #checkDisk(bytes?: number): void {
    try {
      if (bytes === undefined) this.#disk.check();
      else this.#disk.beforeAppend(bytes);
    } catch (err) {
      this.#onFatal(err);
    }
  }

  /** Logs a dropped input at most once a second. */
  #logDrop(line: string): void {
    const now = this.#clock.now();
    if (now - this.#dropsLoggedAtMs < 1000) return;
    this.#dropsLoggedAtMs = now;
    this.#logger(line);
  }

  #refuseWrite(): Error | null {
    if (this.#fatal !== null) return this.#fatal;
    if (this.#closed) return new ClosedError("The node is closed");
    if (this.#disk.low) return this.#disk.error();
    const st = this.#raft.status();
    if (st.role !== "leader" && st.leaderId !== null) return this.#notLeader();
    return null;
  }

  #notLeader(): NotLeaderError {
    const st = this.#raft.status();
    const id = st.leaderId;
    if (id === null || id === this.id) return new NotLeaderError(null, null);
    const url = st.config.members.find((m) => m.id === id)?.url ?? this.#transport.url(id) ?? null;
    return new NotLeaderError(id, url);
  }

  #checkOpen(): void {
    if (this.#fatal !== null) throw this.#fatal;
    if (this.#closed) throw new ClosedError("The node is closed");
  }

  #rejectAll(err: Error): void {
    this.#intake.failAll(err);
    this.#pending.failAll(err);
  }
}
