/**
 * `RaftDriver`: the in-thread implementation behind `RaftNode` (see
 * `./raft-node-handle.ts`), run either on the caller's thread or in a worker
 * (`./worker-main.ts`). It puts together the pure
 * core (`src/raft`), the durable storage (`src/storage`), the peer transport
 * (`src/transport`) and the user's state machine, behind the contract in
 * `./types.ts`.
 *
 * The node owns: the data-directory lock, ticking the core, the Ready loop
 * (`./ready-loop.ts`), proposals and read barriers waiting for their
 * entries, membership and leadership-transfer calls, snapshots (built-in
 * ones for state machines with `snapshot`/`restore`, the seed's
 * `beginSnapshot`/`endSnapshot` otherwise), and the HTTP server that peers
 * and the user's routes share.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { Hono } from "hono";
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import type { HttpClient, HttpServer, RuntimeAdapter, DirLock } from "../../adapters/types.ts";
import {
  ClosedError,
  DiskSpaceError,
  InvalidArgumentError,
  MembershipChangeError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  TimeoutError,
} from "../errors.ts";
import { assert } from "../raft/assert.ts";
import { decodeMembership } from "../raft/membership-codec.ts";
import { Raft } from "../raft/raft.ts";
import type { ConfigState, Entry, Member, MsgSnap, NodeId, RaftEvent, Ready, SnapshotMeta } from "../raft/types.ts";
import { MembershipFile } from "../storage/membership-file.ts";
import { SegmentedLog } from "../storage/segmented-log.ts";
import { StateFile } from "../storage/state-file.ts";
import { peerRoutes } from "../transport/routes.ts";
import { checkMemberUrl, checkNodeId, type NodeIdentity, readIdentity, writeIdentity } from "./identity.ts";
import { memberTls, type MemberTls } from "./member-tls.ts";
import { NodeCounters } from "./metrics.ts";
import { Peers } from "./peers.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { SnapshotReceiver } from "./snapshot-receiver.ts";
import { SnapshotStore, type StoredSnapshot } from "./snapshot-store.ts";
import { clusterIdFor, joinCluster, nodeRoutes } from "./cluster-routes.ts";
import type { MemberStatus, NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, RaftNodeOptions, StateMachine, TlsOptions } from "./types.ts";

/**
 * Prepares `dataDir` for a member of a static multi-member cluster (the
 * alternative to joining): saves its identity and the initial membership.
 * Every member's directory is prepared with the same `members` list, from
 * which they all derive the same cluster id. Then `RaftNode.start({ dataDir,
 * stateMachine })` starts it.
 *
 * @throws InvalidArgumentError when the directory already holds a member, or the list is invalid
 */
export async function bootstrapDataDir(
  dataDir: string,
  opts: { readonly id: NodeId; readonly host: string; readonly port: number; readonly members: readonly Member[]; readonly runtime?: RuntimeAdapter },
): Promise<void> {
  checkNodeId(opts.id);
  const seen = new Set<string>();
  for (const m of opts.members) {
    checkNodeId(m.id);
    checkMemberUrl(m.url);
    if (seen.has(m.id)) throw new InvalidArgumentError(`Member ${m.id} is listed twice`);
    seen.add(m.id);
  }
  const self = opts.members.find((m) => m.id === opts.id);
  if (self === undefined) throw new InvalidArgumentError(`The member list does not include this member (${opts.id})`);
  const dir = path.resolve(dataDir);
  const lock = (opts.runtime ?? defaultRuntime).lockDir(dir);
  try {
    if ((await readIdentity(dir)) !== null) throw new InvalidArgumentError(`Data directory ${dir} already holds a member; use an empty directory`);
    const log = await SegmentedLog.open(path.join(dir, "log"));
    try {
      if (log.lastIndex() !== 0 || log.snapshotMeta().membership.length !== 0) throw new InvalidArgumentError(`Data directory ${dir} already holds a log; use an empty directory`);
      const members = opts.members.map((m) => ({ id: m.id, url: m.url, voter: true }));
      await log.installSnapshot({ index: 0, term: 0, membership: members });
      const membership = await MembershipFile.open(dir);
      await membership.write({ index: 0, members });
      await membership.close();
    } finally {
      await log.close();
    }
    await writeIdentity(dir, { id: opts.id, url: self.url, host: opts.host, port: opts.port, clusterId: clusterIdFor(opts.members.map((m) => ({ id: m.id, url: m.url, voter: true })), "") });
  } finally {
    lock.release();
  }
}

/** A call waiting for its entry to be applied. */
interface _Proposal {
  readonly term: number;
  readonly startMs: number;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
}

/** A call waiting for a condition on the node's state (membership, leadership). */
interface _Waiter {
  readonly check: () => boolean;
  /** An event that makes the wait fail, as an error; null otherwise. */
  readonly failOn: (ev: RaftEvent) => Error | null;
  readonly deadlineMs: number;
  readonly what: string;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

interface _ReadWaiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

const _DEFAULTS = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotLogBytes: 64 * 1024 * 1024,
  diskFreeBytesMin: 64 * 1024 * 1024,
  proposeTimeoutMs: 10_000,
  maxRpcBytes: 64 * 1024 * 1024,
  membershipTimeoutMs: 120_000,
};

/** The result of handing one batch of entries to a state machine on another thread. */
export interface ApplyBatchResult {
  /** results[i] is what apply returned for the i-th entry handed over; null when the other thread settled its proposals itself. */
  readonly results: readonly unknown[] | null;
  /** errors[i] is what apply threw for the i-th entry (null: no entry threw). */
  readonly errors: readonly (Error | null)[] | null;
}

/** What the worker host changes in a driver; the caller-thread mode uses none. */
export interface DriverHooks {
  /** The data-directory lock, already held by the caller's thread (a worker never takes it: flock belongs to the process). */
  readonly lock?: DirLock;
  /**
   * Applies a batch of committed normal entries at once (one message to the
   * state machine's thread per batch, not per entry), instead of calling
   * `stateMachine.apply` per entry. `lastIndex` is the batch's last index,
   * internal entries included. May resolve before the other thread has
   * applied the batch, as long as that thread handles everything it is sent
   * later (read barriers, snapshots, routes) only after it.
   */
  readonly applyBatch?: (entries: readonly Entry[], lastIndex: number) => Promise<ApplyBatchResult>;
}

/** A running member of a Raft cluster, on the thread that started it (see the module comment). */
export class RaftDriver implements RaftNodeApi {
  readonly id: NodeId;
  readonly url: string;
  readonly clusterId: string;

  readonly #opts: RaftNodeOptions;
  readonly #rt: RuntimeAdapter;
  readonly #lock: DirLock;
  readonly #sm: StateMachine;
  readonly #log: SegmentedLog;
  readonly #state: StateFile;
  readonly #membership: MembershipFile;
  readonly #snapshots: SnapshotStore;
  readonly #counters = new NodeCounters();
  readonly #logger: (line: string) => void;
  readonly #http: HttpClient;
  readonly #tickMs: number;
  readonly #proposeTimeoutMs: number;
  #raft!: Raft;
  #loop!: ReadyLoop;
  #peers!: Peers;
  #receiver!: SnapshotReceiver;
  #server: HttpServer | null = null;
  #tls: MemberTls | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** Invariant: #applied <= the core's commit index; the state machine holds every normal entry <= #applied. */
  #applied: number;
  #serving = false;
  #closed = false;
  #fatal: Error | null = null;
  #diskLow = false;
  #ticks = 0;
  #bytesSinceSnapshot = 0;
  #snapshotting = false;

  #proposeBuffer: { data: Uint8Array; resolve: (v: unknown) => void; reject: (e: Error) => void; startMs: number; onIndex: ((index: number, term: number) => void) | null }[] = [];
  readonly #proposals = new Map<number, _Proposal>();
  #readBatch: { id: number; waiters: { resolve: () => void; reject: (e: Error) => void }[] } | null = null;
  #readRequestId = 0;
  readonly #readsInFlight = new Map<number, { startMs: number; waiters: { resolve: () => void; reject: (e: Error) => void }[] }>();
  #appliedWaiters: _ReadWaiter[] = [];
  readonly #waiters = new Set<_Waiter>();
  readonly #listeners = new Set<(ev: NodeEvent) => void>();
  readonly #transfers = new Map<NodeId, { sentBytes: number; totalBytes: number | null; index: number }>();
  #lastLeader: NodeId | null = null;
  readonly #applyBatch: NonNullable<DriverHooks["applyBatch"]> | null;

  private constructor(
    opts: RaftNodeOptions,
    rt: RuntimeAdapter,
    lock: DirLock,
    identity: NodeIdentity,
    storage: { log: SegmentedLog; state: StateFile; membership: MembershipFile; snapshots: SnapshotStore },
    applied: number,
    hooks: DriverHooks,
  ) {
    this.#applyBatch = hooks.applyBatch ?? null;
    this.#opts = opts;
    this.#rt = rt;
    this.#lock = lock;
    this.id = identity.id;
    this.url = identity.url;
    this.clusterId = identity.clusterId;
    this.#sm = opts.stateMachine;
    this.#log = storage.log;
    this.#state = storage.state;
    this.#membership = storage.membership;
    this.#snapshots = storage.snapshots;
    this.#applied = applied;
    this.#logger = opts.logger ?? ((line) => process.stderr.write(`${line}\n`));
    this.#http = rt.httpClient();
    this.#tickMs = opts.tickMs ?? _DEFAULTS.tickMs;
    this.#proposeTimeoutMs = opts.proposeTimeoutMs ?? _DEFAULTS.proposeTimeoutMs;
  }

  /**
   * Starts a member: locks the data directory, recovers its state, replays
   * committed entries into the state machine, serves peer RPCs (and
   * `opts.routes`) and joins or bootstraps a cluster when asked.
   *
   * @throws LockedError when another process holds the data directory
   * @throws StorageCorruptError when a file in it is damaged (file and offset named)
   * @throws InvalidArgumentError for bad options
   */
  static async start(opts: RaftNodeOptions, hooks: DriverHooks = {}): Promise<RaftDriver> {
    const tls = memberTls((opts as { runtime?: RuntimeAdapter }).runtime ?? defaultRuntime, opts.tls, opts.logger ?? ((line) => process.stderr.write(`${line}\n`)));
    const rt = tls.runtime;
    const dataDir = path.resolve(opts.dataDir);
    const lock = hooks.lock ?? rt.lockDir(dataDir);
    let node: RaftDriver | null = null;
    let server: HttpServer | null = null;
    const opened: { close(): Promise<void> }[] = [];
    try {
      const saved = await readIdentity(dataDir);
      if (saved !== null && opts.id !== undefined && opts.id !== saved.id) {
        throw new InvalidArgumentError(`Data directory ${dataDir} belongs to member ${saved.id}, not ${opts.id}; use another directory`);
      }
      const id = saved?.id ?? opts.id;
      if (id === undefined) throw new InvalidArgumentError(`Data directory ${dataDir} holds no member yet: give an id (and host, port) to start one`);
      checkNodeId(id);
      const host = opts.host ?? saved?.host ?? "127.0.0.1";
      const port = opts.port ?? saved?.port;
      if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new InvalidArgumentError(`Port ${String(port)} is invalid: give a port in 0-65535`);
      }
      if (opts.advertiseUrl !== undefined) checkMemberUrl(opts.advertiseUrl);

      const state = await StateFile.open(dataDir);
      opened.push(state);
      const hs = state.read();
      const logger = opts.logger ?? ((line: string) => process.stderr.write(`${line}\n`));
      const log = await SegmentedLog.open(path.join(dataDir, "log"), { commitIndex: hs.commitIndex, logger, ...(opts.segmentBytesMax === undefined ? {} : { segmentBytesMax: opts.segmentBytesMax }) });
      opened.push(log);
      const membership = await MembershipFile.open(dataDir);
      opened.push(membership);
      const snapshots = await SnapshotStore.open(dataDir);

      // The cluster: saved, or bootstrapped now, or learned from a member we join.
      let clusterId = saved?.clusterId ?? null;
      let joinInfo: Awaited<ReturnType<typeof joinCluster.info>> | null = null;
      let bootstrapMembers: Member[] | null = null;
      const fresh = saved === null && log.lastIndex() === 0 && log.snapshotMeta().membership.length === 0;
      if (fresh && opts.bootstrap !== undefined) {
        const members: Member[] = opts.bootstrap === true ? [] : opts.bootstrap.map((m) => ({ ...m }));
        if (opts.bootstrap !== true && !members.some((m) => m.id === id)) {
          throw new InvalidArgumentError(`The bootstrap member list does not include this member (${id})`);
        }
        clusterId = opts.bootstrap === true ? clusterIdFor([{ id, url: "", voter: true }], crypto.randomUUID()) : clusterIdFor(members, "");
        bootstrapMembers = members;
      } else if (fresh && opts.join !== undefined && opts.join.length > 0) {
        joinInfo = await joinCluster.info(rt, opts.join, opts.secret ?? null, logger);
        clusterId = joinInfo.clusterId;
      } else if (clusterId === null) {
        throw new InvalidArgumentError(`Data directory ${dataDir} holds no cluster: start with bootstrap (a new cluster) or join (an existing one)`);
      }

      // Serve first, so port 0 resolves to the real port before the URL is fixed.
      const app = new Hono();
      let nodeRef: RaftDriver | null = null;
      const getNode = () => {
        if (nodeRef === null) throw new RaftError("Node is starting");
        return nodeRef;
      };
      // Hono refuses routes added after its first request, and peers may call as soon as the port is
      // bound: a front app answers 503 until every route is on `app` (a race measured in worker mode).
      let routed = false;
      const front = new Hono();
      front.all("*", (c) => routed ? app.fetch(c.req.raw, c.env) : c.text("Member is starting; retry shortly\n", 503, { "Retry-After": "1" }));
      server = await rt.serve(front, host, port);
      const url = opts.advertiseUrl ?? saved?.url ?? `${tls.scheme}://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
      tls.checkUrl(url, dataDir);
      const identity: NodeIdentity = { id, url, host, port: saved?.port ?? (port === 0 ? server.port : port), clusterId: clusterId! };
      if (saved === null) await writeIdentity(dataDir, identity);

      if (bootstrapMembers !== null) {
        const members = bootstrapMembers.length === 0 ? [{ id, url, voter: true }] : bootstrapMembers;
        await log.installSnapshot({ index: 0, term: 0, membership: members });
        await membership.write({ index: 0, members });
      }

      // The state machine: restore a snapshot if the log no longer reaches back to where it stands.
      let applied = await opts.stateMachine.lastApplied();
      const compacted = log.snapshotMeta().index;
      if (applied < compacted) {
        const snap = snapshots.latest();
        if (snap === null || snap.meta.index < compacted || opts.stateMachine.restore === undefined) {
          throw new InvalidArgumentError(
            `The state machine has applied up to ${applied}, but the log starts after ${compacted} and ` +
              (opts.stateMachine.restore === undefined ? "the state machine has no restore()" : "no snapshot covering it is stored") +
              `: the state machine's own data is behind what was compacted; restore it, or remove this member's data directory and re-add it`,
          );
        }
        await opts.stateMachine.restore(snap.meta.index, snapshots.read(snap));
        applied = snap.meta.index;
        logger(`restored the state machine from snapshot ${snap.meta.index}`);
      }

      node = new RaftDriver(opts, rt, lock, identity, { log, state, membership, snapshots }, applied, hooks);
      node.#server = server;
      node.#tls = tls;
      node.#init(hs, joinInfo);
      nodeRef = node;
      nodeRoutes(app, { getNode, secret: opts.secret ?? null });
      app.route("/", peerRoutes({
        clusterId: identity.clusterId,
        nodeId: id,
        secret: opts.secret ?? null,
        maxBodyBytes: opts.maxRpcBytes ?? _DEFAULTS.maxRpcBytes,
        onMessages: (_from, msgs) => getNode().#onMessages(msgs),
        snapshotSink: {
          begin: (f, s, m) => getNode().#receiver.begin(f, s, m),
          receivedOffset: (f, s) => getNode().#receiver.receivedOffset(f, s),
          write: (f, s, o, c) => getNode().#receiver.write(f, s, o, c),
          finish: (f, s, t) => getNode().#receiver.finish(f, s, t),
        },
        onRefused: (r) => {
          getNode().#counters.rpcsRefused++;
          getNode().#logger(`refused peer request ${r.path} from ${r.from ?? "unknown"}: ${r.status} ${r.reason}`);
        },
      }));
      if (opts.routes !== undefined) {
        const user = new Hono();
        user.use("*", async (c, next) => {
          if (!getNode().#serving) return c.text("Member is starting (replaying its log); retry shortly\n", 503, { "Retry-After": "1" });
          await next();
        });
        opts.routes(user, node);
        app.route("/", user);
      }
      routed = true;
      await node.#replay(hs.commitIndex);
      if (joinInfo !== null) await joinCluster.requestAdd(rt, joinInfo, id, url, opts.secret ?? null, logger, () => node!.#closed);
      return node;
    } catch (err) {
      if (node !== null) {
        await node.close().catch(() => {});
      } else {
        if (server !== null) await server.close().catch(() => {});
        for (const f of opened.reverse()) await f.close().catch(() => {});
        lock.release();
      }
      throw err;
    }
  }

  #init(hs: ReturnType<StateFile["read"]>, joinInfo: { members: readonly Member[] } | null): void {
    const o = this.#opts;
    const snapshot = this.#log.snapshotMeta();
    const configs: ConfigState[] = this.#log.configs().map((c) => ({ index: c.index, members: decodeMembership(c.data) }));
    this.#raft = new Raft({
      config: {
        id: this.id,
        electionTicks: o.electionTicks ?? _DEFAULTS.electionTicks,
        heartbeatTicks: o.heartbeatTicks ?? _DEFAULTS.heartbeatTicks,
        randomSeed: (crypto.getRandomValues(new Uint32Array(1))[0]! >>> 0) || 1,
        preVote: true,
        checkQuorum: true,
        maxInflightMsgs: 256,
        maxInflightBytes: 32 * 1024 * 1024,
        maxMsgBytes: 1024 * 1024,
        catchUpRoundsMax: 10,
      },
      log: this.#log,
      hardState: hs,
      snapshot,
      configs,
      applied: Math.max(this.#applied, snapshot.index),
    });
    this.#applied = Math.max(this.#applied, snapshot.index);
    this.#peers = new Peers({
      nodeId: this.id,
      clusterId: this.clusterId,
      secret: o.secret ?? null,
      http: this.#http,
      requestTimeoutMs: Math.max(1000, this.#tickMs * (o.electionTicks ?? _DEFAULTS.electionTicks)),
      counters: this.#counters,
      onUnreachable: (peer) => {
        this.#raft.reportUnreachable(peer);
        this.#loop.kick();
      },
      logger: this.#logger,
    });
    for (const m of joinInfo?.members ?? []) this.#peers.setUrl(m.id, m.url);
    this.#updatePeers(this.#raft.status().config);
    this.#receiver = new SnapshotReceiver(this.#snapshots, this.#counters, (msg) => {
      this.#raft.step(msg);
      this.#loop.kick();
    });
    this.#loop = new ReadyLoop({
      raft: this.#raft,
      log: this.#log,
      state: this.#state,
      membership: this.#membership,
      counters: this.#counters,
      beforeTurn: () => this.#flushProposals(),
      onReady: (rd) => this.#onReady(rd),
      send: (msgs) => this.#peers.send(msgs, (m) => this.#sendSnapshot(m)),
      restoreSnapshot: (meta) => this.#restoreSnapshot(meta),
      apply: (entries) => this.#apply(entries),
      onAppended: (bytes) => this.#onAppended(bytes),
      afterTurn: () => this.#checkWaiters(),
      onFatal: (err) => this.#onFatal(err),
    }, hs);
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    // A single voter has nobody to wait for: campaign at once rather than after an election timeout.
    const voters = this.#raft.status().config.members.filter((m) => m.voter);
    if (voters.length === 1 && voters[0]!.id === this.id) this.#raft.campaign();
    this.#loop.kick();
  }

  /** Replays committed entries into the state machine before serving user routes. */
  async #replay(commitIndex: number): Promise<void> {
    if (this.#applied < commitIndex) {
      this.#logger(`replaying committed entries ${this.#applied + 1}..${commitIndex} into the state machine`);
      await new Promise<void>((resolve, reject) => {
        this.#appliedWaiters.push({ index: commitIndex, resolve, reject });
        this.#loop.kick();
      });
    }
    this.#serving = true;
  }

  // ---- Public API ----

  /**
   * `onIndex` (worker mode) learns the index and term the proposal was
   * appended at, so the caller's thread can resolve it itself when it
   * applies that entry.
   */
  propose(data: Uint8Array, onIndex: ((index: number, term: number) => void) | null = null): Promise<unknown> {
    const err = this.#refuseWrite();
    if (err !== null) return Promise.reject(err);
    return new Promise((resolve, reject) => {
      this.#proposeBuffer.push({ data, resolve, reject, startMs: performance.now(), onIndex });
      this.#counters.proposals++;
      if (this.#proposeBuffer.length === 1) this.#loop.kick();
    });
  }

  readBarrier(): Promise<void> {
    if (this.#fatal !== null || this.#closed) return Promise.reject(this.#fatal ?? new ClosedError("The node is closed"));
    const st = this.#raft.status();
    if (st.role !== "leader") return Promise.reject(this.#notLeader());
    return new Promise((resolve, reject) => {
      if (this.#readBatch === null) {
        this.#readBatch = { id: ++this.#readRequestId, waiters: [] };
        this.#loop.kick();
      }
      this.#readBatch.waiters.push({ resolve, reject });
    });
  }

  async addMember(id: NodeId, url: string): Promise<void> {
    checkNodeId(id);
    checkMemberUrl(url);
    this.#checkOpen();
    if (this.#raft.status().role !== "leader") throw this.#notLeader();
    const existing = this.#raft.status().config.members.find((m) => m.id === id);
    if (existing !== undefined && existing.url === url && existing.voter) return;
    if (existing !== undefined && existing.url !== url) {
      throw new MembershipChangeError(`Member ${id} already exists with URL ${existing.url}; remove it first to change its URL`);
    }
    this.#peers.setUrl(id, url);
    if (existing === undefined) this.#raft.addMember(id, url);
    else if (!existing.voter) throw new MembershipChangeError(`Member ${id} is already a learner being caught up; wait for its promotion`);
    this.#loop.kick();
    await this.#waitFor(`member ${id} to be caught up and promoted to voter`, () => {
      const st = this.#raft.status();
      const m = st.config.members.find((x) => x.id === id);
      return m !== undefined && m.voter && st.commitIndex >= st.config.index;
    }, (ev) => ev.type === "catch-up-failed" && ev.id === id ? new MembershipChangeError(`Member ${id} could not be added: ${ev.reason}`) : null, _DEFAULTS.membershipTimeoutMs);
  }

  async removeMember(id: NodeId): Promise<void> {
    this.#checkOpen();
    const st = this.#raft.status();
    // Only the leader's view of the membership counts: a follower's may be stale.
    if (st.role !== "leader") throw this.#notLeader();
    if (!st.config.members.some((m) => m.id === id)) return;
    this.#raft.removeMember(id);
    this.#loop.kick();
    await this.#waitFor(`the removal of member ${id} to commit`, () => {
      const s = this.#raft.status();
      return !s.config.members.some((m) => m.id === id) && (s.commitIndex >= s.config.index || id === this.id);
    }, () => null, _DEFAULTS.membershipTimeoutMs);
  }

  async transferLeadership(to?: NodeId): Promise<void> {
    this.#checkOpen();
    const st = this.#raft.status();
    if (st.role !== "leader") throw this.#notLeader();
    let target = to;
    if (target === undefined) {
      let best = -1;
      for (const p of st.progress) {
        const m = st.config.members.find((x) => x.id === p.id);
        if (p.id !== this.id && m?.voter && p.matchIndex > best) {
          best = p.matchIndex;
          target = p.id;
        }
      }
      if (target === undefined) throw new MembershipChangeError("There is no other voter to transfer leadership to");
    }
    if (target === this.id) return;
    const dest = target;
    this.#raft.transferLeadership(dest);
    this.#loop.kick();
    await this.#waitFor(`member ${dest} to take over leadership`, () => this.#raft.status().leaderId === dest, (ev) =>
      ev.type === "transfer-aborted" && ev.to === dest ? new RaftError(`Leadership transfer to ${dest} aborted: ${ev.reason}`) : null, this.#tickMs * 40);
  }

  async beginSnapshot(): Promise<number> {
    this.#checkOpen();
    await this.#log.beginSnapshot();
    // The state machine's own last id: internal entries after it never reach it.
    return Math.min(await this.#sm.lastApplied(), this.#applied);
  }

  async endSnapshot(marker: number): Promise<void> {
    this.#checkOpen();
    if (!Number.isSafeInteger(marker) || marker < 0) throw new InvalidArgumentError(`endSnapshot(${marker}): the marker must be an index returned by beginSnapshot()`);
    await this.#compact(marker);
  }

  status(): NodeStatus {
    const st = this.#raft.status();
    const leaderId = st.leaderId;
    const leaderUrl = leaderId === null ? null : leaderId === this.id ? this.url : (st.config.members.find((m) => m.id === leaderId)?.url ?? this.#peers.url(leaderId) ?? null);
    const members: MemberStatus[] = st.config.members.map((m) => {
      const p = st.progress.find((x) => x.id === m.id);
      const t = this.#transfers.get(m.id);
      return {
        id: m.id,
        url: m.url,
        voter: m.voter,
        matchIndex: p?.matchIndex ?? null,
        lag: p === undefined ? null : Math.max(0, st.lastIndex - p.matchIndex),
        reachable: p === undefined ? null : m.id === this.id ? true : p.recentActive,
        snapshotTransfer: t === undefined ? null : { sentBytes: t.sentBytes, totalBytes: t.totalBytes },
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
      firstIndex: this.#log.firstIndex(),
      members,
      pendingConfigChange: st.config.index > st.commitIndex,
      runtime: this.#rt.name,
    };
  }

  metrics(): NodeMetrics {
    return this.#counters.snapshot();
  }

  on(listener: (event: NodeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the TLS certificates for new connections (see member-tls.ts). @throws InvalidArgumentError */
  reloadTls(tls: TlsOptions): Promise<void> {
    return this.#tls === null ? Promise.reject(new InvalidArgumentError("The member is still starting")) : this.#tls.reload(tls);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#rejectAll(new ClosedError("The node was closed"));
    if (this.#server !== null) await this.#server.close().catch(() => {});
    if (this.#fatal === null) {
      await this.#loop.idle();
      this.#loop.stop();
      await this.#loop.flushCommitIndex(true).catch(() => {});
    } else {
      this.#loop.stop();
    }
    this.#peers.close();
    this.#http.close();
    await this.#receiver.close().catch(() => {});
    await this.#log.close().catch(() => {});
    await this.#state.close().catch(() => {});
    await this.#membership.close().catch(() => {});
    this.#lock.release();
    this.#emit({ type: "stopped", error: this.#fatal });
  }

  // ---- The loop's callbacks ----

  #onMessages(msgs: readonly import("../raft/types.ts").Message[]): void {
    if (this.#closed) return;
    this.#counters.rpcsReceived += msgs.length;
    for (const m of msgs) this.#raft.step(m);
    this.#loop.kick();
  }

  #tick(): void {
    if (this.#closed || this.#fatal !== null) return;
    this.#raft.tick();
    this.#ticks++;
    const now = performance.now();
    // Proposals not applied in time: the outcome is unknown (the entry may still commit).
    for (const [index, p] of this.#proposals) {
      if (now - p.startMs < this.#proposeTimeoutMs) break;
      this.#proposals.delete(index);
      this.#counters.proposalsFailed++;
      p.reject(new ProposalDroppedError(`Proposal at index ${index} was not applied within ${this.#proposeTimeoutMs} ms`, "unknown"));
    }
    for (const [id, r] of this.#readsInFlight) {
      if (now - r.startMs < this.#proposeTimeoutMs) break;
      this.#readsInFlight.delete(id);
      for (const w of r.waiters) w.reject(new TimeoutError(`Read barrier not confirmed within ${this.#proposeTimeoutMs} ms (is a quorum reachable?)`));
    }
    if (this.#ticks % 10 === 0) {
      this.#checkDisk();
      void this.#loop.flushCommitIndex(false);
    }
    this.#checkWaiters();
    this.#loop.kick();
  }

  #flushProposals(): void {
    if (this.#proposeBuffer.length > 0) {
      const batch = this.#proposeBuffer;
      this.#proposeBuffer = [];
      try {
        const first = this.#raft.proposeBatch(batch.map((p) => p.data));
        const term = this.#raft.status().term;
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!;
          this.#proposals.set(first + i, { term, startMs: p.startMs, resolve: p.resolve, reject: p.reject });
          p.onIndex?.(first + i, term);
        }
      } catch (err) {
        const e = err instanceof NotLeaderError ? this.#notLeader() : err as Error;
        for (const p of batch) p.reject(e);
        this.#counters.proposalsFailed += batch.length;
      }
    }
    if (this.#readBatch !== null) {
      const batch = this.#readBatch;
      this.#readBatch = null;
      try {
        this.#raft.readIndex(batch.id);
        this.#readsInFlight.set(batch.id, { startMs: performance.now(), waiters: batch.waiters });
      } catch (err) {
        const e = err instanceof NotLeaderError ? this.#notLeader() : err as Error;
        for (const w of batch.waiters) w.reject(e);
      }
    }
  }

  #onReady(rd: Ready): void {
    for (const ev of rd.events) this.#onRaftEvent(ev);
    for (const rs of rd.readStates) {
      const r = this.#readsInFlight.get(rs.requestId);
      if (r === undefined) continue;
      this.#readsInFlight.delete(rs.requestId);
      for (const w of r.waiters) this.#appliedWaiters.push({ index: rs.index, resolve: w.resolve, reject: w.reject });
    }
    if (rd.config !== null) this.#updatePeers(rd.config);
    if (rd.readStates.length > 0) this.#checkApplied();
  }

  #onRaftEvent(ev: RaftEvent): void {
    for (const w of [...this.#waiters]) {
      const e = w.failOn(ev);
      if (e !== null) {
        this.#waiters.delete(w);
        w.reject(e);
      }
    }
    switch (ev.type) {
      case "role": {
        const learner = this.#raft.status().isLearner;
        if (ev.leaderId !== this.#lastLeader) {
          this.#lastLeader = ev.leaderId;
          if (ev.leaderId !== null) this.#counters.leaderChanges++;
        }
        this.#logger(`role ${learner ? "learner" : ev.role}, term ${ev.term}, leader ${ev.leaderId ?? "unknown"}`);
        if (ev.role !== "leader") {
          // Reads waiting for a leadership confirmation will never get one here.
          for (const [id, r] of this.#readsInFlight) {
            this.#readsInFlight.delete(id);
            for (const w of r.waiters) w.reject(this.#notLeader());
          }
        }
        this.#emit({ type: "role", role: learner ? "learner" : ev.role, term: ev.term, leader: ev.leaderId });
        break;
      }
      case "membership":
        this.#logger(`membership (from index ${ev.config.index}): ${ev.config.members.map((m) => `${m.id}${m.voter ? "" : " (learner)"} ${m.url}`).join(", ")}`);
        this.#emit({ type: "membership", members: ev.config.members });
        break;
      case "catch-up":
        this.#logger(`catching up ${ev.id}: round ${ev.round}, ${ev.lag} entries behind`);
        this.#emit({ type: "catch-up", id: ev.id, round: ev.round, lag: ev.lag });
        break;
      case "catch-up-failed":
        this.#logger(`gave up catching up ${ev.id}: ${ev.reason}`);
        this.#emit({ type: "catch-up-failed", id: ev.id, reason: ev.reason });
        break;
      case "transfer-aborted":
        this.#logger(`leadership transfer to ${ev.to} aborted: ${ev.reason}`);
        break;
      case "read-failed": {
        const r = this.#readsInFlight.get(ev.requestId);
        if (r !== undefined) {
          this.#readsInFlight.delete(ev.requestId);
          for (const w of r.waiters) w.reject(new NotLeaderError(null, null));
        }
        break;
      }
      case "removed":
        this.#logger("this member was removed from the cluster");
        this.#emit({ type: "removed" });
        break;
    }
  }

  #apply(entries: readonly Entry[]): void | Promise<void> {
    if (this.#applyBatch !== null) return this.#applyBatched(entries, this.#applyBatch);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index <= this.#applied) continue;
      if (e.type === "normal") {
        let result: unknown;
        let failed: Error | null = null;
        try {
          result = this.#sm.apply(e.index, e.data);
        } catch (err) {
          failed = err instanceof Error ? err : new Error(String(err));
        }
        if (failed === null && result instanceof Promise) return this.#applyAsync(entries, i, result);
        this.#applied = e.index;
        this.#settle(e, result, failed);
      } else {
        this.#applied = e.index;
        this.#settle(e, undefined, null);
      }
    }
    this.#checkApplied();
  }

  /** The slow path: a state machine whose apply returned a promise. */
  async #applyAsync(entries: readonly Entry[], from: number, pending: Promise<unknown>): Promise<void> {
    let current: Promise<unknown> | null = pending;
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!;
      if (current === null && e.index <= this.#applied) continue;
      let result: unknown;
      let failed: Error | null = null;
      try {
        if (current !== null) result = await current;
        else if (e.type === "normal") result = await this.#sm.apply(e.index, e.data);
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
      }
      current = null;
      this.#applied = e.index;
      this.#settle(e, result, failed);
    }
    this.#checkApplied();
  }

  /** Worker mode: the whole batch's normal entries cross to the state machine's thread in one message. */
  #applyBatched(entries: readonly Entry[], applyBatch: NonNullable<DriverHooks["applyBatch"]>): void | Promise<void> {
    const normal: Entry[] = [];
    for (const e of entries) if (e.index > this.#applied && e.type === "normal") normal.push(e);
    const settleAll = (out: ApplyBatchResult | null) => {
      assert(out === null || out.results === null || out.results.length === normal.length, "one apply result per entry handed over");
      let k = 0;
      for (const e of entries) {
        if (e.index <= this.#applied) continue;
        this.#applied = e.index;
        if (e.type === "normal") {
          const i = k++;
          this.#settle(e, out!.results?.[i], out!.errors?.[i] ?? null);
        } else {
          this.#settle(e, undefined, null);
        }
      }
      this.#checkApplied();
    };
    const lastIndex = entries.length === 0 ? 0 : entries[entries.length - 1]!.index;
    if (normal.length === 0 && lastIndex <= this.#applied) return settleAll(null);
    // Called for internal-only batches too, so the other thread's count of applied entries stays exact.
    return applyBatch(normal, lastIndex).then(settleAll);
  }

  /** Resolves the proposal waiting on `e`'s index, if it was made here. */
  #settle(e: Entry, result: unknown, failed: Error | null): void {
    const p = this.#proposals.get(e.index);
    if (p === undefined) return;
    this.#proposals.delete(e.index);
    if (p.term !== e.term || e.type !== "normal") {
      this.#counters.proposalsFailed++;
      p.reject(new ProposalDroppedError(`The entry at index ${e.index} was replaced by a new leader`, "not-applied"));
      return;
    }
    this.#counters.commitLatency.observe(performance.now() - p.startMs);
    if (failed !== null) p.reject(failed);
    else p.resolve(result);
  }

  #checkApplied(): void {
    if (this.#appliedWaiters.length === 0) return;
    const still: _ReadWaiter[] = [];
    for (const w of this.#appliedWaiters) {
      if (w.index <= this.#applied) w.resolve();
      else still.push(w);
    }
    this.#appliedWaiters = still;
  }

  async #restoreSnapshot(meta: SnapshotMeta): Promise<void> {
    const s = this.#snapshots.latest();
    if (s === null || s.meta.index !== meta.index) throw new RaftError(`Snapshot ${meta.index} to install is not in the snapshot store`);
    if (this.#sm.restore === undefined) {
      throw new RaftError("A snapshot arrived from the leader but the state machine has no restore(): give it snapshot() and restore() to let members catch up after compaction");
    }
    await this.#sm.restore(meta.index, this.#snapshots.read(s));
    this.#applied = meta.index;
    // Proposals at or below the snapshot can no longer be matched to their entries.
    for (const [index, p] of this.#proposals) {
      if (index > meta.index) break;
      this.#proposals.delete(index);
      p.reject(new ProposalDroppedError(`Proposal at index ${index} was folded into a snapshot from the leader`, "unknown"));
    }
    this.#logger(`installed snapshot ${meta.index} (term ${meta.term}) from the leader`);
    this.#emit({ type: "snapshot", what: "installed", index: meta.index });
    this.#checkApplied();
  }

  #onAppended(bytes: number): void {
    this.#bytesSinceSnapshot += bytes;
    const limit = this.#opts.snapshotLogBytes ?? _DEFAULTS.snapshotLogBytes;
    if (this.#bytesSinceSnapshot >= limit && this.#sm.snapshot !== undefined && !this.#snapshotting) {
      this.#bytesSinceSnapshot = 0;
      void this.#builtInSnapshot().catch((err) => this.#logger(`built-in snapshot failed: ${(err as Error).message}`));
    }
  }

  /** Built-in compaction: seal the log, snapshot the state machine to the data directory, drop the log up to it. */
  async #builtInSnapshot(): Promise<void> {
    this.#snapshotting = true;
    try {
      await this.#log.beginSnapshot();
      const s = await this.#takeSnapshot();
      await this.#compact(s.meta.index);
    } finally {
      this.#snapshotting = false;
    }
  }

  /**
   * Snapshots the state machine into the store. Runs with applies paused
   * (awaiting the loop's idle point) so the stream is the state as of one index.
   */
  #takeSnapshot(): Promise<StoredSnapshot> {
    return this.#loop.exclusive(() => this.#takeSnapshotNow());
  }

  async #takeSnapshotNow(): Promise<StoredSnapshot> {
    const sm = this.#sm;
    if (sm.snapshot === undefined) throw new RaftError("The state machine has no snapshot()");
    const src = await sm.snapshot();
    const index = src.index;
    const first = this.#log.firstIndex();
    if (index < first - 1 || index > this.#applied) {
      throw new RaftError(`The state machine's snapshot is at ${index}, outside what the log can describe [${first - 1}, ${this.#applied}]`);
    }
    const term = index === first - 1 ? this.#log.snapshotMeta().term : this.#log.term(index);
    const membership = this.#raft.configAt(index).members;
    const stored = await this.#snapshots.write({ index, term, membership }, src.chunks);
    this.#logger(`took snapshot ${index} (${stored.byteLength} bytes)`);
    this.#emit({ type: "snapshot", what: "taken", index });
    return stored;
  }

  /** Drops the log up to `marker` at most: never past what is applied, or what a follower or snapshot transfer still needs. */
  async #compact(marker: number): Promise<void> {
    // Never past the state machine's own last id: a restart must find every entry after it in the log.
    let upTo = Math.min(marker, this.#applied, await this.#sm.lastApplied());
    if (this.#raft.status().role === "leader") upTo = Math.min(upTo, this.#raft.compactionFloor() - 1);
    for (const t of this.#transfers.values()) upTo = Math.min(upTo, t.index);
    const snap = this.#log.snapshotMeta();
    if (upTo <= snap.index) return;
    const term = this.#log.term(upTo);
    const membership = this.#raft.configAt(upTo).members;
    await this.#log.endSnapshot(upTo, term, membership);
    this.#logger(`compacted the log through index ${upTo}`);
  }

  #sendSnapshot(msg: MsgSnap): void {
    if (this.#transfers.has(msg.to)) return;
    const transfer = { sentBytes: 0, totalBytes: null as number | null, index: msg.snapshot.index };
    this.#transfers.set(msg.to, transfer);
    void (async () => {
      let s = this.#snapshots.latest();
      if (s === null || s.meta.index < this.#log.firstIndex() - 1) s = await this.#takeSnapshot();
      transfer.index = s.meta.index;
      transfer.totalBytes = s.byteLength;
      const stored = s;
      this.#logger(`sending snapshot ${stored.meta.index} (${stored.byteLength} bytes) to ${msg.to}`);
      await this.#peers.sendSnapshot({ ...msg, snapshot: stored.meta }, (offset) => this.#snapshots.read(stored, offset), (bytes) => {
        this.#counters.snapshotBytesSent += bytes - transfer.sentBytes;
        transfer.sentBytes = bytes;
      });
      this.#emit({ type: "snapshot", what: "sent", index: stored.meta.index, peer: msg.to });
      this.#raft.reportSnapshot(msg.to, true);
    })().catch((err) => {
      this.#logger(`snapshot transfer to ${msg.to} failed: ${(err as Error).message}`);
      if (!this.#closed) this.#raft.reportSnapshot(msg.to, false);
    }).finally(() => {
      this.#transfers.delete(msg.to);
      if (!this.#closed) this.#loop.kick();
    });
  }

  #updatePeers(config: ConfigState): void {
    for (const m of config.members) this.#peers.setUrl(m.id, m.url);
  }

  #onFatal(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.#fatal = e;
    this.#logger(`FATAL: ${e.message}; the node has stopped`);
    void this.close();
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

  #waitFor(what: string, check: () => boolean, failOn: (ev: RaftEvent) => Error | null, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.add({ check, failOn, deadlineMs: performance.now() + timeoutMs, what, resolve, reject });
    });
  }

  #checkWaiters(): void {
    if (this.#waiters.size === 0) return;
    const now = performance.now();
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        this.#waiters.delete(w);
        w.resolve();
      } else if (now > w.deadlineMs) {
        this.#waiters.delete(w);
        w.reject(new TimeoutError(`Timed out waiting for ${w.what}`));
      }
    }
  }

  #checkDisk(): void {
    const min = this.#opts.diskFreeBytesMin ?? _DEFAULTS.diskFreeBytesMin;
    try {
      const s = fs.statfsSync(this.#lock.dir);
      const free = s.bavail * s.bsize;
      const low = free < min;
      if (low !== this.#diskLow) this.#logger(low ? `disk space low (${free} bytes free, minimum ${min}): refusing new proposals` : "disk space is back above the minimum: accepting proposals");
      this.#diskLow = low;
    } catch {
      // statfs is unavailable: no watermark.
    }
  }

  #refuseWrite(): Error | null {
    if (this.#fatal !== null) return this.#fatal;
    if (this.#closed) return new ClosedError("The node is closed");
    if (this.#diskLow) return new DiskSpaceError(`Free space in ${this.#lock.dir} is below the configured minimum; free some space and retry`);
    if (this.#raft.status().role !== "leader") return this.#notLeader();
    return null;
  }

  #notLeader(): NotLeaderError {
    const st = this.#raft.status();
    const id = st.leaderId;
    if (id === null || id === this.id) return new NotLeaderError(null, null);
    const url = st.config.members.find((m) => m.id === id)?.url ?? this.#peers.url(id) ?? null;
    return new NotLeaderError(id, url);
  }

  #checkOpen(): void {
    if (this.#fatal !== null) throw this.#fatal;
    if (this.#closed) throw new ClosedError("The node is closed");
  }

  #rejectAll(err: Error): void {
    for (const p of this.#proposeBuffer) p.reject(err);
    this.#proposeBuffer = [];
    // Appended proposals may still commit (on the other members): their outcome is unknown.
    for (const [index, p] of this.#proposals) p.reject(new ProposalDroppedError(`${err.message} before the proposal at index ${index} was applied`, "unknown"));
    this.#proposals.clear();
    if (this.#readBatch !== null) for (const w of this.#readBatch.waiters) w.reject(err);
    this.#readBatch = null;
    for (const r of this.#readsInFlight.values()) for (const w of r.waiters) w.reject(err);
    this.#readsInFlight.clear();
    for (const w of this.#appliedWaiters) w.reject(err);
    this.#appliedWaiters = [];
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
  }
}
