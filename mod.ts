/**
 * `raft-ts`: a Raft consensus module for Node, Deno and Bun.
 *
 * This file is the stable public surface: only what is re-exported here is
 * API. Start a member with `RaftNode.start({ dataDir, id, host, port,
 * stateMachine, bootstrap | join })`.
 *
 * @example
 * ```ts
 * import { RaftNode } from "raft-ts";
 * let last = 0;
 * const node = await RaftNode.start({
 *   id: "n1", dataDir: "./data", host: "127.0.0.1", port: 7000, bootstrap: true,
 *   stateMachine: { apply(id, data) { last = id; return data.length; }, lastApplied: () => last },
 * });
 * await node.propose(new TextEncoder().encode("hello")); // resolves with apply's result: 5
 * await node.close();
 * ```
 *
 * @module
 */
export { bootstrapDataDir, RaftNode } from "./src/node/raft-node.ts";
export { clientTokenFor } from "./src/transport/credentials.ts";
export { backupStatus, saveBackup, takeSnapshotOf } from "./src/node/backup.ts";
export type { MemberClientOptions, SaveBackupOptions } from "./src/node/backup.ts";
export { restoreBackup } from "./src/node/restore.ts";
export type { RestoreOptions, RestoreResult } from "./src/node/restore.ts";
export type { BackupHeader, BackupInfo } from "./src/storage/backup-file.ts";
export type {
  Histogram,
  MemberStatus,
  NodeEvent,
  NodeMetrics,
  NodeStatus,
  RaftNodeApi,
  RaftNodeOptions,
  SnapshotSource,
  SnapshotTaken,
  StateMachine,
} from "./src/node/types.ts";
export {
  BackupCorruptError,
  ClosedError,
  DiskSpaceError,
  InvalidArgumentError,
  LockedError,
  MembershipChangeError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  RefusedError,
  StorageCorruptError,
  StorageFailedError,
  TimeoutError,
  TlsError,
} from "./src/errors.ts";
export type { Entry, EntryType, HardState, Member, NodeId, Role, SnapshotMeta } from "./src/raft/types.ts";
