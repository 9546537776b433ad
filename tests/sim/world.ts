/**
 * The schedule of one simulated run of the production driver: a cluster of
 * 3, 5 or 7 members (`./host.ts`) on a faulty network, with crashes at any
 * await and restarts, partitions, slow and failing disks, clock skew,
 * membership churn (fresh ids, and removed ids re-added with their old
 * data), leadership transfers, compaction racing replication
 * (built-in snapshots and the seed's beginSnapshot/endSnapshot), snapshot
 * streams, and clients writing and reading through the driver's public
 * calls — all drawn from one seed. Then the liveness phase: faults stop,
 * every member restarts, and the cluster must elect a leader, finish every
 * join and converge within a bound.
 *
 * Time is the scheduler's virtual milliseconds; the world's own schedule
 * runs once a tick (`TICK_MS`), the drivers tick on their own timers.
 *
 * @module
 */
import { ClosedError, MembershipChangeError, NotLeaderError, ProposalDroppedError, RaftError, StorageFailedError, TimeoutError } from "../../src/errors.ts";
import { DRIVER_DEFAULTS, type DriverTunables } from "../../src/node/driver.ts";
import type { SnapshotChunks } from "../../src/node/transport.ts";
import { CodecError, decodeMessages, encodeMessages } from "../../src/transport/codec.ts";
import type { Member, Message, MsgSnap, NodeId } from "../../src/raft/types.ts";
import { Checker, SimViolation } from "./checks.ts";
import { SimHost, type HostWorld } from "./host.ts";
import { calmFaults, Network } from "./network.ts";
import { Prng } from "./prng.ts";
import { drawSettings, netProfiles, type Schedule, type SeedSettings } from "./schedule.ts";
import { Scheduler } from "./scheduler.ts";
import type { DiskProfile, DiskStats } from "./sim-disk.ts";
import { encodeProposal } from "./state-machine.ts";
import { describeMessage } from "./trace.ts";

/** Virtual milliseconds per tick (the drivers' tickMs, the network's delay unit, the world's schedule). */
export const TICK_MS = 10;

/** What a run is asked to do. */
export interface WorldOptions {
  readonly seed: number;
  /** Founding members: 3, 5 or 7. */
  readonly nodes: number;
  /** Length of the fault phase in ticks. */
  readonly faultTicks: number;
  /** The liveness phase fails if the cluster has not converged within this many ticks. */
  readonly livenessTicksMax: number;
  /** Trace sink (one line per event), or null. */
  readonly trace: ((line: string) => void) | null;
}

/** Counters of one run. */
export interface WorldStats {
  ticks: number;
  livenessTicks: number;
  /** Messages corrupted on the wire (bytes flipped) that the codec refused. */
  corruptRefused: number;
  events: number;
  proposals: number;
  proposalsAcked: number;
  proposalsFailed: number;
  reads: number;
  crashes: number;
  restarts: number;
  fatalStops: number;
  partitions: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  joins: number;
  removals: number;
  readds: number;
  transfers: number;
  compactions: number;
  elections: number;
  committed: number;
  diskOps: number;
  syncFailures: number;
}

/** A client call in flight, checked to settle within its timeout. */
interface _ClientOp {
  readonly host: SimHost;
  readonly incarnation: number;
  readonly what: string;
  readonly startMs: number;
  readonly timeoutMs: number;
}

/** A member being added: retried at the current leader until it is a voter (what `raft start --join` does). */
interface _Join {
  readonly id: NodeId;
  readonly sinceMs: number;
  nextTryMs: number;
}

const _disks: readonly DiskProfile[] = [
  { writeMsMax: 0, syncMsMax: 0, zeroRate: 1, syncFailRate: 0 },
  { writeMsMax: 1, syncMsMax: 4, zeroRate: 0.5, syncFailRate: 0 },
  { writeMsMax: 2, syncMsMax: 15, zeroRate: 0.3, syncFailRate: 0 },
  { writeMsMax: 3, syncMsMax: 40, zeroRate: 0.1, syncFailRate: 0 },
];

/** The simulated world of one seed. */
export class World implements HostWorld {
  readonly opts: WorldOptions;
  readonly sched = new Scheduler();
  readonly checker = new Checker();
  readonly tunables: DriverTunables;
  readonly diskStats: DiskStats = { ops: 0, syncFailures: 0 };
  readonly trace: ((line: string) => void) | null;
  readonly stats: WorldStats = {
    ticks: 0, livenessTicks: 0, corruptRefused: 0, events: 0, proposals: 0, proposalsAcked: 0, proposalsFailed: 0, reads: 0, crashes: 0, restarts: 0,
    fatalStops: 0, partitions: 0, snapshotsSent: 0, snapshotsFailed: 0, joins: 0, removals: 0, readds: 0, transfers: 0, compactions: 0,
    elections: 0, committed: 0, diskOps: 0, syncFailures: 0,
  };
  readonly #hosts = new Map<NodeId, SimHost>();
  /** Draws for corrupting messages on the wire (its own stream). */
  readonly #wire: Prng;
  readonly #net: Network;
  readonly #rng: Prng;
  readonly #client: Prng;
  readonly #hostRngs: Prng;
  readonly #settings: SeedSettings;
  readonly #plan: Schedule;
  #failure: unknown = null;
  #liveness = false;
  #spares: NodeId[] = [];
  #nextProposalId = 1;
  #snapshotSeq = 0;
  readonly #ops = new Set<_ClientOp>();
  readonly #joins = new Map<NodeId, _Join>();
  /** Founding members never crash more than this many at once. */
  readonly #downMax: number;

  constructor(opts: WorldOptions) {
    if (![3, 5, 7].includes(opts.nodes)) throw new RangeError(`nodes must be 3, 5 or 7, got ${opts.nodes}`);
    this.opts = opts;
    this.trace = opts.trace === null ? null : (line) => opts.trace!(`[${this.sched.now}] ${line}`);
    const root = new Prng(opts.seed);
    this.#net = new Network(root.fork());
    this.#rng = root.fork();
    this.#client = root.fork();
    this.#hostRngs = root.fork();
    this.#settings = drawSettings(root.fork());
    // Forked last: corruption draws change no other stream, so a seed's schedule is the same with it.
    this.#wire = root.fork();
    this.#plan = this.#settings.plan;
    this.#downMax = Math.ceil(opts.nodes / 2) - 1 + (this.#rng.chance(0.5) ? 1 : 0);
    const rc = this.#settings.raftConfig;
    this.tunables = {
      ...DRIVER_DEFAULTS,
      tickMs: TICK_MS,
      electionTicks: rc.electionTicks,
      heartbeatTicks: rc.heartbeatTicks,
      snapshotLogBytes: this.#settings.snapshotLogBytes,
      diskFreeBytesMin: 0,
      proposeTimeoutMs: 300 * TICK_MS,
      membershipTimeoutMs: 600 * TICK_MS,
      raft: { preVote: rc.preVote, checkQuorum: rc.checkQuorum, maxInflightMsgs: rc.maxInflightMsgs, maxInflightBytes: rc.maxInflightBytes, maxMsgBytes: rc.maxMsgBytes, catchUpRoundsMax: rc.catchUpRoundsMax },
    };
    const members: Member[] = [];
    for (let i = 1; i <= opts.nodes; i++) members.push({ id: `n${i}`, url: `http://n${i}.sim:7000`, voter: true });
    for (let i = opts.nodes + 1; i <= opts.nodes + 6; i++) this.#spares.push(`n${i}`);
    this.checker.noteBootstrap({ index: 0, members });
    for (const m of members) this.#addHost(m.id, members);
    this.trace?.(`world seed ${opts.seed} nodes ${opts.nodes} settings ${JSON.stringify(this.#settings)}`);
  }

  #addHost(id: NodeId, bootstrap: readonly Member[]): SimHost {
    const rng = this.#hostRngs.fork();
    const h = new SimHost(this, id, bootstrap, rng, this.#settings.smPersisted, { ...rng.pick(_disks), syncFailRate: this.#plan.syncFail }, rng.pick([512, 512, 512, 64, 7]));
    this.#hosts.set(id, h);
    return h;
  }

  // ---- HostWorld ----

  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.#failure === null) this.#failure = err;
    }
  }

  send(from: SimHost, owner: object, msg: Message): void {
    if (this.sched.isDead(owner)) return; // a dead process sends nothing (its crash must have come between two events)
    this.guard(() => this.checker.onSend(from, msg));
    // On the wire as the production transport encodes it: every delivery is decoded by the real codec.
    const wire = encodeMessages([msg]);
    const { outcome, delays } = this.#net.send(msg);
    if (outcome === "blocked" && msg.type === "MsgApp" && this.#rng.chance(0.5)) {
      // The sender's transport notices a refused connection.
      this.sched.after(TICK_MS, () => from.driver?.reportUnreachable(msg.to), owner);
    }
    for (const d of delays) {
      this.sched.after(d * TICK_MS + this.#rng.range(0, TICK_MS - 1), () => {
        const h = this.#hosts.get(msg.to);
        if (h === undefined || h.driver === null || h.retired || !this.#net.canReach(msg.from, msg.to)) return;
        if (!this.#liveness && this.#wire.chance(0.01)) this.#refuseCorrupted(wire);
        if (this.trace !== null) this.trace(`deliver ${describeMessage(msg)}`);
        this.#net.stats.delivered++;
        h.driver.receive(decodeMessages(wire));
      });
    }
  }

  /**
   * A corrupted copy of a message also arrives (1-3 bits of `wire` flipped):
   * the codec must refuse it with a CodecError, never another error. A copy
   * that still decodes is dropped, as the peer key's HMAC or TLS would drop
   * it (without them only TCP's checksum stands between a member and a
   * corrupted message). The original is delivered as well, so a seed's
   * schedule does not change.
   */
  #refuseCorrupted(wire: Uint8Array): void {
    const bad = wire.slice();
    for (let i = this.#wire.range(1, 3); i > 0; i--) bad[this.#wire.range(0, bad.length - 1)]! ^= 1 << this.#wire.range(0, 7);
    try {
      decodeMessages(bad);
    } catch (err) {
      if (!(err instanceof CodecError)) this.guard(() => this.checker.fail(null, `the codec threw ${(err as Error).stack ?? String(err)} on a corrupted message, not a CodecError`));
      this.stats.corruptRefused++;
    }
  }

  async sendSnapshot(from: SimHost, owner: object, msg: MsgSnap, chunks: SnapshotChunks): Promise<void> {
    this.guard(() => this.checker.onSend(from, msg));
    this.stats.snapshotsSent++;
    const parts: Uint8Array[] = [];
    for await (const c of chunks(0)) parts.push(c.slice());
    await this.#sleep(owner, this.#net.delayTicks() * TICK_MS + this.#rng.range(0, 5 * TICK_MS));
    const target = this.#hosts.get(msg.to);
    const lost = !this.#liveness && this.#rng.chance(this.#net.faults.dropRate * 2 + 0.02);
    if (target === undefined || target.driver === null || target.retired || !this.#net.canReach(msg.from, msg.to) || !this.#net.canReach(msg.to, msg.from) || lost) {
      this.stats.snapshotsFailed++;
      throw new RaftError(`simulated snapshot transfer to ${msg.to} failed`);
    }
    const sink = target.driver.snapshotSink;
    const id = `sim-${++this.#snapshotSeq}`;
    this.trace?.(`${from.id}: snapshot ${msg.snapshot.index}/${msg.snapshot.term} to ${msg.to} arrives`);
    // The receiver may crash meanwhile (its disk then never answers): the sender's request times out.
    await this.#within(owner, 50 * TICK_MS, (async () => {
      let offset = await sink.begin(msg.from, id, msg);
      for (const p of parts) {
        if (offset >= p.length) {
          offset -= p.length;
          continue;
        }
        const rest = offset === 0 ? p : p.subarray(offset);
        await sink.write(msg.from, id, sink.receivedOffset(msg.from, id) ?? 0, rest);
        offset = 0;
      }
      await sink.finish(msg.from, id, parts.reduce((n, p) => n + p.length, 0));
    })());
  }

  stoppedFatally(host: SimHost, err: Error): void {
    this.trace?.(`${host.id}: stopped: ${err.message}`);
    this.stats.fatalStops++;
    // The process is gone (a failed fsync, a full disk): what it did not sync may be lost.
    host.crash();
    if (!/EIO: simulated/.test(err.message)) {
      this.guard(() => this.checker.fail(host.id, `stopped on an error the simulation did not inject: ${err.stack ?? err.message}`));
    }
  }

  #sleep(owner: object, ms: number): Promise<void> {
    return new Promise((resolve) => this.sched.after(ms, resolve, owner));
  }

  /** `p`, or a rejection after `ms` (owned by `owner`: a dead sender never wakes). */
  #within<T>(owner: object, ms: number, p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      this.sched.after(ms, () => {
        if (done) return;
        done = true;
        reject(new RaftError("simulated request timed out"));
      }, owner);
      p.then((v) => {
        if (done) return;
        done = true;
        resolve(v);
      }, (e) => {
        if (done) return;
        done = true;
        reject(e);
      });
    });
  }

  // ---- The run ----

  /** Runs both phases. Throws a SimViolation (or an unexpected error) on failure. */
  async run(): Promise<void> {
    for (const h of this.#hosts.values()) void h.start([]);
    await this.#advance();
    for (let i = 0; i < this.opts.faultTicks; i++) {
      this.#faults();
      this.#clients();
      await this.#tick();
    }
    this.#startLiveness();
    let last = 0;
    let applied = Number.MAX_SAFE_INTEGER;
    // Every member, the ones restarting now too: a member that was down can come back holding the
    // longest log and lead, and replicate all of it (seed 1057014: n3 came back with 215 entries, 44
    // committed, the others at 46-48, one 1-byte message in flight).
    for (const h of this.#hosts.values()) {
      if (h.retired) continue;
      last = Math.max(last, h.mirror.lastIndex());
      applied = Math.min(applied, h.sm.current.index);
    }
    // Elections and catch-up get livenessTicksMax; a replication backlog gets 8 ticks per entry on top
    // (the slowest flow control moves one entry per round trip: two network delays of up to 4 ticks, and
    // a sync of up to 40 ms on the slowest disks), and so does each pending join and one more that a
    // removed member's re-add or a spare's join may start meanwhile (seed 102861: a learner added after
    // the faults stopped, one 64-byte message in flight, needed ~7 ticks per entry).
    const bound = this.opts.livenessTicksMax + 8 * Math.max(0, last - applied) * (2 + this.#joins.size);
    for (let i = 0; i < bound; i++) {
      this.stats.livenessTicks++;
      this.#retireRemoved();
      this.#restartDown();
      this.#driveJoins();
      if (this.#converged()) {
        await this.#finish();
        return;
      }
      await this.#tick();
    }
    this.checker.fail(null, `Liveness: no convergence within ${bound} ticks after the faults stopped:\n${this.describe()}`);
  }

  /** One world tick: the drivers' timers, deliveries and disk completions due in it. */
  async #tick(): Promise<void> {
    this.stats.ticks++;
    await this.#advance();
    this.#checkClientOps();
  }

  async #advance(): Promise<void> {
    const until = (this.stats.ticks + 1) * TICK_MS;
    await this.sched.runUntil(until);
    this.checker.now = this.stats.ticks;
    this.stats.events = this.sched.events;
    if (this.#failure !== null) throw this.#failure;
  }

  /** One line per host: its role, term, log and apply positions. */
  describe(): string {
    const lines: string[] = [];
    for (const h of this.#hosts.values()) {
      const st = h.lastStatus();
      if (st === null || h.driver === null) {
        lines.push(`  ${h.id}: ${h.starting ? "starting" : "down"}${h.retired ? " (retired)" : ""}`);
        continue;
      }
      lines.push(
        `  ${h.id}: ${st.role} term ${st.term} leader ${st.leaderId ?? "-"} last ${st.lastIndex} commit ${st.commitIndex} applied ${h.sm.current.index}` +
          ` config@${st.config.index} ${st.config.members.map((m) => (m.voter ? m.id : `${m.id}~`)).join(",")}${h.retired ? " (retired)" : ""}` +
          (st.role === "leader" ? ` progress ${st.progress.map((p) => `${p.id}:${p.state}/${p.matchIndex}/${p.nextIndex}`).join(" ")}` : ""),
      );
    }
    lines.push(`  network cuts: ${this.#net.describeCuts()}; joins pending: ${[...this.#joins.keys()].join(",") || "none"}; client ops ${this.#ops.size}`);
    return lines.join("\n");
  }

  /** Alive, non-retired hosts. */
  #running(): SimHost[] {
    const out: SimHost[] = [];
    for (const h of this.#hosts.values()) if (h.alive && !h.retired) out.push(h);
    return out;
  }

  /** The alive leader with the highest term, if any. */
  #leader(): SimHost | null {
    let best: SimHost | null = null;
    let bestTerm = -1;
    for (const h of this.#hosts.values()) {
      const st = h.lastStatus();
      if (h.alive && !h.retired && st !== null && st.role === "leader" && st.term > bestTerm) {
        best = h;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** Where a client sends its request: usually the leader, sometimes a stale leader or anyone. */
  #target(): SimHost | null {
    const l = this.#leader();
    const stale = this.#running().filter((h) => h !== l && h.lastStatus()?.role === "leader");
    if (stale.length > 0 && this.#client.chance(0.5)) return this.#client.pick(stale);
    if (l !== null && this.#client.chance(0.9)) return l;
    const r = this.#running();
    return r.length === 0 ? null : this.#client.pick(r);
  }

  // ---- Client calls through the driver's API ----

  #track(host: SimHost, what: string, timeoutMs: number, p: Promise<unknown>, onOk: (v: unknown) => void, onErr: (e: unknown) => void): void {
    const op: _ClientOp = { host, incarnation: host.incarnation, what, startMs: this.sched.now, timeoutMs };
    this.#ops.add(op);
    p.then((v) => {
      this.#ops.delete(op);
      this.guard(() => onOk(v));
    }, (e) => {
      this.#ops.delete(op);
      this.trace?.(`${host.id}: ${what} failed: ${(e as Error).message}`);
      this.guard(() => onErr(e));
    });
  }

  /** Every call settles within its timeout (plus a tick of slack), unless its member died meanwhile. */
  #checkClientOps(): void {
    const now = this.sched.now;
    for (const op of this.#ops) {
      if (op.host.incarnation !== op.incarnation || !op.host.alive) {
        this.#ops.delete(op); // died with its process
        continue;
      }
      if (now - op.startMs > op.timeoutMs + 5 * TICK_MS) {
        this.checker.fail(op.host.id, `${op.what} (called at ${op.startMs} ms) has not settled after ${now - op.startMs} ms; its timeout is ${op.timeoutMs} ms`);
      }
    }
  }

  /** Refusals a client must be ready for; anything else (an invalid argument, a bug) fails the run. */
  #expected(e: unknown): void {
    if (e instanceof NotLeaderError || e instanceof ProposalDroppedError || e instanceof MembershipChangeError || e instanceof TimeoutError || e instanceof ClosedError) return;
    // An injected disk failure reaches the call that was waiting on it (the member stops).
    if (e instanceof StorageFailedError && /EIO: simulated/.test(e.message)) return;
    // A crashed incarnation's calls fail on its dead disk (sim-disk.ts) as they settle.
    if (e instanceof StorageFailedError && /the process is dead/.test(e.message)) return;
    throw e;
  }

  #propose(h: SimHost): void {
    const d = h.driver;
    if (d === null) return;
    const pid = this.#nextProposalId++;
    this.stats.proposals++;
    const data = encodeProposal(pid, this.#client.u32(), this.#client.pick([0, 0, 8, 40, 200]));
    this.#track(h, `propose ${pid}`, this.tunables.proposeTimeoutMs, d.propose(data), (index) => {
      this.stats.proposalsAcked++;
      this.checker.onWriteAcked(index as number);
    }, (e) => {
      this.stats.proposalsFailed++;
      this.#expected(e);
    });
  }

  #read(h: SimHost): void {
    const d = h.driver;
    if (d === null) return;
    this.stats.reads++;
    const ackedAtBegin = this.checker.beginClientRead();
    this.#track(h, "readBarrier", this.tunables.proposeTimeoutMs, d.readBarrier(), () => {
      this.checker.clientReadServed(h.id, ackedAtBegin, h.sm.current.index);
    }, (e) => this.#expected(e));
  }

  #clients(): void {
    const rng = this.#client;
    if (rng.chance(this.#plan.propose)) {
      const h = this.#target();
      if (h !== null) {
        const n = rng.chance(0.2) ? rng.range(2, 6) : 1;
        for (let i = 0; i < n; i++) this.#propose(h);
      }
    }
    if (rng.chance(this.#plan.read)) {
      const h = this.#target();
      if (h !== null) this.#read(h);
    }
  }

  // ---- Faults ----

  #crash(h: SimHost, why: string): void {
    this.trace?.(`fault: crash ${h.id}${why}`);
    h.crash();
    this.stats.crashes++;
  }

  #restart(h: SimHost): void {
    this.trace?.(`fault: restart ${h.id}`);
    this.stats.restarts++;
    void h.start(this.#knownMembers());
  }

  #knownMembers(): { id: NodeId; url: string }[] {
    return [...this.#hosts.values()].map((h) => ({ id: h.id, url: h.url }));
  }

  /** Highest term whose leader the trap has considered. */
  #trapTerm = 0;

  #leaderTrap(): void {
    const l = this.#leader();
    const st = l?.lastStatus() ?? null;
    if (l === null || st === null || st.term <= this.#trapTerm) return;
    this.#trapTerm = st.term;
    if (!this.#rng.chance(this.#plan.leaderTrap)) return;
    const others = [...this.#hosts.keys()].filter((x) => x !== l.id);
    if (this.#rng.chance(0.5)) {
      this.#net.split([l.id], others);
      this.trace?.(`fault: trap: isolate new leader ${l.id}`);
    } else {
      const delay = this.#rng.range(0, 3 * TICK_MS);
      this.sched.afterAlone(delay, () => {
        if (l.alive) this.#crash(l, " (trap: new leader)");
      });
    }
  }

  #faults(): void {
    const rng = this.#rng;
    const p = this.#plan;
    this.#leaderTrap();
    if (rng.chance(p.crash)) {
      const alive = this.#running();
      const down = [...this.#hosts.values()].filter((h) => !h.alive && !h.retired && h.incarnation > 0).length;
      if (alive.length > 0 && down < this.#downMax) {
        const l = this.#leader();
        const h = l !== null && rng.chance(p.leaderBias) ? l : rng.pick(alive);
        // Anywhere inside the next tick: between any two of its awaits.
        this.sched.afterAlone(rng.range(0, TICK_MS - 1), () => {
          if (h.alive || h.starting) this.#crash(h, "");
        });
      }
    }
    for (const h of this.#hosts.values()) {
      if (!h.alive && !h.starting && !h.retired && h.incarnation > 0 && rng.chance(p.restart)) this.#restart(h);
    }
    if (rng.chance(p.partition)) this.#partition();
    if (rng.chance(p.heal)) {
      this.#net.heal();
      this.trace?.("fault: heal network");
    }
    if (rng.chance(p.netChange)) {
      this.#net.faults = { ...rng.pick(netProfiles) };
      this.trace?.(`fault: network ${JSON.stringify(this.#net.faults)}`);
    }
    if (rng.chance(0.005)) {
      const h = rng.pick([...this.#hosts.values()]);
      h.profile = { ...rng.pick(_disks), syncFailRate: p.syncFail };
      this.trace?.(`fault: ${h.id} disk ${JSON.stringify(h.profile)}`);
    }
    if (rng.chance(p.clockSkew)) {
      const h = rng.pick([...this.#hosts.values()]);
      h.clockRate = rng.pick([1, 1, 1.3, 2]);
    }
    if (rng.chance(p.compact)) this.#compact();
    if (rng.chance(p.membership)) this.#changeMembership();
    if (rng.chance(p.transfer)) this.#transfer();
    this.#driveJoins();
  }

  #partition(): void {
    const rng = this.#rng;
    const ids = [...this.#hosts.keys()];
    const kind = rng.int(3);
    this.stats.partitions++;
    if (kind === 0) {
      const l = this.#leader();
      const a = l !== null && rng.chance(this.#plan.leaderBias) ? l.id : rng.pick(ids);
      this.#net.split([a], ids.filter((x) => x !== a));
      this.trace?.(`fault: isolate ${a}`);
    } else if (kind === 1) {
      const shuffled = rng.shuffle([...ids]);
      const cut = rng.range(1, shuffled.length - 1);
      this.#net.split(shuffled.slice(0, cut), shuffled.slice(cut));
      this.trace?.(`fault: split ${shuffled.slice(0, cut).join(",")} | ${shuffled.slice(cut).join(",")}`);
    } else {
      const n = rng.range(1, 3);
      for (let i = 0; i < n; i++) {
        const a = rng.pick(ids);
        const b = rng.pick(ids);
        if (a !== b) this.#net.cutOneWay(a, b);
      }
      this.trace?.(`fault: one-way cuts ${this.#net.describeCuts()}`);
    }
  }

  /** The seed's beginSnapshot/endSnapshot on a persisted state machine (built-in snapshots run by themselves). */
  #compact(): void {
    const alive = this.#running().filter((h) => h.sm.persisted);
    if (alive.length === 0) return;
    const h = this.#rng.pick(alive);
    const d = h.driver!;
    this.stats.compactions++;
    this.#track(h, "beginSnapshot/endSnapshot", 100 * TICK_MS, (async () => {
      const marker = await d.beginSnapshot();
      h.sm.flushed = h.sm.current; // the state machine persisted itself through (at least) the marker
      await d.endSnapshot(marker);
    })(), () => {}, (e) => this.#expected(e));
  }

  #changeMembership(): void {
    const l = this.#leader();
    const d = l?.driver ?? null;
    if (l === null || d === null) return;
    const st = l.lastStatus()!;
    const voters = st.config.members.filter((m) => m.voter);
    const rng = this.#rng;
    const removed = this.#removedIds();
    // Operators add members one or two at a time: each join waits for the previous catch-up anyway.
    if (rng.chance(0.5) && this.#joins.size < 2 && (this.#spares.length > 0 || removed.length > 0)) {
      let id: NodeId;
      let h: SimHost;
      if (removed.length > 0 && (this.#spares.length === 0 || rng.chance(0.5))) {
        id = rng.pick(removed);
        h = this.#hosts.get(id)!;
        if (h.alive || h.starting) h.crash();
        h.retired = false;
        // Re-added with its old data. Never wiped: a member id must not lose its durable state (its
        // term, its vote, its log), or a stale candidate whose configuration still counts that id as a
        // voter can collect from the wiped member a vote the old one would have refused (the simulator
        // found exactly that: a Leader Completeness violation). A wiped machine joins under a new id.
        this.stats.readds++;
        this.trace?.(`op: re-add ${id}`);
      } else {
        id = this.#spares.shift()!;
        h = this.#addHost(id, []);
        this.trace?.(`op: add ${id}`);
      }
      this.stats.joins++;
      void h.start(this.#knownMembers());
      this.#joins.set(id, { id, sinceMs: this.sched.now, nextTryMs: this.sched.now });
      this.#driveJoins();
    } else {
      const candidates = st.config.members.filter((m) => !m.voter || voters.length > 2);
      if (candidates.length === 0) return;
      const m = rng.pick(candidates);
      this.stats.removals++;
      this.trace?.(`op: ${l.id} removeMember ${m.id}`);
      // A join of that id in progress ends once the removal is done (refused, it goes on).
      this.#track(l, `removeMember ${m.id}`, this.tunables.membershipTimeoutMs, d.removeMember(m.id), () => this.#joins.delete(m.id), (e) => this.#expected(e));
    }
  }

  /** Retries every pending join at the current leader, as a joining member's `requestAdd` does. */
  #driveJoins(): void {
    const l = this.#leader();
    for (const j of this.#joins.values()) {
      const h = this.#hosts.get(j.id)!;
      const st = l?.lastStatus() ?? null;
      if (st !== null && st.config.members.some((m) => m.id === j.id && m.voter) && st.commitIndex >= st.config.index) {
        this.#joins.delete(j.id);
        continue;
      }
      if (l === null || l.driver === null || this.sched.now < j.nextTryMs || h.retired) continue;
      j.nextTryMs = this.sched.now + 20 * TICK_MS;
      this.trace?.(`op: ${l.id} addMember ${j.id}`);
      this.#track(l, `addMember ${j.id}`, this.tunables.membershipTimeoutMs, l.driver.addMember(j.id, h.url), () => {}, (e) => this.#expected(e));
    }
  }

  #transfer(): void {
    const l = this.#leader();
    const d = l?.driver ?? null;
    if (l === null || d === null) return;
    const voters = l.lastStatus()!.config.members.filter((m) => m.voter && m.id !== l.id);
    if (voters.length === 0) return;
    const to = this.#rng.pick(voters).id;
    this.stats.transfers++;
    this.trace?.(`op: ${l.id} transferLeadership ${to}`);
    this.#track(l, `transferLeadership ${to}`, 60 * TICK_MS, d.transferLeadership(to), () => {}, (e) => {
      if (e instanceof Error && /aborted|transfer/i.test(e.message)) return;
      this.#expected(e);
    });
  }

  // ---- Liveness ----

  #startLiveness(): void {
    this.#liveness = true;
    this.trace?.("liveness: faults stop, network heals, every member restarts");
    this.#net.heal();
    this.#net.faults = { ...calmFaults };
    for (const h of this.#hosts.values()) {
      h.profile = { ...h.profile, syncFailRate: 0, syncMsMax: Math.min(h.profile.syncMsMax, 4) };
      h.clockRate = 1;
    }
    this.#restartDown();
  }

  #restartDown(): void {
    for (const h of this.#hosts.values()) {
      if (!h.alive && !h.starting && !h.retired && h.incarnation > 0) this.#restart(h);
    }
  }

  /** An operator stops members that a committed configuration removed (dissertation §4.2.3's disruptive servers). */
  #retireRemoved(): void {
    const cfg = this.checker.latestCommittedConfig();
    if (cfg === null) return;
    // Not while a leader's configuration (committed or not yet) still holds it.
    const wanted = this.#leader()?.lastStatus()?.config.members ?? [];
    for (const h of this.#hosts.values()) {
      if (h.retired || this.#joins.has(h.id) || !this.checker.wasMember(h.id) || cfg.members.some((m) => m.id === h.id) || wanted.some((m) => m.id === h.id)) continue;
      this.trace?.(`${h.id}: retired (not in committed config @${cfg.index})`);
      if (h.alive || h.starting) h.crash();
      h.retired = true;
    }
  }

  /** Members a committed configuration removed (and not being added again): they may be added again. */
  #removedIds(): NodeId[] {
    const cfg = this.checker.latestCommittedConfig();
    if (cfg === null) return [];
    return [...this.#hosts.keys()].filter((id) => this.checker.wasMember(id) && !this.#joins.has(id) && !cfg.members.some((m) => m.id === id));
  }

  #markerProposedAtMs = -Infinity;
  #markerIndex = -1;

  /**
   * Converged: one leader whose last entry is of its term and committed, a
   * fresh write acknowledged, no join pending and no learner left, and every
   * member alive, following it and applied up to its last index.
   */
  #converged(): boolean {
    const l = this.#leader();
    if (l === null || this.#joins.size > 0) return false;
    const st = l.lastStatus();
    if (st === null || st.commitIndex !== st.lastIndex || l.mirror.term(st.lastIndex) !== st.term) return false;
    if (st.config.members.some((m) => !m.voter)) return false;
    if (this.#markerIndex < 0) {
      if (this.sched.now - this.#markerProposedAtMs > 30 * TICK_MS && l.driver !== null) {
        this.#markerProposedAtMs = this.sched.now;
        this.#track(l, "marker propose", this.tunables.proposeTimeoutMs, l.driver.propose(encodeProposal(this.#nextProposalId++, 7, 0)), (index) => {
          this.#markerIndex = index as number;
          this.checker.onWriteAcked(index as number);
        }, (e) => this.#expected(e));
      }
      return false;
    }
    if (st.commitIndex < this.#markerIndex) return false;
    for (const m of st.config.members) {
      const h = this.#hosts.get(m.id);
      if (h === undefined || !h.alive) return false;
      const s = h.lastStatus();
      if (s === null || s.term !== st.term || s.leaderId !== l.id || s.commitIndex !== st.lastIndex || h.sm.current.index !== st.lastIndex) return false;
    }
    return true;
  }

  async #finish(): Promise<void> {
    const l = this.#leader()!;
    this.checker.checkFinalLeader(l, l.lastStatus()!);
    // Every call a live member accepted settles within its timeout (#checkClientOps fails an overdue one).
    while (this.#ops.size > 0) await this.#tick();
    if (this.#ops.size > 0) {
      const op = [...this.#ops][0]!;
      this.checker.fail(op.host.id, `${op.what} (called at ${op.startMs} ms) never settled\n${this.describe()}`);
    }
    this.stats.elections = this.checker.stats.elections;
    this.stats.committed = this.checker.committedMax();
    this.stats.diskOps = this.diskStats.ops;
    this.stats.syncFailures = this.diskStats.syncFailures;
    this.trace?.(`converged after ${this.stats.livenessTicks} liveness ticks: leader ${l.id}\n${this.describe()}`);
  }
}

export { SimViolation };
