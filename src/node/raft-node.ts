/**
 * `RaftNode`: the consensus module users import. `RaftNode.start` runs the
 * driver (`./driver.ts`, started by `./start.ts`) either on the caller's
 * thread or, with `thread: "worker"`, in a worker thread behind a thin
 * handle (`./worker/worker-node.ts`) so that a state machine that blocks
 * its thread does not stop heartbeats and votes. Both keep the same API and
 * errors.
 *
 * @module
 */
import process from "node:process";
import { Hono } from "hono";
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import { serveLimits } from "../../adapters/shared/serve-limits.ts";
import type { HttpServer, RuntimeAdapter } from "../../adapters/types.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { NodeId } from "../raft/types.ts";
import { MAX_CLIENT_REQUESTS_DEFAULT, shedExcess } from "./client-limits.ts";
import { checkListenHost } from "./listen-policy.ts";
import { type MemberTls, memberTls } from "./member-tls.ts";
import type { RaftDriver } from "./driver.ts";
import { startDriver, tunablesOf, withService } from "./start.ts";
import { healthRoutes } from "../api/health-routes.ts";
import type { NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, RaftNodeOptions, SnapshotTaken, TlsOptions } from "./types.ts";
import { WorkerNode } from "./worker/worker-node.ts";

export { bootstrapDataDir } from "./start.ts";

/** A running member of a Raft cluster (see the module comment). */
export class RaftNode implements RaftNodeApi {
  /** The implementation: the driver itself ("caller") or the handle on its worker ("worker"). */
  readonly #impl: RaftDriver | WorkerNode;
  /** The client listener (`listenClient`), if any. */
  #clientServer: HttpServer | null = null;
  /** Its TLS (the member's certificates, reloaded with them), when the member has TLS. */
  #clientTls: MemberTls | null = null;

  private constructor(impl: RaftDriver | WorkerNode) {
    this.#impl = impl;
  }

  /**
   * Starts a member: locks the data directory, recovers its state, replays
   * committed entries into the state machine, serves peer RPCs (and
   * `opts.routes`) and joins or bootstraps a cluster when asked; in a worker
   * thread when `opts.thread` is "worker".
   *
   * @throws LockedError when another process holds the data directory
   * @throws StorageCorruptError when a file in it is damaged (file and offset named)
   * @throws InvalidArgumentError for bad options
   */
  static async start(opts: RaftNodeOptions): Promise<RaftNode> {
    const thread = opts.thread ?? "worker";
    if (thread !== "worker" && thread !== "caller") throw new InvalidArgumentError(`thread must be "worker" or "caller", not ${String(thread)}`);
    const rt = (opts as { runtime?: RuntimeAdapter }).runtime ?? defaultRuntime;
    const lc = opts.listenClient;
    if (lc !== undefined) {
      if (opts.routes === undefined) throw new InvalidArgumentError("listenClient serves routes: give routes too (with kv, the built-in store serves on the member's port; give stateMachine and routes from kvService to serve it here)");
      if (!Number.isInteger(lc.port) || lc.port < 0 || lc.port > 65535) throw new InvalidArgumentError(`listenClient port ${lc.port} is invalid: give a port in 0-65535`);
      checkListenHost(lc.host, opts.secret, opts.insecure, opts.tls !== undefined);
    }
    const node = new RaftNode(thread === "caller" ? await startDriver(withService(opts)) : await WorkerNode.start(opts, rt));
    if (lc !== undefined) {
      // On this thread: in worker mode, client traffic then never reaches the consensus loop's thread.
      const app = new Hono();
      const t = tunablesOf(opts);
      healthRoutes(app, node, { electionTimeoutMs: t.tickMs * t.electionTicks });
      app.use("*", shedExcess(opts.maxClientRequests ?? MAX_CLIENT_REQUESTS_DEFAULT));
      opts.routes!(app, node);
      try {
        // Over TLS when the member has TLS, with the same certificates (and client certificate rule).
        const tls = opts.tls === undefined ? null : memberTls(rt, opts.tls, opts.logger ?? ((line) => process.stderr.write(`${line}\n`)));
        if (tls !== null) tls.setClusterId(node.clusterId);
        node.#clientTls = tls;
        node.#clientServer = await (tls?.runtime ?? rt).serve(app, lc.host, lc.port, serveLimits(opts.connectionLimits, 2));
      } catch (err) {
        await node.close().catch(() => {});
        throw err;
      }
    }
    return node;
  }

  /** The port of the client listener (`listenClient`), or null without one. */
  get clientPort(): number | null {
    return this.#clientServer?.port ?? null;
  }

  /** This member's id. */
  get id(): NodeId {
    return this.#impl.id;
  }
  /** The URL peers and clients use for this member. */
  get url(): string {
    return this.#impl.url;
  }
  /** The cluster this member belongs to. */
  get clusterId(): string {
    return this.#impl.clusterId;
  }
  /** Where the consensus loop runs. */
  get thread(): "worker" | "caller" {
    return this.#impl instanceof WorkerNode ? "worker" : "caller";
  }
  propose(data: Uint8Array): Promise<unknown> {
    return this.#impl.propose(data);
  }
  readBarrier(): Promise<void> {
    return this.#impl.readBarrier();
  }
  addMember(id: NodeId, url: string): Promise<void> {
    return this.#impl.addMember(id, url);
  }
  removeMember(id: NodeId): Promise<void> {
    return this.#impl.removeMember(id);
  }
  transferLeadership(to?: NodeId): Promise<void> {
    return this.#impl.transferLeadership(to);
  }
  beginSnapshot(): Promise<number> {
    return this.#impl.beginSnapshot();
  }
  endSnapshot(marker: number): Promise<void> {
    return this.#impl.endSnapshot(marker);
  }
  takeSnapshot(): Promise<SnapshotTaken> {
    return this.#impl.takeSnapshot();
  }
  /** In worker mode a copy at most one tick old, except `lastApplied`, which is exact. */
  status(): NodeStatus {
    return this.#impl.status();
  }
  metrics(): NodeMetrics {
    return this.#impl.metrics();
  }
  on(listener: (event: NodeEvent) => void): () => void {
    return this.#impl.on(listener);
  }
  async close(): Promise<void> {
    const s = this.#clientServer;
    this.#clientServer = null;
    if (s !== null) await s.close().catch(() => {});
    return this.#impl.close();
  }
  /**
   * Replaces the TLS certificate, key and CA for new connections, served and
   * made (open connections keep theirs): how a renewed certificate takes
   * effect without a restart. The CLI calls it on SIGHUP and when the files
   * change. @throws InvalidArgumentError for bad material, or a member started without TLS
   */
  async reloadTls(tls: TlsOptions): Promise<void> {
    await this.#impl.reloadTls(tls);
    await this.#clientTls?.reload(tls);
  }

  /** Test hook (not in mod.ts): makes a worker-mode node's worker fail. @throws InvalidArgumentError in caller mode */
  static injectWorkerFault(node: RaftNode, kind: "throw" | "terminate"): void {
    if (!(node.#impl instanceof WorkerNode)) throw new InvalidArgumentError("injectWorkerFault needs a node started with thread: \"worker\"");
    node.#impl.injectFault(kind);
  }
}
