/**
 * Starting a member for real: takes the data-directory lock, opens and
 * checks the storage on the real disk, learns or founds the cluster
 * (bootstrap, join, or the saved identity), serves the peer RPCs, the join
 * routes and the user's routes on one HTTP server, and hands the driver
 * (`./driver.ts`) its production seams: the system clock, HTTP peer
 * clients as the transport, and the state machine (here, or across the
 * worker boundary) as the applier.
 *
 * @module
 */
import * as path from "node:path";
import process from "node:process";
import { Hono } from "hono";
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import type { DirLock, HttpServer, RuntimeAdapter } from "../../adapters/types.ts";
import { serveLimits } from "../../adapters/shared/serve-limits.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Member, NodeId } from "../raft/types.ts";
import { peerRoutes } from "../transport/routes.ts";
import { ReplySlots } from "../transport/reply-slots.ts";
import { type Applier, localApplier } from "./applier.ts";
import { MAX_CLIENT_REQUESTS_DEFAULT, shedExcess } from "./client-limits.ts";
import { systemClock } from "./clock.ts";
import { clusterIdFor, joinCluster, nodeRoutes } from "./cluster-routes.ts";
import { healthRoutes } from "../api/health-routes.ts";
import { DRIVER_DEFAULTS, type DriverTunables, RaftDriver } from "./driver.ts";
import { checkMemberUrl, checkNodeId, type NodeIdentity, readIdentity, writeIdentity } from "./identity.ts";
import { checkListenHost } from "./listen-policy.ts";
import { bootstrapStorage, closeNodeStorage, type NodeStorage, openNodeStorage, storageIsFresh } from "./node-storage.ts";
import { memberTls } from "./member-tls.ts";
import { PeerAdmission } from "./peer-admission.ts";
import { Peers } from "./peers.ts";
import { SNAPSHOT_IDLE_TIMEOUT_MS_DEFAULT, SnapshotGuard } from "./snapshot-guard.ts";
import { writeTracerFromEnv } from "./write-trace.ts";
import { kvService } from "../kv/service.ts";
import { backupRoutes } from "../api/backup-routes.ts";
import { forceNewCluster } from "./force-new-cluster.ts";
import type { RaftNodeOptions, StateMachine } from "./types.ts";

/** Largest accepted peer RPC body by default (peers send batches of 4 MiB at most). */
const _MAX_RPC_BYTES_DEFAULT = 8 * 1024 * 1024;
/** Room in a peer request for everything but one entry's data (message and body headers). */
const _RPC_OVERHEAD_BYTES = 64 * 1024;

/** What the worker thread changes in a start; caller mode uses none. */
export interface StartHooks {
  /** The data-directory lock, already held by the caller's thread (flock belongs to the process, not a worker). */
  readonly lock?: DirLock;
  /** The state machine on the other thread, instead of `opts.stateMachine` here. */
  readonly applier?: Applier;
}

/** The state machine to run here: the user's, or the built-in KV store's (`opts.kv`, with its routes). */
export function withService(opts: RaftNodeOptions): RaftNodeOptions {
  if (opts.kv === undefined) {
    if (opts.stateMachine === undefined) throw new InvalidArgumentError("Give a stateMachine, or kv for the built-in key-value store");
    return opts;
  }
  if (opts.stateMachine !== undefined || opts.routes !== undefined) throw new InvalidArgumentError("Give kv, or stateMachine and routes, not both");
  const svc = kvService(opts.kv);
  return { ...opts, stateMachine: svc.stateMachine, routes: svc.routes };
}

function stateMachineOf(opts: RaftNodeOptions): StateMachine {
  if (opts.stateMachine === undefined) throw new InvalidArgumentError("Give a stateMachine, or kv for the built-in key-value store");
  return opts.stateMachine;
}

/** The driver's tunables from the options. */
export function tunablesOf(opts: RaftNodeOptions): DriverTunables {
  const d = DRIVER_DEFAULTS;
  return {
    ...d,
    tickMs: opts.tickMs ?? d.tickMs,
    electionTicks: opts.electionTicks ?? d.electionTicks,
    heartbeatTicks: opts.heartbeatTicks ?? d.heartbeatTicks,
    snapshotLogBytes: opts.snapshotLogBytes ?? d.snapshotLogBytes,
    diskFreeBytesMin: opts.diskFreeBytesMin ?? d.diskFreeBytesMin,
    proposeTimeoutMs: opts.proposeTimeoutMs ?? d.proposeTimeoutMs,
    proposalBytesMax: (opts.maxRpcBytes ?? _MAX_RPC_BYTES_DEFAULT) - _RPC_OVERHEAD_BYTES,
  };
}

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
    const storage = await openNodeStorage(dir);
    try {
      if (!storageIsFresh(storage)) throw new InvalidArgumentError(`Data directory ${dir} already holds a log; use an empty directory`);
      const members = opts.members.map((m) => ({ id: m.id, url: m.url, voter: true }));
      await bootstrapStorage(storage, members);
    } finally {
      await closeNodeStorage(storage);
    }
    await writeIdentity(dir, { id: opts.id, url: self.url, host: opts.host, port: opts.port, clusterId: clusterIdFor(opts.members.map((m) => ({ id: m.id, url: m.url, voter: true })), "") });
  } finally {
    lock.release();
  }
}

/**
 * Starts a member (see the module comment): resolves once it serves, its
 * committed entries are replayed, and (when joining) it is a voter.
 *
 * @throws LockedError when another process holds the data directory
 * @throws StorageCorruptError when a file in it is damaged or the files disagree (file and offset named)
 * @throws InvalidArgumentError for bad options
 */
export async function startDriver(opts: RaftNodeOptions, hooks: StartHooks = {}): Promise<RaftDriver> {
  const logger = opts.logger ?? ((line: string) => process.stderr.write(`${line}\n`));
  // With TLS, the runtime's server and clients come wrapped to speak it (see member-tls.ts).
  const tls = memberTls((opts as { runtime?: RuntimeAdapter }).runtime ?? defaultRuntime, opts.tls, logger);
  const rt = tls.runtime;
  const dataDir = path.resolve(opts.dataDir);
  const lock = hooks.lock ?? rt.lockDir(dataDir);
  let driver: RaftDriver | null = null;
  let server: HttpServer | null = null;
  let storage: NodeStorage | null = null;
  try {
    const saved = await readIdentity(dataDir);
    if (saved !== null && opts.id !== undefined && opts.id !== saved.id) {
      throw new InvalidArgumentError(`Data directory ${dataDir} belongs to member ${saved.id}, not ${opts.id}; use another directory`);
    }
    const id = saved?.id ?? opts.id;
    if (id === undefined) throw new InvalidArgumentError(`Data directory ${dataDir} holds no member yet: give an id (and host, port) to start one`);
    checkNodeId(id);
    const host = opts.host ?? saved?.host ?? "127.0.0.1";
    checkListenHost(host, opts.secret, opts.insecure, opts.tls !== undefined);
    const port = opts.port ?? saved?.port;
    if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InvalidArgumentError(`Port ${String(port)} is invalid: give a port in 0-65535`);
    }
    if (opts.advertiseUrl !== undefined) checkMemberUrl(opts.advertiseUrl);

    storage = await openNodeStorage(dataDir, {
      logger,
      writeThrough: !rt.fileWritesBlock,
      ...(opts.segmentBytesMax === undefined ? {} : { segmentBytesMax: opts.segmentBytesMax }),
    });
    if (opts.forceNewCluster === true) {
      if (saved === null) throw new InvalidArgumentError(`forceNewCluster: data directory ${dataDir} holds no member to recover`);
      const smApplied = hooks.applier !== undefined ? await hooks.applier.lastApplied() : await stateMachineOf(opts).lastApplied();
      await forceNewCluster(storage, saved, smApplied, logger);
    }
    const admission = await PeerAdmission.open(dataDir, logger);

    // The cluster: saved, or bootstrapped now, or learned from a member we join.
    let clusterId = saved?.clusterId ?? null;
    let joinInfo: Awaited<ReturnType<typeof joinCluster.info>> | null = null;
    let bootstrapMembers: Member[] | null = null;
    const fresh = saved === null && storageIsFresh(storage);
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

    tls.setClusterId(clusterId!);
    // Serve first, so port 0 resolves to the real port before the URL is fixed.
    // Hono refuses routes added after its first request, and peers may call as soon as the port is
    // bound: a front app answers 503 until every route is on `app` (a race measured in worker mode).
    const app = new Hono();
    let routed = false;
    const front = new Hono();
    front.all("*", (c) => routed ? app.fetch(c.req.raw, c.env) : c.text("Member is starting; retry shortly\n", 503, { "Retry-After": "1" }));
    server = await rt.serve(front, host, port, serveLimits(opts.connectionLimits, opts.listenClient === undefined ? 1 : 2));
    const url = opts.advertiseUrl ?? saved?.url ?? `${tls.scheme}://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
    tls.checkUrl(url, dataDir);
    const identity: NodeIdentity = { id, url, host, port: saved?.port ?? (port === 0 ? server.port : port), clusterId: clusterId! };
    if (saved === null) await writeIdentity(dataDir, identity);

    if (bootstrapMembers !== null) await bootstrapStorage(storage, bootstrapMembers.length === 0 ? [{ id, url, voter: true }] : bootstrapMembers);

    const http = rt.httpClient();
    const tunables = tunablesOf(opts);
    const tracer = writeTracerFromEnv(id, () => rt.monotonicNs());
    const srv = server;
    let guard: SnapshotGuard | null = null;
    const replySlots = new ReplySlots();
    const d = await RaftDriver.create({
      id,
      url,
      clusterId: identity.clusterId,
      tunables,
      clock: systemClock,
      storage,
      transport: (drv) =>
        new Peers({
          nodeId: id,
          clusterId: identity.clusterId,
          secret: opts.secret ?? null,
          http,
          requestTimeoutMs: Math.max(1000, tunables.tickMs * tunables.electionTicks),
          counters: drv.counters,
          onUnreachable: (peer) => drv.reportUnreachable(peer),
          onGone: (peer) => drv.peerSaysRemoved(peer),
          logger,
          replySlots,
          onReplies: (msgs) => drv.receive(msgs),
        }),
      applier: hooks.applier ?? localApplier(stateMachineOf(opts)),
      logger,
      knownMembers: joinInfo?.members ?? [],
      runtimeName: rt.name,
      ...(tracer === null ? {} : { probe: tracer }),
      beforeStorageClose: async () => {
        replySlots.close();
        await srv.close();
        await guard?.close().catch(() => {});
        await admission.flushed();
      },
      afterClose: () => {
        http.close();
        lock.release();
      },
      reloadTls: (t) => tls.reload(t),
    });
    driver = d;
    storage = null; // the driver owns it now
    if (joinInfo !== null) admission.setJoinPeers(joinInfo.members.map((m) => m.id));
    const g = new SnapshotGuard(d.snapshotSink, {
      dir: path.join(dataDir, "snapshots"),
      admit: (from, msg) => admission.snapshot(d.membershipView(), from, msg),
      reserveBytes: tunables.diskFreeBytesMin,
      idleTimeoutMs: opts.snapshotIdleTimeoutMs ?? SNAPSHOT_IDLE_TIMEOUT_MS_DEFAULT,
      logger,
    });
    guard = g;
    nodeRoutes(app, { getNode: () => d, secret: opts.secret ?? null });
    healthRoutes(app, d, { electionTimeoutMs: tunables.tickMs * tunables.electionTicks, serving: () => d.serving });
    backupRoutes(app, { getNode: () => d, secret: opts.secret ?? null, logger });
    app.route("/", peerRoutes({
      clusterId: identity.clusterId,
      nodeId: id,
      secret: opts.secret ?? null,
      maxBodyBytes: opts.maxRpcBytes ?? _MAX_RPC_BYTES_DEFAULT,
      onMessages: (_from, msgs) => d.receive(msgs),
      replySlots,
      admitSender: (from) => admission.sender(d.membershipView(), from),
      snapshotSink: g,
      onRefused: (r) => {
        d.counters.rpcsRefused++;
        logger(`refused peer request ${r.path} from ${r.from ?? "unknown"}: ${r.status} ${r.reason}`);
      },
    }));
    if (opts.routes !== undefined) {
      const user = new Hono();
      user.use("*", shedExcess(opts.maxClientRequests ?? MAX_CLIENT_REQUESTS_DEFAULT));
      user.use("*", async (c, next) => {
        if (!d.serving) return c.text("Member is starting (replaying its log); retry shortly\n", 503, { "Retry-After": "1" });
        await next();
      });
      opts.routes(user, d);
      app.route("/", user);
    }
    routed = true;
    await d.replay();
    await d.awaitSoleLeadership();
    if (joinInfo !== null) await joinCluster.requestAdd(rt, joinInfo, id, url, opts.secret ?? null, logger, () => d.closed);
    return d;
  } catch (err) {
    if (driver !== null) {
      await driver.close().catch(() => {});
    } else {
      if (server !== null) await server.close().catch(() => {});
      if (storage !== null) await closeNodeStorage(storage);
      lock.release();
    }
    throw err;
  }
}
