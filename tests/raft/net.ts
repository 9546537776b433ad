/**
 * A tiny in-process network for scenario tests of the Raft core: Raft
 * instances backed by `MemoryLog`, a message queue with partitions and
 * one-way cuts, and a driver loop that persists, sends and advances Readys
 * exactly as the `Ready` contract says. Persistence can be held back per
 * node to model a crash before a write became durable.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decodeMembership, MemoryLog, Raft } from "../../src/raft/raft.ts";
import type {
  ConfigState, Entry, HardState, Member, Message, NodeId, RaftConfig, RaftEvent, ReadState, Ready,
} from "../../src/raft/types.ts";

/** Tunables a test may override. */
export type Tunables = Partial<Omit<RaftConfig, "id">>;

/** Defaults: small timeouts so scenarios are short. */
export const DEFAULTS: Omit<RaftConfig, "id"> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  randomSeed: 1,
  preVote: false,
  checkQuorum: false,
  maxInflightMsgs: 256,
  maxInflightBytes: 0,
  maxMsgBytes: 1 << 20,
  catchUpRoundsMax: 3,
};

/** One member: its core and what its driver made durable. */
export class TestNode {
  raft: Raft;
  /** The durable log. */
  readonly log: MemoryLog;
  /** Durable hard state. */
  hardState: HardState = { term: 0, votedFor: null, commitIndex: 0 };
  /** Durable config history after the log's compaction point. */
  configs: ConfigState[] = [];
  /** Entries applied to the "state machine", in order. */
  applied: Entry[] = [];
  /** Index the state machine was reset to by a snapshot (entries before it are not in `applied`). */
  appliedBase = 0;
  events: RaftEvent[] = [];
  readStates: ReadState[] = [];
  /** When false, Readys are taken but their writes wait for `persist()`. */
  autoPersist = true;
  /** Readys taken but not yet durable (autoPersist off). */
  pending: Ready[] = [];
  crashed = false;

  constructor(readonly net: Net, readonly config: RaftConfig, bootstrap: readonly Member[]) {
    this.log = new MemoryLog({ index: 0, term: 0, membership: bootstrap });
    this.raft = this.makeRaft();
  }

  makeRaft(): Raft {
    return new Raft({
      config: this.config,
      log: this.log,
      hardState: this.hardState,
      snapshot: this.log.snapshot,
      configs: this.configs,
      applied: this.appliedBase + this.applied.length,
    });
  }

  get id(): NodeId {
    return this.config.id;
  }

  /** Writes one Ready's durable part (step 1 of the contract). */
  private write(rd: Ready): void {
    if (rd.snapshot !== null) {
      this.log.reset(rd.snapshot);
      this.configs = [{ index: rd.snapshot.index, members: rd.snapshot.membership }];
    }
    if (rd.entries.length > 0) {
      const first = (rd.entries[0] as Entry).index;
      this.log.append(rd.entries);
      this.configs = this.configs.filter((c) => c.index < first);
      for (const e of rd.entries) if (e.type === "config") this.configs.push({ index: e.index, members: decodeMembership(e.data) });
    }
    if (rd.hardState !== null) {
      assert.ok(rd.hardState.term >= this.hardState.term, `${this.id}: durable term never decreases`);
      this.hardState = rd.hardState;
    }
  }

  /** Everything after the write: messages that waited, applying, reads, advance. */
  private finish(rd: Ready): void {
    for (const m of rd.persistedMessages) this.net.enqueue(m);
    if (rd.snapshot !== null) {
      this.appliedBase = rd.snapshot.index;
      this.applied = [];
    }
    for (const e of rd.committedEntries) {
      assert.equal(e.index, this.appliedBase + this.applied.length + 1, `${this.id}: entries applied in order`);
      assert.ok(e.index <= this.log.lastIndex() && this.log.term(e.index) === e.term, `${this.id}: applied entry ${e.index} is durable`);
      this.applied.push(e);
    }
    for (const rs of rd.readStates) this.readStates.push(rs);
    for (const ev of rd.events) this.events.push(ev);
    this.raft.advance(rd);
  }

  /** Runs one Ready through the driver steps. @returns false when there was none */
  handleReady(): boolean {
    if (this.crashed || !this.raft.hasReady()) return false;
    const rd = this.raft.ready();
    for (const m of rd.messages) this.net.enqueue(m);
    if (this.autoPersist) {
      this.write(rd);
      this.finish(rd);
    } else {
      this.pending.push(rd);
    }
    return true;
  }

  /** Makes the held-back Readys durable (autoPersist off). */
  persist(): void {
    const pending = this.pending;
    this.pending = [];
    for (const rd of pending) {
      this.write(rd);
      this.finish(rd);
    }
  }

  /** Loses everything not durable and stops. */
  crash(): void {
    this.crashed = true;
    this.pending = [];
  }

  /** Starts a new core from the durable state (the state machine keeps what it applied). */
  restart(autoPersist = true): void {
    this.crashed = false;
    this.autoPersist = autoPersist;
    this.raft = this.makeRaft();
  }
}

/** Ids n1..nN, all voters, with URLs. */
export function members(n: number): Member[] {
  return Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, url: `http://n${i + 1}`, voter: true }));
}

/** The network: nodes, an in-flight queue, and fault rules. */
export class Net {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, FIFO. */
  queue: Message[] = [];
  /** One-way cuts "from->to": messages on them are dropped. */
  readonly cuts = new Set<string>();
  /** Every message ever delivered (for assertions on traffic). */
  delivered: Message[] = [];
  /** Optional extra filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | null = null;
  /** Optional rewrite of a message in flight (after `filter`). */
  rewrite: ((m: Message) => Message) | null = null;

  /**
   * @param ids the members to create
   * @param bootstrap the initial membership every created node starts with
   */
  constructor(ids: readonly NodeId[], tunables: Tunables = {}, bootstrap: readonly Member[] = ids.map((id) => ({ id, url: `http://${id}`, voter: true }))) {
    for (const id of ids) this.add(id, tunables, bootstrap);
  }

  /** Creates a node (a joining one gets an empty bootstrap membership). */
  add(id: NodeId, tunables: Tunables = {}, bootstrap: readonly Member[] = []): TestNode {
    const seedSalt = this.nodes.size + 1;
    const config: RaftConfig = { ...DEFAULTS, randomSeed: 1000 + seedSalt, ...tunables, id };
    const node = new TestNode(this, config, bootstrap);
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    assert.ok(n !== undefined, `no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  enqueue(m: Message): void {
    this.queue.push(m);
  }

  /** Drops messages both ways between `a` and `b`. */
  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}->${b}`);
    this.cuts.add(`${b}->${a}`);
  }

  /** Drops messages from `a` to `b` only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}->${to}`);
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  /** Splits the nodes into groups that cannot talk to each other. */
  partition(...groups: NodeId[][]): void {
    for (const g of groups) for (const h of groups) {
      if (g === h) continue;
      for (const a of g) for (const b of h) this.cutOneWay(a, b);
    }
  }

  heal(): void {
    this.cuts.clear();
  }

  /** Delivers queued messages once (messages produced meanwhile wait). @returns how many were delivered */
  deliver(): number {
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (let m of batch) {
      if (this.cuts.has(`${m.from}->${m.to}`)) continue;
      if (this.filter !== null && !this.filter(m)) continue;
      if (this.rewrite !== null) m = this.rewrite(m);
      const target = this.nodes.get(m.to);
      if (target === undefined || target.crashed) continue;
      this.delivered.push(m);
      target.raft.step(m);
      n++;
    }
    return n;
  }

  /** Runs Readys and deliveries until nothing moves (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let i = 0; i < maxRounds; i++) {
      let moved = false;
      for (const node of this.nodes.values()) while (node.handleReady()) moved = true;
      if (this.queue.length > 0) {
        this.deliver();
        moved = true;
      }
      if (!moved) {
        this.checkSafety();
        return;
      }
    }
    assert.fail(`network did not stabilize within ${maxRounds} rounds`);
  }

  /** Ticks the given nodes (default: all live ones) `n` times, stabilizing after each tick. */
  tick(n = 1, ids: readonly NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) {
        const node = this.node(id);
        if (!node.crashed) node.raft.tick();
      }
      this.stabilize();
    }
  }

  /**
   * Stabilizes, then lets one heartbeat round run: a new commit index rides
   * on the next AppendEntries or heartbeat, so followers learn (and apply)
   * the last commit only then.
   */
  settle(): void {
    this.stabilize();
    const leader = this.leader();
    if (leader !== null) this.tick(this.node(leader).config.heartbeatTicks, [leader]);
  }

  /** Makes `id` campaign and runs the election to its end. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.stabilize();
  }

  /** The one leader among live nodes with the highest term, or null. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const [id, n] of this.nodes) {
      if (n.crashed) continue;
      const st = n.raft.status();
      if (st.role === "leader" && st.term > bestTerm) {
        best = id;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** State Machine Safety (Figure 3): no two nodes applied different entries at one index. */
  checkSafety(): void {
    const seen = new Map<number, { term: number; by: NodeId }>();
    for (const [id, n] of this.nodes) {
      n.applied.forEach((e) => {
        const other = seen.get(e.index);
        if (other === undefined) seen.set(e.index, { term: e.term, by: id });
        else assert.equal(e.term, other.term, `State Machine Safety: ${id} and ${other.by} applied different entries at ${e.index}`);
      });
    }
  }

  /** Proposes `data` strings on `id`, returns the first index. */
  propose(id: NodeId, ...data: string[]): number {
    return this.raft(id).proposeBatch(data.map((d) => new TextEncoder().encode(d)));
  }
}

/** The user data applied by a node, as strings. */
export function appliedData(node: TestNode): string[] {
  return node.applied.filter((e) => e.type === "normal").map((e) => new TextDecoder().decode(e.data));
}

/** Events of one type seen by a node. */
export function eventsOf<T extends RaftEvent["type"]>(node: TestNode, type: T): Extract<RaftEvent, { type: T }>[] {
  return node.events.filter((e): e is Extract<RaftEvent, { type: T }> => e.type === type);
}
