/**
 * One simulated member: the production `RaftDriver`, with the real
 * `SegmentedLog`, `StateFile`, `MembershipFile` and `SnapshotStore` on a
 * simulated disk (`./sim-disk.ts`), timers on the seeded scheduler, peers
 * over the simulated network (`SimTransport` below), and the model state
 * machine as its applier (`./sim-applier.ts`). Nothing of the driver is
 * re-implemented here: the host only starts it, crashes it (kills its
 * incarnation's events and crashes its disk), and reports what it sees to
 * the checker through the driver's probe.
 *
 * What survives a crash is what the disk kept: a restart opens the storage
 * anew, through `openNodeStorage`, exactly as production does.
 *
 * @module
 */
import { StorageFailedError } from "../../src/errors.ts";
import { RaftDriver, type DriverTunables } from "../../src/node/driver.ts";
import { bootstrapStorage, type NodeStorage, openNodeStorage, storageIsFresh } from "../../src/node/node-storage.ts";
import type { DriverProbe } from "../../src/node/ready-loop.ts";
import type { SnapshotChunks, Transport } from "../../src/node/transport.ts";
import type { Entry, HardState, Member, Message, MsgSnap, NodeId, RaftStatus } from "../../src/raft/types.ts";
import { SimulatedDisk } from "../../src/storage/simulated-disk.ts";
import type { Checker, HostView } from "./checks.ts";
import { LogMirror } from "./log-mirror.ts";
import type { Prng } from "./prng.ts";
import type { Scheduler } from "./scheduler.ts";
import { SimStateMachineApplier } from "./sim-applier.ts";
import { type DiskProfile, type DiskStats, SimFileLayer } from "./sim-disk.ts";

/** What a host needs from its world. */
export interface HostWorld {
  readonly sched: Scheduler;
  readonly checker: Checker;
  readonly tunables: DriverTunables;
  readonly diskStats: DiskStats;
  /** Trace sink, or null when not tracing. */
  readonly trace: ((line: string) => void) | null;
  /** Runs `fn`, recording a violation it throws as the run's failure (probes run inside the driver, which must not swallow them). */
  guard(fn: () => void): void;
  /** A message leaves `from` (the world routes it over the network). */
  send(from: SimHost, owner: object, msg: Message): void;
  /** Streams a snapshot from `from` to `msg.to`; resolves once the receiver holds it and stepped the MsgSnap. */
  sendSnapshot(from: SimHost, owner: object, msg: MsgSnap, chunks: SnapshotChunks): Promise<void>;
  /** The driver stopped on its own (a fatal storage error): the process is gone. */
  stoppedFatally(host: SimHost, err: Error): void;
}

/** One member and its disk. */
export class SimHost implements HostView {
  readonly id: NodeId;
  readonly url: string;
  /** Bumped on every start. */
  incarnation = 0;
  /** Taken out of the cluster for good (removed by a committed configuration); never restarted. */
  retired = false;
  /** The running driver, once started; null while down or starting. */
  driver: RaftDriver | null = null;
  /** The current incarnation's token: its events die with it. */
  owner: object | null = null;
  starting = false;
  readonly disk: SimulatedDisk;
  readonly dir: string;
  /** Disk behaviour, changed by the schedule. */
  profile: DiskProfile;
  /** Timers of this host run this many times slower than virtual time (clock skew). */
  clockRate = 1;
  readonly mirror = new LogMirror();
  readonly sm: SimStateMachineApplier;
  readonly stats = { starts: 0, crashes: 0, readys: 0 };

  readonly #world: HostWorld;
  readonly #rng: Prng;
  /** The founding membership, or empty for a member that joins later. */
  readonly #bootstrap: readonly Member[];
  #storage: NodeStorage | null = null;
  #durable: HardState = { term: 0, votedFor: null, commitIndex: 0 };
  #status: RaftStatus | null = null;

  constructor(world: HostWorld, id: NodeId, bootstrap: readonly Member[], rng: Prng, persistedSm: boolean, profile: DiskProfile, sectorBytes: number) {
    this.#world = world;
    this.id = id;
    this.url = `http://${id}.sim:7000`;
    this.#bootstrap = bootstrap;
    this.#rng = rng;
    this.profile = profile;
    this.dir = `/sim/${id}`;
    this.disk = new SimulatedDisk(sectorBytes);
    this.sm = new SimStateMachineApplier(this, world.checker, rng.fork(), persistedSm);
  }

  /** Whether the driver runs. */
  get alive(): boolean {
    return this.driver !== null;
  }

  durableHardState(): HardState {
    return this.#durable;
  }

  durableLastIndex(): number {
    try {
      return this.#storage?.log.lastIndex() ?? -1;
    } catch (err) {
      // A log a failed fsync poisoned a moment ago (the node is about to stop): nothing to check against.
      if (err instanceof StorageFailedError) return -1;
      throw err;
    }
  }

  durableTerm(index: number): number | undefined {
    const log = this.#storage?.log;
    if (log === undefined || index < log.firstIndex() - 1 || index > log.lastIndex()) return undefined;
    return log.term(index);
  }

  durableSnapshotIndex(): number {
    const log = this.#storage?.log;
    return log === undefined ? -1 : log.firstIndex() - 1;
  }

  /** The status the probe saw last (null while down). */
  lastStatus(): RaftStatus | null {
    return this.#status;
  }

  #trace(line: string): void {
    this.#world.trace?.(`${this.id}: ${line}`);
  }

  /**
   * Starts (or restarts) the member from what its disk holds, as production
   * does. A refusal to start is a violation: nothing in the simulation is
   * allowed to leave a data directory that will not open.
   */
  async start(knownMembers: readonly { id: NodeId; url: string }[]): Promise<void> {
    const w = this.#world;
    const owner = {};
    this.owner = owner;
    this.incarnation++;
    this.starting = true;
    this.stats.starts++;
    const incarnation = this.incarnation;
    const fs = new SimFileLayer(this.disk, w.sched, owner, this.#rng.fork(), () => this.profile, w.diskStats);
    const logger = w.trace === null ? () => {} : (line: string) => this.#trace(`log: ${line}`);
    try {
      const storage = await openNodeStorage(this.dir, { fs, logger, segmentBytesMax: 4096 });
      if (this.#bootstrap.length > 0 && storageIsFresh(storage)) await bootstrapStorage(storage, this.#bootstrap);
      if (w.sched.isDead(owner)) return;
      this.#storage = storage;
      this.#resetMirror(storage);
      const alive = (fn: () => void) => {
        if (!w.sched.isDead(owner)) w.guard(fn);
      };
      const probe: DriverProbe = {
        started: (st) => alive(() => {
          this.#status = st;
          w.checker.onStart(this, st);
        }),
        ready: (rd, st) => alive(() => {
          this.stats.readys++;
          w.checker.onReady(this, rd, st);
          if (rd.snapshot !== null) this.mirror.reset(rd.snapshot.index, rd.snapshot.term, rd.snapshot.membership);
          if (rd.entries.length > 0) this.mirror.append(rd.entries);
          for (const ev of rd.events) if (ev.type === "removed") w.checker.onRemovedEvent(this, st);
          this.#status = st;
          w.checker.observe(this, st);
          if (w.trace !== null) this.#traceReady(rd, st);
        }),
        persisted: (hs) => alive(() => {
          w.checker.onDurableHardState(this, hs);
          this.#durable = hs;
        }),
      };
      const transport = new SimTransport(w, this, owner);
      const driver = await RaftDriver.create({
        id: this.id,
        url: this.url,
        clusterId: "sim",
        tunables: w.tunables,
        clock: w.sched.clock(owner, this.#rng.fork(), () => this.clockRate),
        storage,
        transport: () => transport,
        applier: this.sm.applier(() => w.sched.isDead(owner)),
        logger,
        knownMembers,
        runtimeName: "sim",
        probe,
      });
      if (w.sched.isDead(owner)) return;
      driver.on((ev) => {
        if (ev.type === "stopped" && ev.error !== null && !w.sched.isDead(owner)) w.stoppedFatally(this, ev.error);
      });
      this.driver = driver;
      this.#trace(`started #${incarnation}: term ${this.#durable.term} log (${storage.log.snapshotMeta().index}, ${storage.log.lastIndex()}] applied ${this.sm.current.index}`);
    } catch (err) {
      if (w.sched.isDead(owner)) return;
      if (/EIO: simulated/.test((err as Error).message)) {
        // A failed fsync while starting: the process stops, as it must; the operator starts it again.
        w.stoppedFatally(this, err as Error);
        return;
      }
      w.guard(() => w.checker.fail(this.id, `refused to start (incarnation ${incarnation}): ${(err as Error).stack ?? String(err)}`));
    } finally {
      if (this.owner === owner) this.starting = false;
    }
  }

  /** The process dies: its events are void, its disk keeps what a power loss keeps. */
  crash(): void {
    if (this.owner === null) return;
    this.#trace(`crash #${this.incarnation}`);
    this.#world.sched.kill(this.owner);
    this.owner = null;
    this.driver = null;
    this.starting = false;
    this.#storage = null;
    this.#status = null;
    this.stats.crashes++;
    this.disk.crash(() => this.#rng.next());
    this.sm.crash();
  }

  #resetMirror(storage: NodeStorage): void {
    const log = storage.log;
    const snap = log.snapshotMeta();
    this.mirror.reset(snap.index, snap.term, snap.membership);
    if (log.lastIndex() > snap.index) this.mirror.append(log.entries(snap.index + 1, log.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
    this.#durable = storage.state.read();
  }

  #traceReady(rd: import("../../src/raft/types.ts").Ready, st: RaftStatus): void {
    const parts: string[] = [];
    if (rd.hardState !== null) parts.push(`hs(t${rd.hardState.term} v${rd.hardState.votedFor ?? "-"} c${rd.hardState.commitIndex})`);
    if (rd.snapshot !== null) parts.push(`snap(${rd.snapshot.index}/${rd.snapshot.term})`);
    if (rd.entries.length > 0) parts.push(`ents[${(rd.entries[0] as Entry).index}..${(rd.entries[rd.entries.length - 1] as Entry).index}]`);
    if (rd.committedEntries.length > 0) parts.push(`apply[${(rd.committedEntries[0] as Entry).index}..${(rd.committedEntries[rd.committedEntries.length - 1] as Entry).index}]`);
    if (rd.config !== null) parts.push(`config@${rd.config.index}(${rd.config.members.map((m) => (m.voter ? m.id : `${m.id}~`)).join(",")})`);
    parts.push(`msgs ${rd.messages.length}+${rd.persistedMessages.length}`);
    for (const ev of rd.events) parts.push(`event ${JSON.stringify(ev)}`);
    this.#trace(`ready ${st.role} t${st.term} ${parts.join(" ")}`);
  }
}

/** A driver's transport over the simulated network. */
class SimTransport implements Transport {
  readonly #world: HostWorld;
  readonly #host: SimHost;
  readonly #owner: object;
  readonly #urls = new Map<NodeId, string>();

  constructor(world: HostWorld, host: SimHost, owner: object) {
    this.#world = world;
    this.#host = host;
    this.#owner = owner;
  }

  send(msgs: readonly Message[]): void {
    for (const m of msgs) this.#world.send(this.#host, this.#owner, m);
  }

  sendSnapshot(msg: MsgSnap, chunks: SnapshotChunks): Promise<void> {
    return this.#world.sendSnapshot(this.#host, this.#owner, msg, chunks);
  }

  setUrl(id: NodeId, url: string): void {
    this.#urls.set(id, url);
  }

  url(id: NodeId): string | undefined {
    return this.#urls.get(id);
  }

  close(): void {}
}
