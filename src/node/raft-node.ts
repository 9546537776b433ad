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
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import type { RuntimeAdapter } from "../../adapters/types.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { NodeId } from "../raft/types.ts";
import type { RaftDriver } from "./driver.ts";
import { startDriver, withService } from "./start.ts";
import type { NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, RaftNodeOptions, TlsOptions } from "./types.ts";
import { WorkerNode } from "./worker/worker-node.ts";

export { bootstrapDataDir } from "./start.ts";

/** A running member of a Raft cluster (see the module comment). */
export class RaftNode implements RaftNodeApi {
  /** The implementation: the driver itself ("caller") or the handle on its worker ("worker"). */
  readonly #impl: RaftDriver | WorkerNode;

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
    if (thread === "caller") return new RaftNode(await startDriver(withService(opts)));
    const rt = (opts as { runtime?: RuntimeAdapter }).runtime ?? defaultRuntime;
    return new RaftNode(await WorkerNode.start(opts, rt));
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
  close(): Promise<void> {
    return this.#impl.close();
  }
  /**
   * Replaces the TLS certificate, key and CA for new connections, served and
   * made (open connections keep theirs): how a renewed certificate takes
   * effect without a restart. The CLI calls it on SIGHUP and when the files
   * change. @throws InvalidArgumentError for bad material, or a member started without TLS
   */
  reloadTls(tls: TlsOptions): Promise<void> {
    return this.#impl.reloadTls(tls);
  }

  /** Test hook (not in mod.ts): makes a worker-mode node's worker fail. @throws InvalidArgumentError in caller mode */
  static injectWorkerFault(node: RaftNode, kind: "throw" | "terminate"): void {
    if (!(node.#impl instanceof WorkerNode)) throw new InvalidArgumentError("injectWorkerFault needs a node started with thread: \"worker\"");
    node.#impl.injectFault(kind);
  }
}
