/**
 * The public contract of `RaftNode`: the user's state machine, the options a
 * node starts with, its status and events. `mod.ts` re-exports these.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Member, NodeId, Role } from "../raft/types.ts";

/**
 * The user's state machine (the seed's contract).
 *
 * `apply(id, data)` gets every committed "normal" entry in log order; `id` is
 * the log index, unique and increasing. A persisted state machine may see
 * the same id again after a restart (always in the same order) and must
 * ignore ids it has already applied. Whatever `apply` returns (or resolves
 * to) is handed to the caller of `propose` on the member where the proposal
 * was made. Internal entries (no-ops, membership changes) never reach it.
 */
export interface StateMachine {
  apply(id: number, data: Uint8Array): unknown;
  /** The id of the last operation ever applied (0 if none). */
  lastApplied(): number | Promise<number>;
  /**
   * Optional: the state as of `lastApplied()`, as a stream of chunks. With
   * `restore`, lets the node bring up members whose entries were compacted
   * away, and keep an in-memory state machine across restarts.
   */
  snapshot?(): SnapshotSource | Promise<SnapshotSource>;
  /** Optional: replaces the whole state with a snapshot taken at `index`. */
  restore?(index: number, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** A snapshot being read out of a state machine. */
export interface SnapshotSource {
  /** The last id folded into this snapshot (must equal `lastApplied()` when taken). */
  readonly index: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/**
 * TLS for a member's one port (peers and clients share it), PEM text or its
 * bytes. With `ca`, members verify each other's certificates against it in
 * both directions (mutual TLS between members: peer RPCs and joins without a
 * certificate from `ca` are refused); with `requireClientCert` too, every
 * client must present one.
 */
export interface TlsOptions {
  /** This member's certificate (chain); it should name the advertised host in its subjectAltName. */
  readonly cert: string | Uint8Array;
  readonly key: string | Uint8Array;
  /** The CA (one or more certificates) that members' and clients' certificates must be signed by. */
  readonly ca?: string | Uint8Array;
  /** Refuse clients (not only peers) without a certificate from `ca`. Needs `ca`. */
  readonly requireClientCert?: boolean;
}

/** How a node starts. */
export interface RaftNodeOptions {
  /** The data directory, locked for this process while the node runs. */
  readonly dataDir: string;
  /**
   * This member's id. Saved in the data directory on first start; on a
   * restart it may be omitted (and must match when given).
   */
  readonly id?: NodeId;
  /** Address to listen on for peer RPCs (and any routes added by `routes`). Saved like `id`. */
  readonly host?: string;
  /** Port to listen on; 0 picks a free port. Saved like `id`. */
  readonly port?: number;
  /** The URL other members use to reach this one. Default `http://HOST:PORT` (`https://` with `tls`), with the bound port. */
  readonly advertiseUrl?: string;
  /** The state machine (give this, or `kv`). */
  readonly stateMachine?: StateMachine;
  /**
   * Serve the built-in key-value store instead of a state machine of your
   * own: its state machine and its HTTP API (`/kv`, `/cluster`, `/status`,
   * `/metrics`, `/ui`, ...) run where the consensus loop runs — in worker
   * mode on the worker thread, so a write crosses no thread (what `raft
   * start` does). Give this or `stateMachine` (with `routes`), not both.
   */
  readonly kv?: KvServiceOptions;
  /**
   * Start a new cluster: `true` for a single member (this one), or the full
   * initial member list (each member started with the same list). Ignored
   * when the data directory already holds a cluster.
   */
  readonly bootstrap?: true | readonly Member[];
  /**
   * UNSAFE recovery after losing quorum (etcd's `--force-new-cluster`):
   * before starting, make this member the only voter of its cluster,
   * keeping the log through the last index it knows to be committed and
   * dropping the entries after it (logged). Written durably: later starts
   * need not repeat it. Needs a data directory that holds a member.
   */
  readonly forceNewCluster?: boolean;
  /**
   * Join a running cluster through any of these member URLs: the node learns
   * the cluster id, starts, asks to be added (as a learner, caught up, then
   * promoted) and retries until the cluster answers. Ignored on restart.
   */
  readonly join?: readonly string[];
  /**
   * Cluster secret: peers authenticate every RPC with HMAC-SHA-256 over it.
   * It never travels; clients use the token derived from it
   * (`clientTokenFor`). Without it a member listens only on a loopback
   * address, unless `insecure` is set.
   */
  readonly secret?: Uint8Array;
  /**
   * Serve HTTPS and talk to peers over TLS (see `TlsOptions`). The member's
   * URL is then `https://...`; a member created with TLS must always be
   * started with it, and one created without it never. `reloadTls` swaps
   * the certificates of a running member.
   */
  readonly tls?: TlsOptions;
  /** Allow a non-loopback `host` without a `secret` (anyone who reaches the port can act as a member). */
  readonly insecure?: boolean;
  /** Mounts extra routes (the KV service) on the node's HTTP server. */
  readonly routes?: (app: Hono, node: RaftNodeApi) => void;
  /** Milliseconds per tick of the core. Default 100. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized in [n, 2n)). Default 10. */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Take a built-in snapshot (needs `snapshot`/`restore`) once the log holds this many bytes. Default 64 MiB. */
  readonly snapshotLogBytes?: number;
  /** Refuse new proposals when the data directory's file system has less free space. Default 64 MiB. */
  readonly diskFreeBytesMin?: number;
  /** A proposal that is not applied within this time rejects with outcome "unknown". Default 10 000 ms. */
  readonly proposeTimeoutMs?: number;
  /** Log segment size: a segment is sealed and a new one started past it. Default 64 MiB. */
  readonly segmentBytesMax?: number;
  /**
   * Largest accepted peer RPC body. Default 8 MiB (peers send batches of at
   * most 4 MiB). A proposal must fit in one: larger ones are refused with
   * InvalidArgumentError.
   */
  readonly maxRpcBytes?: number;
  /** Drop an incoming snapshot transfer that received nothing for this long. Default 60 000 ms. */
  readonly snapshotIdleTimeoutMs?: number;
  /**
   * Serve `routes` on a listener of their own too, as etcd's client URLs:
   * clients that use it never share a connection or (in worker mode) a
   * thread with peer RPCs. The member's port keeps serving `routes`
   * (redirects to the leader point there). Without a secret the host must
   * be a loopback address, unless `insecure`.
   */
  readonly listenClient?: { readonly host: string; readonly port: number };
  /** Requests for `routes` served at once, per listener; the excess is answered 503 at once. Default 1024. */
  readonly maxClientRequests?: number;
  /**
   * Connection limits of the member's servers: at most `maxConnections`
   * (default: the open-file limit less a reserve for the log and peers),
   * request heads within `headersTimeoutMs` (10 s), whole requests within
   * `requestTimeoutMs` (30 s), idle kept-alive connections closed after
   * `idleTimeoutMs` (5 s). What each runtime enforces is in the README.
   */
  readonly connectionLimits?: {
    readonly maxConnections?: number;
    readonly headersTimeoutMs?: number;
    readonly requestTimeoutMs?: number;
    readonly idleTimeoutMs?: number;
  };
  /**
   * Where the consensus loop runs. "worker": timers, the peer RPC server,
   * replication and log writes run on their own worker thread, so a state
   * machine (or anything else on the caller's thread) that blocks for a
   * while does not stop heartbeats and votes; the state machine, `routes`
   * and listeners still run on the caller's thread. "caller": everything on
   * the caller's thread (no thread hop, more throughput; `status()` is
   * exact). Default "worker". In worker mode `status()` and `metrics()` are
   * copies at most one tick old (`lastApplied` is exact), `apply`'s result
   * never crosses threads, and the data given to `apply` is a view into a
   * batch buffer (copy it to keep it).
   */
  readonly thread?: "worker" | "caller";
  /** Where one-line log messages go. Default: stderr. */
  readonly logger?: (line: string) => void;
}

/** The built-in key-value store's settings (`RaftNodeOptions.kv`). */
export interface KvServiceOptions {
  /** Longest key in bytes (UTF-8). Default 1024. */
  readonly keyBytesMax?: number;
  /** Largest value in bytes. Default 1 MiB. */
  readonly valueBytesMax?: number;
  /** With a secret, the routes need it as a bearer token (see `apiRoutes`). */
  readonly secret?: Uint8Array;
  /** A request body must arrive within this long (ms). Default 30 s. */
  readonly bodyTimeoutMs?: number;
}

/** One member as status reports it. */
export interface MemberStatus extends Member {
  /** Leader only: the highest index known to be replicated there. */
  readonly matchIndex: number | null;
  /** Leader only: entries it is behind the leader's last index. */
  readonly lag: number | null;
  /** Leader only: heard from within an election timeout. */
  readonly reachable: boolean | null;
  /** A snapshot being sent to it: bytes sent so far and the total, when known. */
  readonly snapshotTransfer: { readonly sentBytes: number; readonly totalBytes: number | null } | null;
  /** When this node last received a peer message from it (wall clock, ms since the epoch); null if never, and for itself. */
  readonly lastHeardAtMs: number | null;
}

/** A point-in-time picture of a node. */
export interface NodeStatus {
  readonly id: NodeId;
  readonly url: string;
  readonly clusterId: string;
  /** "learner" when this member is not a voter. */
  readonly role: Role | "learner";
  readonly term: number;
  readonly leader: { readonly id: NodeId; readonly url: string } | null;
  readonly commitIndex: number;
  readonly lastApplied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly members: readonly MemberStatus[];
  /** A membership change appended but not yet committed. */
  readonly pendingConfigChange: boolean;
  readonly runtime: string;
}

/** A latency histogram: counts per upper bound in milliseconds (cumulative, Prometheus style). */
export interface Histogram {
  readonly boundsMs: readonly number[];
  /** cumulative[i] = observations <= boundsMs[i]; one more element for +Inf. */
  readonly cumulative: readonly number[];
  readonly sumMs: number;
  readonly count: number;
}

/** What `/metrics` exports. */
export interface NodeMetrics {
  readonly proposals: number;
  readonly proposalsFailed: number;
  readonly commitLatency: Histogram;
  readonly fsyncLatency: Histogram;
  readonly rpcsSent: number;
  readonly rpcsReceived: number;
  readonly rpcsRefused: number;
  /** Of `rpcsSent`, replies that left in the response of the request they answer instead of a request of their own. */
  readonly rpcsSentInResponses: number;
  readonly snapshotBytesSent: number;
  readonly snapshotBytesReceived: number;
  readonly leaderChanges: number;
  /** Bytes of the log's segment files on disk. */
  readonly logBytes: number;
  /** Bytes of the stored snapshots' data files on disk. */
  readonly snapshotBytes: number;
}

/** What `takeSnapshot()` did. */
export interface SnapshotTaken {
  /** The index the snapshot is at (the applied index when it was taken). */
  readonly index: number;
  readonly term: number;
  /** The snapshot's size in bytes. */
  readonly bytes: number;
  /** The log's compaction point afterwards: below `index` while a follower or snapshot transfer still needs the entries. */
  readonly compactedThrough: number;
}

/** What a node reports as it runs. */
export type NodeEvent =
  | { readonly type: "role"; readonly role: Role | "learner"; readonly term: number; readonly leader: NodeId | null }
  | { readonly type: "membership"; readonly members: readonly Member[] }
  | { readonly type: "catch-up"; readonly id: NodeId; readonly round: number; readonly lag: number }
  | { readonly type: "catch-up-failed"; readonly id: NodeId; readonly reason: string }
  | { readonly type: "snapshot"; readonly what: "taken" | "sent" | "installed"; readonly index: number; readonly peer?: NodeId }
  | { readonly type: "removed" }
  /** `close()` was called: the node stops serving and writing (long-lived responses, such as event streams, should end now). */
  | { readonly type: "closing" }
  | { readonly type: "stopped"; readonly error: Error | null };

/** What a running node offers (what `routes` and the KV service program against). */
export interface RaftNodeApi {
  readonly id: NodeId;
  /** The URL peers and clients use for this member. */
  readonly url: string;
  /**
   * Replicates `data`; resolves with `apply`'s result once committed and
   * applied here. @throws NotLeaderError on a follower (with the leader's
   * id and URL); ProposalDroppedError when it cannot complete.
   */
  propose(data: Uint8Array): Promise<unknown>;
  /** Linearizable read barrier (§6.4 ReadIndex): afterwards the local state machine reflects every write acknowledged before the call. @throws NotLeaderError */
  readBarrier(): Promise<void>;
  /** Adds a member as a learner, catches it up, promotes it. Resolves once it is a voter. */
  addMember(id: NodeId, url: string): Promise<void>;
  /** Removes a member (the leader too). Resolves once the removal is committed. */
  removeMember(id: NodeId): Promise<void>;
  /** Hands leadership to `to` (or the most caught-up voter). Resolves once it leads. */
  transferLeadership(to?: NodeId): Promise<void>;
  /** Seed: seals the log and returns the marker: snapshot the state machine up to at least it. */
  beginSnapshot(): Promise<number>;
  /** Seed: the state machine is durably snapshotted through `marker`; drop the log up to it (at most). */
  endSnapshot(marker: number): Promise<void>;
  /**
   * Takes a built-in snapshot now and compacts the log up to it (as
   * `snapshotLogBytes` does by itself). Needs a state machine with
   * `snapshot()` and `restore()`. @throws RaftError without them
   */
  takeSnapshot(): Promise<SnapshotTaken>;
  status(): NodeStatus;
  /** Counters and latency histograms for `/metrics`. */
  metrics(): NodeMetrics;
  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: NodeEvent) => void): () => void;
  /** Stops timers and the server, waits for writes in flight, releases the lock. */
  close(): Promise<void>;
}
