/**
 * Recovery after losing quorum (etcd's `--force-new-cluster`, hashicorp's
 * `RecoverCluster`): rewrites a surviving member's storage so that it
 * starts as the only voter of its cluster, with everything it knows to be
 * committed. UNSAFE by design: it overrides the majority rule.
 *
 * What is kept: the log up to the highest index this member knows to be
 * committed, which is the largest of the state file's durable commit index,
 * the log's compaction point (compaction never passes the applied index),
 * the newest stored snapshot that agrees with the log, and the state
 * machine's own `lastApplied()` (applied means committed). What is dropped:
 * every entry after that, which may hold entries the old cluster had
 * committed after this member last wrote its commit index (it writes it
 * lazily, at most a second apart, and on a clean stop) and entries never
 * committed at all: this member cannot tell them apart, and keeping an
 * entry that was never committed could revive a write whose client was
 * told it failed (etcd drops them too).
 *
 * When the newest configuration in the log already names this member as
 * its only voter, every entry it holds is committed and nothing is dropped:
 * running it again (or on a member that always was alone) changes nothing.
 *
 * How: one "config" entry appended right after the kept index (at the
 * current term; `append` truncates the tail) naming this member as the only
 * voter, the state file's commit index moved onto it, the membership file
 * rewritten, and the removed members recorded in `REMOVED` so that they are
 * refused (410) if they come back with their old data. All durable before
 * the member starts, so a later plain restart stays a one-member cluster;
 * running it again finds nothing to do.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { decodeMembership, encodeMembership } from "../raft/membership-codec.ts";
import type { Member, NodeId } from "../raft/types.ts";
import { readRemovedMembers, writeRemovedMembers } from "../storage/removed-members-file.ts";
import { type NodeStorage, restorableSnapshot } from "./node-storage.ts";

/** What `forceNewCluster` did. */
export interface ForcedCluster {
  /** The last index kept (known committed). */
  readonly keptThrough: number;
  /** Entries dropped after it, and their range (null when none). */
  readonly dropped: number;
  readonly droppedRange: readonly [number, number] | null;
  /** Members no longer in the configuration. */
  readonly removed: readonly Member[];
  /** The index of the one-member configuration entry (null when nothing had to change). */
  readonly configIndex: number | null;
}

/**
 * Makes `storage` the storage of a one-member cluster of `self` (see the
 * module comment). `stateMachineApplied` is the state machine's own
 * `lastApplied()` (0 for one kept in memory).
 *
 * @throws InvalidArgumentError when this member is not in its own configuration
 */
export async function forceNewCluster(storage: NodeStorage, self: { readonly id: NodeId; readonly url: string }, stateMachineApplied: number, logger: (line: string) => void): Promise<ForcedCluster> {
  const log = storage.log;
  const hs = storage.state.read();
  const compacted = log.snapshotMeta();
  const snap = restorableSnapshot(storage);
  const last = log.lastIndex();
  // When the newest configuration in the log already has this member as its only voter (a cluster forced
  // before, or one that always had one member), every entry it holds is committed: a sole voter commits
  // what it made durable, and a committed entry commits every entry before it.
  const configs = log.configs();
  const newest = configs.length > 0 ? decodeMembership(configs[configs.length - 1]!.data) : compacted.membership;
  const aloneAlready = newest.length === 1 && newest[0]!.id === self.id && newest[0]!.voter;
  const keep = aloneAlready ? last : Math.min(last, Math.max(hs.commitIndex, compacted.index, snap?.meta.index ?? 0, stateMachineApplied));
  // The configuration in force at `keep`: the last config entry at or before it, else the compaction point's.
  let members: readonly Member[] = compacted.membership;
  for (const c of configs) if (c.index <= keep) members = decodeMembership(c.data);
  const me = members.find((m) => m.id === self.id);
  if (me === undefined) {
    throw new InvalidArgumentError(
      `--force-new-cluster: member ${self.id} is not in its own configuration (${members.map((m) => m.id).join(", ") || "none"}) as of index ${keep}; ` +
        "recover from a member that was a voter, or restore a backup (raft snapshot restore)",
    );
  }
  const removed = members.filter((m) => m.id !== self.id);
  const dropped = last - keep;
  if (removed.length === 0 && me.voter && dropped === 0) {
    logger(`--force-new-cluster: ${self.id} is already the only voter and holds no uncommitted entries; nothing to change`);
    return { keptThrough: keep, dropped: 0, droppedRange: null, removed: [], configIndex: null };
  }
  const sole: Member[] = [{ id: self.id, url: me.url, voter: true }];
  const configIndex = keep + 1;
  logger(
    `WARNING --force-new-cluster: making ${self.id} the only voter of its cluster, overriding the majority rule. ` +
      `Kept the log through index ${keep} (durable commit index ${hs.commitIndex}, compaction point ${compacted.index}` +
      `${snap === null ? "" : `, snapshot ${snap.meta.index}`}${stateMachineApplied > 0 ? `, state machine applied ${stateMachineApplied}` : ""}); ` +
      (dropped > 0
        ? `DROPPED ${dropped} entr${dropped === 1 ? "y" : "ies"} ${keep + 1}..${last} not known to be committed (writes the old cluster committed after this member last saved its commit index are among them, if any); `
        : "dropped no entries; ") +
      (removed.length > 0 ? `REMOVED members ${removed.map((m) => `${m.id} (${m.url})`).join(", ")}. ` : "") +
      "Add members afresh (new ids, empty data directories) with raft start --join",
  );
  // `append` at keep + 1 truncates the tail first; the term is the current one (>= every term in the log).
  const term = Math.max(hs.term, keep === compacted.index ? compacted.term : log.term(keep), 1);
  await log.append([{ index: configIndex, term, type: "config", data: encodeMembership(sole) }]);
  await storage.membership.write({ index: configIndex, members: sole });
  await storage.state.write({ term, votedFor: term === hs.term ? hs.votedFor : null, commitIndex: configIndex });
  await storage.state.flush();
  if (removed.length > 0) {
    const known = await readRemovedMembers(storage.dir);
    for (const m of removed) known.set(m.id, configIndex);
    await writeRemovedMembers(storage.dir, known);
  }
  return { keptThrough: keep, dropped, droppedRange: dropped > 0 ? [keep + 1, last] : null, removed, configIndex };
}
