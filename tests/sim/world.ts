/**
 * The schedule of one simulated run: a cluster of 3, 5 or 7 cores on a
 * faulty network, ticked in lockstep, with crashes and restarts, partitions,
 * disk latency, membership changes, leadership transfers, compactions,
 * snapshot transfers and clients writing and reading, all drawn from one
 * seed. Then the liveness phase: faults stop, every member restarts, and the
 * cluster must elect a leader and converge within a bounded number of ticks.
 *
 * One tick: deliver due messages and snapshot streams, finish due disk
 * writes, tick every core, then draw faults and client operations.
 *
 * @module
 */
import { MembershipChangeError, NotLeaderError, ProposalDroppedError } from "../../src/errors.ts";
import type { Member, Message, MsgSnap, NodeId, RaftConfig } from "../../src/raft/types.ts";
import { Checker, type ReadTicket } from "./checks.ts";
import { calmFaults, Network } from "./network.ts";
import { type HostEnv, NodeHost } from "./node-host.ts";
import { Prng } from "./prng.ts";
import { describeMessage } from "./trace.ts";
import { drawSettings, netProfiles, type Schedule } from "./schedule.ts";
import { encodeProposal, type SmState } from "./state-machine.ts";

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
  proposals: number;
  proposalsRefused: number;
  reads: number;
  crashes: number;
  restarts: number;
  partitions: number;
  compactions: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  membershipChanges: number;
  membershipRefused: number;
  transfers: number;
  elections: number;
  committed: number;
}

/** A snapshot on its way from a leader to a follower. */
interface SnapshotStream {
  readonly from: NodeId;
  readonly fromIncarnation: number;
  readonly msg: MsgSnap;
  readonly content: SmState;
  readonly dueAt: number;
}

/** The simulated world of one seed. */
export class World {
  readonly opts: WorldOptions;
  readonly checker: Checker = new Checker();
  readonly stats: WorldStats = {
    ticks: 0, livenessTicks: 0, proposals: 0, proposalsRefused: 0, reads: 0, crashes: 0, restarts: 0, partitions: 0,
    compactions: 0, snapshotsSent: 0, snapshotsFailed: 0, membershipChanges: 0, membershipRefused: 0, transfers: 0, elections: 0, committed: 0,
  };
  private now = 0;
  private readonly hosts = new Map<NodeId, NodeHost>();
  private readonly net: Network;
  private readonly sched: Prng;
  private readonly client: Prng;
  private readonly hostRngs: Prng;
  private readonly raftConfig: Omit<RaftConfig, "id" | "randomSeed">;
  private readonly plan: Schedule;
  private readonly env: HostEnv;
  private streams: SnapshotStream[] = [];
  private unreachable: { from: NodeId; incarnation: number; to: NodeId }[] = [];
  private spares: NodeId[] = [];
  private nextProposalId = 1;
  private nextReadId = 1;
  private liveness = false;
  /** Replicas keep their state machine across restarts (RaftInit.applied) instead of rebuilding it from the snapshot. */
  private readonly smPersisted: boolean;
  /** Founding members never crash more than this many at once. */
  private readonly downMax: number;

  constructor(opts: WorldOptions) {
    if (![3, 5, 7].includes(opts.nodes)) throw new RangeError(`nodes must be 3, 5 or 7, got ${opts.nodes}`);
    this.opts = opts;
    const root = new Prng(opts.seed);
    this.net = new Network(root.fork());
    this.sched = root.fork();
    this.client = root.fork();
    this.hostRngs = root.fork();
    const settings = drawSettings(root.fork());
    this.raftConfig = settings.raftConfig;
    this.smPersisted = settings.smPersisted;
    this.plan = settings.plan;
    this.downMax = Math.ceil(opts.nodes / 2);
    this.env = {
      checker: this.checker,
      now: () => this.now,
      send: (from, msg) => this.send(from, msg),
      trace: opts.trace === null ? null : (line) => this.trace(line),
    };
    const members: Member[] = [];
    for (let i = 1; i <= opts.nodes; i++) members.push({ id: `n${i}`, url: `sim://n${i}`, voter: true });
    // Ids are never reused: a removed member stays removed; joiners get fresh ids.
    for (let i = opts.nodes + 1; i <= opts.nodes + 8; i++) this.spares.push(`n${i}`);
    this.checker.noteBootstrap({ index: 0, members });
    for (const m of members) this.addHost(m.id, members);
    this.trace(`world seed ${opts.seed} nodes ${opts.nodes} config ${JSON.stringify(this.raftConfig)} smPersisted ${this.smPersisted} plan ${JSON.stringify(this.plan)}`);
    for (const h of this.hosts.values()) h.start();
  }

  private trace(line: string): void {
    if (this.opts.trace !== null) this.opts.trace(`[${this.now}] ${line}`);
  }

  private addHost(id: NodeId, bootstrap: readonly Member[]): NodeHost {
    const rng = this.hostRngs.fork();
    const h = new NodeHost(id, bootstrap, this.raftConfig, this.env, rng);
    h.smPersisted = this.smPersisted;
    // Disks differ: some are fast, some slow enough that several Readys
    // (and elections) overlap their writes.
    h.diskLatencyTicksMax = rng.pick([0, 1, 2, 3, 8]);
    h.diskZeroRate = rng.pick([0.1, 0.3, 0.8]);
    this.hosts.set(id, h);
    return h;
  }

  /** Runs both phases. Throws a SimViolation (or the core's own error) on failure. */
  run(): void {
    for (let i = 0; i < this.opts.faultTicks; i++) {
      this.tick();
      this.faults();
      this.clients();
    }
    this.startLiveness();
    // Elections and catch-up get livenessTicksMax; a replication backlog gets
    // 4 ticks per entry on top: the slowest flow-control settings (1 message
    // in flight, 1 entry per message) move one entry per round trip, which
    // is 2 ticks of network plus up to 2 ticks of disk (measured: ~3.2).
    let last = 0;
    let applied = Number.MAX_SAFE_INTEGER;
    for (const h of this.running()) {
      last = Math.max(last, h.mirror.lastIndex());
      applied = Math.min(applied, h.sm.current().index);
    }
    const bound = this.opts.livenessTicksMax + 4 * Math.max(0, last - applied);
    for (let i = 0; i < bound; i++) {
      this.tick();
      this.stats.livenessTicks++;
      this.retireRemoved();
      if (this.converged()) {
        this.finish();
        return;
      }
    }
    this.checker.fail(null, `Liveness: no convergence within ${bound} ticks after the faults stopped:\n${this.describe()}`);
  }

  /** One line per host: its role, term, log and apply positions. */
  describe(): string {
    const lines: string[] = [];
    for (const h of this.hosts.values()) {
      const st = h.lastStatus();
      if (st === null) {
        lines.push(`  ${h.id}: down${h.retired ? " (retired)" : ""}`);
        continue;
      }
      lines.push(
        `  ${h.id}: ${st.role} term ${st.term} leader ${st.leaderId ?? "-"} last ${st.lastIndex} commit ${st.commitIndex} applied ${h.sm.current().index}` +
          ` config@${st.config.index} ${st.config.members.map((m) => (m.voter ? m.id : `${m.id}~`)).join(",")}${h.retired ? " (retired)" : ""}` +
          (st.role === "leader" ? ` progress ${st.progress.map((p) => `${p.id}:${p.state}/${p.matchIndex}/${p.nextIndex}`).join(" ")}` : ""),
      );
    }
    lines.push(`  network cuts: ${this.net.describeCuts()}; in flight ${this.net.inFlight()}; snapshot streams ${this.streams.length}`);
    return lines.join("\n");
  }

  private tick(): void {
    this.now++;
    this.stats.ticks++;
    this.checker.now = this.now;
    if (this.unreachable.length > 0) {
      const batch = this.unreachable;
      this.unreachable = [];
      for (const u of batch) {
        const h = this.hosts.get(u.from);
        if (h === undefined || !h.alive || h.incarnation !== u.incarnation) continue;
        h.core().reportUnreachable(u.to);
        h.pump();
      }
    }
    for (const msg of this.net.deliverDue(this.now)) {
      const h = this.hosts.get(msg.to);
      if (h === undefined || !h.alive || h.retired) continue;
      if (this.opts.trace !== null) this.trace(`deliver ${describeMessage(msg)}`);
      h.step(msg);
    }
    this.deliverStreams();
    for (const h of this.hosts.values()) h.flush();
    for (const h of this.hosts.values()) {
      if (!h.alive || h.retired) continue;
      if (!this.liveness && this.sched.chance(this.plan.clockSkew)) continue;
      h.tick();
    }
  }

  /** Routes a message leaving a host: MsgSnap goes over a snapshot stream, the rest over the network. */
  private send(from: NodeHost, msg: Message): void {
    this.checker.onSend(from, msg);
    if (msg.type === "MsgSnap") {
      const content = from.contentAt(msg.snapshot.index);
      if (content === undefined) {
        this.checker.fail(from.id, `sent MsgSnap at ${msg.snapshot.index}, which its state machine cannot produce (applied ${from.sm.current().index}, snapshot ${from.durableSnapshot().index})`);
      }
      if (content.term !== msg.snapshot.term) this.checker.fail(from.id, `MsgSnap at ${msg.snapshot.index} says term ${msg.snapshot.term}, the applied entry has term ${content.term}`);
      this.stats.snapshotsSent++;
      const dueAt = this.now + this.net.delayTicks() + this.sched.range(0, 5);
      this.streams.push({ from: from.id, fromIncarnation: from.incarnation, msg, content, dueAt });
      this.trace(`${from.id}: snapshot ${msg.snapshot.index}/${msg.snapshot.term} to ${msg.to} streaming until ${dueAt}`);
      return;
    }
    const outcome = this.net.send(msg, this.now);
    if (outcome === "blocked" && msg.type === "MsgApp" && this.sched.chance(0.5)) {
      this.unreachable.push({ from: from.id, incarnation: from.incarnation, to: msg.to });
    }
  }

  private deliverStreams(): void {
    if (this.streams.length === 0) return;
    const due = this.streams.filter((s) => s.dueAt <= this.now);
    if (due.length === 0) return;
    this.streams = this.streams.filter((s) => s.dueAt > this.now);
    for (const s of due) {
      const leader = this.hosts.get(s.from);
      if (leader === undefined || !leader.alive || leader.incarnation !== s.fromIncarnation) continue;
      const to = s.msg.to;
      const target = this.hosts.get(to);
      const lost = !this.liveness && this.sched.chance(this.net.faults.dropRate * 2 + 0.02);
      if (target === undefined || !target.alive || target.retired || !this.net.canReach(s.from, to) || !this.net.canReach(to, s.from) || lost) {
        this.stats.snapshotsFailed++;
        this.trace(`${s.from}: snapshot ${s.msg.snapshot.index} to ${to} failed`);
        leader.core().reportSnapshot(to, false);
        leader.pump();
        continue;
      }
      this.trace(`${to}: snapshot ${s.msg.snapshot.index}/${s.msg.snapshot.term} from ${s.from} received`);
      target.receiveSnapshot(s.content);
      target.step(s.msg);
      leader.core().reportSnapshot(to, true);
      leader.pump();
    }
  }

  /** Alive, non-retired hosts. */
  private running(): NodeHost[] {
    const out: NodeHost[] = [];
    for (const h of this.hosts.values()) if (h.alive && !h.retired) out.push(h);
    return out;
  }

  /** The alive leader with the highest term, if any. */
  private leader(): NodeHost | null {
    let best: NodeHost | null = null;
    let bestTerm = -1;
    for (const h of this.hosts.values()) {
      const st = h.lastStatus();
      if (st !== null && !h.retired && st.role === "leader" && st.term > bestTerm) {
        best = h;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** Where a client sends its request: usually the leader, sometimes anyone. */
  private target(): NodeHost | null {
    const l = this.leader();
    // A client with a stale view talks to a deposed leader that does not
    // know it yet: the case ReadIndex's heartbeat round exists for (§6.4).
    const stale = this.running().filter((h) => h !== l && h.lastStatus()?.role === "leader");
    if (stale.length > 0 && this.client.chance(0.5)) return this.client.pick(stale);
    if (l !== null && this.client.chance(0.95)) return l;
    // Without a known leader a real client backs off; try only now and then.
    if (l === null && !this.client.chance(0.2)) return null;
    const r = this.running();
    return r.length === 0 ? null : this.client.pick(r);
  }

  /** Highest term whose leader the trap has considered. */
  private trapTerm = 0;
  /** Scheduled crashes: host id -> tick. */
  private crashAt = new Map<NodeId, number>();

  private crashHost(h: NodeHost, why: string): void {
    this.trace(`fault: crash ${h.id}${why}`);
    h.crash(this.sched.chance(0.3));
    this.stats.crashes++;
  }

  private leaderTrap(): void {
    const rng = this.sched;
    for (const [id, at] of this.crashAt) {
      if (at > this.now) continue;
      this.crashAt.delete(id);
      const h = this.hosts.get(id);
      if (h !== undefined && h.alive && !h.retired) this.crashHost(h, " (trapped leader)");
    }
    const l = this.leader();
    const st = l === null ? null : l.lastStatus();
    if (l === null || st === null || st.term <= this.trapTerm) return;
    this.trapTerm = st.term;
    if (!rng.chance(this.plan.leaderTrap)) return;
    const others = [...this.hosts.keys()].filter((x) => x !== l.id);
    switch (rng.int(4)) {
      case 0:
        this.net.split([l.id], others);
        this.trace(`fault: trap: isolate new leader ${l.id}`);
        break;
      case 1:
        for (const o of others) if (rng.chance(0.7)) this.net.cutOneWay(l.id, o);
        this.trace(`fault: trap: cut most links from new leader ${l.id}: ${this.net.describeCuts()}`);
        break;
      case 2:
        this.crashHost(l, " (trap: new leader)");
        break;
      default:
        this.crashAt.set(l.id, this.now + rng.range(1, 6));
        break;
    }
  }

  private faults(): void {
    const rng = this.sched;
    const p = this.plan;
    this.leaderTrap();
    if (rng.chance(p.crash)) {
      const alive = this.running();
      const down = [...this.hosts.values()].filter((h) => !h.alive && !h.retired).length;
      if (alive.length > 0 && down < this.downMax) {
        // Leaders are the interesting victims (Figure 8 needs a leader dying mid-replication).
        const l = this.leader();
        const h = l !== null && l.alive && rng.chance(p.leaderBias) ? l : rng.pick(alive);
        this.crashHost(h, "");
      }
    }
    for (const h of this.hosts.values()) {
      if (!h.alive && !h.retired && h.incarnation > 0 && rng.chance(p.restart)) {
        this.trace(`fault: restart ${h.id}`);
        h.start();
        this.stats.restarts++;
      }
    }
    if (rng.chance(p.partition)) this.partition();
    if (rng.chance(p.heal)) {
      this.net.heal();
      this.trace("fault: heal network");
    }
    if (rng.chance(p.netChange)) {
      this.net.faults = { ...rng.pick(netProfiles) };
      this.trace(`fault: network ${JSON.stringify(this.net.faults)}`);
    }
    if (rng.chance(0.005)) {
      const h = rng.pick([...this.hosts.values()]);
      h.diskLatencyTicksMax = rng.pick([0, 1, 3, 8]);
      h.diskZeroRate = rng.pick([0.1, 0.3, 0.8]);
      this.trace(`fault: ${h.id} disk latency up to ${h.diskLatencyTicksMax} ticks`);
    }
    if (rng.chance(p.compact)) this.compact();
    if (rng.chance(p.membership)) this.changeMembership();
    if (rng.chance(p.transfer)) this.transfer();
  }

  private partition(): void {
    const rng = this.sched;
    const ids = [...this.hosts.keys()];
    const kind = rng.int(3);
    this.stats.partitions++;
    if (kind === 0) {
      const l = this.leader();
      const a = l !== null && rng.chance(this.plan.leaderBias) ? l.id : rng.pick(ids);
      this.net.split([a], ids.filter((x) => x !== a));
      this.trace(`fault: isolate ${a}`);
    } else if (kind === 1) {
      const shuffled = rng.shuffle([...ids]);
      const cut = rng.range(1, shuffled.length - 1);
      this.net.split(shuffled.slice(0, cut), shuffled.slice(cut));
      this.trace(`fault: split ${shuffled.slice(0, cut).join(",")} | ${shuffled.slice(cut).join(",")}`);
    } else {
      const n = rng.range(1, 3);
      for (let i = 0; i < n; i++) {
        const a = rng.pick(ids);
        const b = rng.pick(ids);
        if (a !== b) this.net.cutOneWay(a, b);
      }
      this.trace(`fault: one-way cuts ${this.net.describeCuts()}`);
    }
  }

  private compact(): void {
    const alive = this.running();
    if (alive.length === 0) return;
    const h = this.sched.pick(alive);
    const lo = h.durableSnapshot().index + 1;
    // The core's contract: compact only below compactionFloor() (never past what it saw applied,
    // and on a leader never what a follower still needs).
    const hi = Math.min(h.sm.current().index, h.core().compactionFloor() - 1);
    if (hi < lo) return;
    const at = this.sched.chance(0.5) ? hi : this.sched.range(lo, hi);
    if (h.compact(at)) this.stats.compactions++;
  }

  private changeMembership(): void {
    const l = this.leader();
    if (l === null || !l.alive) return;
    const rng = this.sched;
    const st = l.core().status();
    const voters = st.config.members.filter((m) => m.voter);
    const kind = rng.int(10);
    try {
      if (kind < 5 && this.spares.length > 0) {
        const id = this.spares.shift() as NodeId;
        const h = this.addHost(id, []);
        h.start();
        this.trace(`op: ${l.id} addMember ${id}`);
        l.core().addMember(id, h.url);
      } else {
        const candidates = st.config.members.filter((m) => !m.voter || voters.length > 2);
        if (candidates.length === 0) return;
        const m = rng.pick(candidates);
        this.trace(`op: ${l.id} removeMember ${m.id}`);
        l.core().removeMember(m.id);
      }
      this.stats.membershipChanges++;
    } catch (err) {
      if (!(err instanceof MembershipChangeError || err instanceof NotLeaderError || err instanceof ProposalDroppedError)) throw err;
      this.stats.membershipRefused++;
      this.trace(`op refused: ${(err as Error).message}`);
    }
    l.pump();
  }

  private transfer(): void {
    const l = this.leader();
    if (l === null) return;
    const voters = l.core().status().config.members.filter((m) => m.voter && m.id !== l.id);
    if (voters.length === 0) return;
    const to = this.sched.pick(voters).id;
    this.trace(`op: ${l.id} transferLeadership ${to}`);
    try {
      l.core().transferLeadership(to);
      this.stats.transfers++;
    } catch (err) {
      if (!(err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof MembershipChangeError)) throw err;
      this.trace(`op refused: ${(err as Error).message}`);
    }
    l.pump();
  }

  private clients(): void {
    const rng = this.client;
    if (rng.chance(this.plan.propose)) {
      const h = this.target();
      if (h !== null) this.propose(h, rng.chance(0.2) ? rng.range(2, 6) : 1);
    }
    if (rng.chance(this.plan.read)) {
      const h = this.target();
      if (h !== null) {
        const id = this.nextReadId++;
        try {
          h.core().readIndex(id);
          this.checker.beginRead(h.id, id);
          this.stats.reads++;
        } catch (err) {
          if (!(err instanceof NotLeaderError || err instanceof ProposalDroppedError)) throw err;
        }
        h.pump();
      }
    }
  }

  /** Proposes `count` fresh writes at `h`. @returns whether the core took them */
  private propose(h: NodeHost, count: number): boolean {
    const rng = this.client;
    const batch: Uint8Array[] = [];
    for (let i = 0; i < count; i++) batch.push(encodeProposal(this.nextProposalId++, rng.u32(), rng.pick([0, 0, 8, 40, 200])));
    let ok = false;
    try {
      const index = batch.length === 1 ? h.core().propose(batch[0] as Uint8Array) : h.core().proposeBatch(batch);
      this.stats.proposals += batch.length;
      if (this.opts.trace !== null) this.trace(`client: ${h.id} took ${batch.length} write(s) ending at ${index}`);
      ok = true;
    } catch (err) {
      if (!(err instanceof NotLeaderError || err instanceof ProposalDroppedError)) throw err;
      this.stats.proposalsRefused += batch.length;
    }
    h.pump();
    return ok;
  }

  private startLiveness(): void {
    this.liveness = true;
    this.trace("liveness: faults stop, network heals, every member restarts");
    this.net.heal();
    this.net.faults = { ...calmFaults };
    for (const h of this.hosts.values()) {
      h.diskLatencyTicksMax = Math.min(h.diskLatencyTicksMax, 2);
      if (!h.alive && !h.retired && h.incarnation > 0) {
        h.start();
        this.stats.restarts++;
      }
    }
    this.retireRemoved();
  }

  /** An operator stops members that a committed configuration removed (dissertation §4.2.3's disruptive servers). */
  private retireRemoved(): void {
    const cfg = this.checker.latestCommittedConfig();
    if (cfg === null) return;
    for (const h of this.hosts.values()) {
      if (h.retired || !this.checker.wasMember(h.id) || cfg.members.some((m) => m.id === h.id)) continue;
      this.trace(`${h.id}: retired (not in committed config @${cfg.index})`);
      h.crash();
      h.retired = true;
    }
  }

  private markerProposedAt = -1;

  /**
   * Converged: one leader whose last entry is of its term and committed, a
   * fresh write committed, and every member alive, following it and applied
   * up to its last index.
   */
  private converged(): boolean {
    const l = this.leader();
    if (l === null) return false;
    const st = l.lastStatus();
    if (st === null || st.commitIndex !== st.lastIndex || l.mirror.term(st.lastIndex) !== st.term) return false;
    if (this.markerProposedAt < 0 || this.now - this.markerProposedAt > 30) {
      if (this.propose(l, 1)) this.markerProposedAt = this.now;
      return false;
    }
    for (const m of st.config.members) {
      const h = this.hosts.get(m.id);
      if (h === undefined || !h.alive) return false;
      const s = h.lastStatus();
      if (s === null || s.term !== st.term || s.leaderId !== l.id || s.commitIndex !== st.lastIndex || h.sm.current().index !== st.lastIndex) return false;
    }
    const marker = this.nextProposalId - 1;
    return this.checker.proposalCommitted(marker);
  }

  private finish(): void {
    const l = this.leader() as NodeHost;
    this.checker.checkFinalLeader(l, l.lastStatus() as NonNullable<ReturnType<NodeHost["lastStatus"]>>);
    // Every read a live node accepted is answered: a ReadState (then served)
    // or a "read-failed" event. A few more ticks let the last rounds finish.
    const alive = (id: NodeId): boolean => this.hosts.get(id)?.alive === true;
    for (let i = 0; i < 50 && this.checker.pendingReads(alive).length > 0; i++) this.tick();
    const stuck = this.checker.pendingReads(alive);
    if (stuck.length > 0) {
      const r = stuck[0] as ReadTicket;
      this.checker.fail(r.nodeId, `read ${r.requestId} (began tick ${r.beganTick}) was never answered: no ReadState, no "read-failed" (${stuck.length} such reads)\n${this.describe()}`);
    }
    this.stats.elections = this.checker.stats.elections;
    this.stats.committed = this.checker.committedMax();
    this.trace(`converged after ${this.stats.livenessTicks} liveness ticks: leader ${l.id}\n${this.describe()}`);
  }
}
