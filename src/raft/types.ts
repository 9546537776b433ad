/**
 * The vocabulary shared by the pure Raft core (`src/raft/`) and everything
 * around it: log entries, persistent state, messages, and the `Ready` batch
 * through which the core hands work to its driver (etcd-io/raft's
 * Ready/Advance design).
 *
 * Indexes and terms are JavaScript numbers that must be safe integers; they
 * travel as u64 on disk and on the wire and are checked where they enter.
 *
 * @module
 */

/** A member's stable identity, chosen by the operator (e.g. "n1"). */
export type NodeId = string;

/**
 * What an entry carries. "normal" entries hold user data and reach the state
 * machine; "noop" is the entry a new leader appends (§8: it lets the leader
 * commit entries of earlier terms); "config" holds an encoded membership
 * (see `encodeMembership`), which takes effect when appended, not when
 * committed (dissertation §4.1).
 */
export type EntryType = "normal" | "noop" | "config";

/** One log entry. Invariant: index >= 1, term >= 1. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** One member of the cluster. Learners receive the log but never vote. */
export interface Member {
  readonly id: NodeId;
  /** Where peers and clients reach it, e.g. "http://127.0.0.1:7001". */
  readonly url: string;
  readonly voter: boolean;
}

/** The membership in force from log position `index` on. */
export interface ConfigState {
  /** Index of the config entry (or snapshot) that set it; 0 for a bootstrap. */
  readonly index: number;
  readonly members: readonly Member[];
}

/**
 * State that must be durable before some messages may be sent (Figure 2's
 * "persistent state on all servers").
 * Invariant: when `term` changes, `votedFor` is reset in the same write.
 */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | null;
  /** May be persisted lazily: losing it only means replaying more on restart. */
  readonly commitIndex: number;
}

/**
 * The point a snapshot (or a compaction) stands for: every entry up to and
 * including `index` is folded into it. `membership` is the configuration as
 * of `index`, so the log can still be checked and elections held after the
 * entries are gone.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly membership: readonly Member[];
}

/** Every message carries these. `term` is the sender's current term. */
interface MsgBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries request (Figure 2). An empty `entries` is a probe. */
export interface MsgApp extends MsgBase {
  readonly type: "MsgApp";
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly leaderCommit: number;
}

/**
 * AppendEntries reply. On success `matchIndex` is the last index known to
 * match the leader's log. On rejection the follower names a hint for fast
 * backtracking (§5.3): `conflictTerm` is the term of its entry at
 * `prevLogIndex` (0 if it has none) and `conflictIndex` the first index it
 * holds with that term (or its lastIndex + 1 when its log is too short).
 */
export interface MsgAppResp extends MsgBase {
  readonly type: "MsgAppResp";
  readonly success: boolean;
  /**
   * On success the last index known to match; on rejection the
   * `prevLogIndex` that was rejected (so the leader can drop stale rejections).
   */
  readonly matchIndex: number;
  readonly conflictTerm: number;
  readonly conflictIndex: number;
  /** The follower's last log index, so a leader can tell how far behind it is. */
  readonly lastLogIndex: number;
}

/** RequestVote and PreVote requests (§5.2; dissertation §9.6). */
export interface MsgVote extends MsgBase {
  readonly type: "MsgVote" | "MsgPreVote";
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set for a leadership transfer (§3.10): voters ignore their leader lease. */
  readonly transfer: boolean;
}

/** RequestVote and PreVote replies. */
export interface MsgVoteResp extends MsgBase {
  readonly type: "MsgVoteResp" | "MsgPreVoteResp";
  readonly granted: boolean;
}

/**
 * Heartbeat (an AppendEntries without entries that does not probe the log).
 * `readContext` > 0 ties it to a ReadIndex round (§6.4).
 */
export interface MsgHeartbeat extends MsgBase {
  readonly type: "MsgHeartbeat";
  /** min(leader's commitIndex, the follower's matchIndex): never past what the follower holds. */
  readonly leaderCommit: number;
  readonly readContext: number;
}

/** Heartbeat reply, echoing the read round it answers. */
export interface MsgHeartbeatResp extends MsgBase {
  readonly type: "MsgHeartbeatResp";
  readonly readContext: number;
}

/**
 * InstallSnapshot. The core emits it with only the metadata; the driver
 * streams the snapshot's bytes and steps the same message into the
 * follower's core once the whole snapshot is installed. The follower answers
 * with a successful MsgAppResp at `snapshot.index`.
 *
 * The leader's core sets `snapshot.index` to its applied index (the last
 * Ready it was advanced past), or to its log's firstIndex() - 1 if that is
 * higher; the driver must send a state-machine snapshot taken at exactly
 * that index (or rewrite the metadata to the index of the snapshot it
 * sends, with its term and `configAt` membership). It reports the outcome
 * with `reportSnapshot`.
 */
export interface MsgSnap extends MsgBase {
  readonly type: "MsgSnap";
  readonly snapshot: SnapshotMeta;
}

/** TimeoutNow (§3.10): the target starts an election at once. */
export interface MsgTimeoutNow extends MsgBase {
  readonly type: "MsgTimeoutNow";
}

/** A message between members. */
export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgTimeoutNow;

/** The message type names, for tables and metrics. */
export type MessageType = Message["type"];

/** The role a member plays. A learner is a follower that does not vote. */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/**
 * A confirmed ReadIndex (§6.4): once the state machine has applied `index`,
 * a read issued with `requestId` may be served and is linearizable.
 */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/** Things the driver reports to users (status events, logs, metrics). */
export type RaftEvent =
  | { readonly type: "role"; readonly role: Role; readonly term: number; readonly leaderId: NodeId | null }
  | { readonly type: "membership"; readonly config: ConfigState }
  | { readonly type: "catch-up"; readonly id: NodeId; readonly round: number; readonly lag: number }
  | { readonly type: "catch-up-failed"; readonly id: NodeId; readonly reason: string }
  | { readonly type: "transfer-aborted"; readonly to: NodeId; readonly reason: string }
  | { readonly type: "read-failed"; readonly requestId: number; readonly reason: string }
  | { readonly type: "removed" };

/**
 * What the core hands its driver. The driver must, in this order of effect:
 *  1. persist `snapshot` (if any: reset the log to it), then truncate and
 *     append `entries` (the first entry's index may be <= the stored last
 *     index: everything from there on is replaced), and persist `hardState`;
 *  2. send `messages` at once: they do not depend on this Ready's writes
 *     (a leader's AppendEntries may go out while its own write is in flight,
 *     §10.2.1);
 *  3. send `persistedMessages` only after step 1 is durable (votes and
 *     AppendEntries acknowledgements: "saved to stable storage BEFORE
 *     messages are sent");
 *  4. apply `committedEntries` in order (only "normal" ones reach the user's
 *     state machine); they are always already durable locally;
 *  5. serve the reads in `readStates` once their index is applied;
 *  6. call `advance(ready)` once step 1 is durable. Several Readys may be
 *     outstanding (writes pipelined), but they must be advanced in order.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  /**
   * The membership in force changed (appended, truncated or installed
   * config). Persist it atomically with step 1. Several changes may be
   * folded into one Ready (only the last is given here), so a driver that
   * keeps the history `RaftInit.configs` needs should derive it from the
   * "config" entries in `entries` (dropping those at or after the first
   * entry's index) and from `snapshot.membership`.
   */
  readonly config: ConfigState | null;
  readonly messages: readonly Message[];
  readonly persistedMessages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly events: readonly RaftEvent[];
}

/**
 * Read access to the durable log, implemented by the storage layer (and by
 * an in-memory log in the simulator). Synchronous on purpose: the core stays
 * free of `async`; the storage answers from its in-memory index and a
 * positional read.
 *
 * The core never asks for an index outside [firstIndex() - 1, lastIndex()],
 * and `term(firstIndex() - 1)` is the snapshot's term.
 */
export interface LogReader {
  /** The first index still held; snapshot.index + 1. */
  firstIndex(): number;
  /** The last index durably stored (0 for an empty log). */
  lastIndex(): number;
  /** The term of the entry at `index`; `index = firstIndex() - 1` answers the snapshot's term. */
  term(index: number): number;
  /** Entries in [lo, hi), at least one if lo < hi, stopping before `maxBytes` of data is passed. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}

/** Tunables of the core. Time is counted in ticks, never in milliseconds. */
export interface RaftConfig {
  readonly id: NodeId;
  /** Election timeout base in ticks; the real timeout is random in [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  /** Heartbeat interval in ticks. Invariant: heartbeatTicks < electionTicks. */
  readonly heartbeatTicks: number;
  /** Seed of the core's own deterministic PRNG (randomized election timeouts). */
  readonly randomSeed: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** At most this many AppendEntries messages in flight to one follower. */
  readonly maxInflightMsgs: number;
  /** At most this many bytes of entries in flight to one follower. */
  readonly maxInflightBytes: number;
  /** At most this many bytes of entry data in one AppendEntries. */
  readonly maxMsgBytes: number;
  /** A learner is promoted after a catch-up round shorter than electionTicks; give up after this many rounds. */
  readonly catchUpRoundsMax: number;
}

/** Where a restarted (or new) core begins. */
export interface RaftInit {
  readonly config: RaftConfig;
  readonly log: LogReader;
  readonly hardState: HardState;
  /** The compaction point (index 0, term 0 for a log that was never compacted). */
  readonly snapshot: SnapshotMeta;
  /**
   * Config entries in the log after `snapshot.index`, ascending: at least the
   * last one at or below the commit index and every one above it. The last
   * one is in force; earlier ones are needed when a suffix is truncated.
   */
  readonly configs: readonly ConfigState[];
  /**
   * The index the state machine has already applied (a persisted state
   * machine); committed entries are handed out from here on. Defaults to
   * `snapshot.index`. The commit index is raised to it when the durable
   * `hardState.commitIndex` lags (what was applied was committed).
   */
  readonly applied?: number;
}

/** Flow-control state of one follower, as seen by the leader. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's view of one follower (`Raft.status()`). */
export interface ProgressStatus {
  readonly id: NodeId;
  readonly matchIndex: number;
  readonly nextIndex: number;
  readonly state: ProgressState;
  /** Heard from within the current election timeout (CheckQuorum). */
  readonly recentActive: boolean;
  /** AppendEntries messages in flight. */
  readonly inflight: number;
}

/** A point-in-time picture of a core (`Raft.status()`). */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly config: ConfigState;
  readonly isLearner: boolean;
  /** Leader only; empty otherwise. */
  readonly progress: readonly ProgressStatus[];
  /** Target of a leadership transfer in progress, or null. */
  readonly transferee: NodeId | null;
  /** Index of the last config entry appended by this leader (0 if none). */
  readonly pendingConfigIndex: number;
}
