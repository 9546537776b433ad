/**
 * `raft-ts`: a Raft consensus module for Node, Deno and Bun.
 *
 * This file is the stable public surface: only what is re-exported here is
 * API. (The replicated node, `RaftNode`, joins it when its issue lands.)
 *
 * @module
 */
export {
  ClosedError,
  InvalidArgumentError,
  LockedError,
  MembershipChangeError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  StorageCorruptError,
  StorageFailedError,
  TimeoutError,
} from "./src/errors.ts";
export type { Entry, EntryType, HardState, Member, NodeId, Role, SnapshotMeta } from "./src/raft/types.ts";
