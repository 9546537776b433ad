/**
 * A member's durable state, opened together and checked for agreement
 * before anything runs on it: the state file (term, vote, commit index),
 * the segmented log, the membership file and the snapshot store, all on one
 * `FileLayer` (the real disk, or the simulator's).
 *
 * What must agree, and what a disagreement means (each is refused with the
 * file named, never repaired by guessing):
 *  - a data directory that holds a log, a membership or an identity holds a
 *    state file: without one the member would start at term 0 with no vote
 *    and could vote twice in a term it already voted in (§5.2);
 *  - the commit index is within the log: the state file is written only
 *    after the entries it counts are durable (`./ready-loop.ts`), so a
 *    commit index past the last entry means lost or foreign files. Clamping
 *    it would hand uncommitted entries to the state machine;
 *  - a stored snapshot is usable only where it agrees with the log: at the
 *    compaction point with its term, or at an entry of the log with that
 *    entry's term. One that does not (adopted from a leader just before a
 *    crash, before the log was reset to it) was never installed and is
 *    removed; restoring it would put the state machine ahead of the log.
 *
 * @module
 */
import path from "node:path";
import { StorageCorruptError } from "../errors.ts";
import type { Member } from "../raft/types.ts";
import type { FileLayer } from "../storage/file-layer.ts";
import { nodeFileLayer } from "../storage/file-layer.ts";
import { MEMBERSHIP_FILE_NAME, MembershipFile } from "../storage/membership-file.ts";
import { SegmentedLog } from "../storage/segmented-log.ts";
import { SnapshotStore, type StoredSnapshot } from "../storage/snapshot-store.ts";
import { STATE_FILE_NAME, StateFile } from "../storage/state-file.ts";
import { IDENTITY_FILE_NAME } from "./identity.ts";

/** The log's directory inside the data directory. */
export const LOG_DIR_NAME = "log";

/** The durable state of one member (see the module comment). */
export interface NodeStorage {
  /** The data directory (absolute). */
  readonly dir: string;
  readonly fs: FileLayer;
  readonly state: StateFile;
  readonly log: SegmentedLog;
  readonly membership: MembershipFile;
  readonly snapshots: SnapshotStore;
}

/** Options of `openNodeStorage`. */
export interface OpenStorageOptions {
  readonly fs?: FileLayer;
  readonly logger?: (line: string) => void;
  readonly segmentBytesMax?: number;
  /** The log's `writeThrough` (default true; false where the runtime's file writes block: `RuntimeAdapter.fileWritesBlock`). */
  readonly writeThrough?: boolean;
}

/**
 * Opens and checks the durable state in `dir` (created empty if new).
 *
 * @throws StorageCorruptError naming the file when the parts disagree (see the module comment) or one is damaged
 * @throws StorageFailedError if the disk fails
 */
export async function openNodeStorage(dir: string, opts: OpenStorageOptions = {}): Promise<NodeStorage> {
  const fs = opts.fs ?? nodeFileLayer;
  const logger = opts.logger ?? (() => {});
  await fs.mkdir(dir);
  const names = await fs.readdir(dir);
  if (!names.includes(STATE_FILE_NAME)) {
    const holds = [IDENTITY_FILE_NAME, MEMBERSHIP_FILE_NAME].filter((n) => names.includes(n));
    if (names.includes(LOG_DIR_NAME) && (await fs.readdir(path.join(dir, LOG_DIR_NAME))).length > 0) holds.push(`${LOG_DIR_NAME}/`);
    if (holds.length > 0) {
      throw new StorageCorruptError(
        path.join(dir, STATE_FILE_NAME),
        0,
        `the state file is missing, but the directory holds ${holds.join(", ")}: starting at term 0 with no vote could vote twice in one term. ` +
          "Put the file back from a backup, or remove the whole directory and add the member again",
      );
    }
  }
  const opened: { close(): Promise<void> }[] = [];
  try {
    const state = await StateFile.open(dir, fs);
    opened.push(state);
    const hs = state.read();
    const logDir = path.join(dir, LOG_DIR_NAME);
    const log = await SegmentedLog.open(logDir, {
      fs,
      commitIndex: hs.commitIndex,
      logger,
      ...(opts.segmentBytesMax === undefined ? {} : { segmentBytesMax: opts.segmentBytesMax }),
      ...(opts.writeThrough === undefined ? {} : { writeThrough: opts.writeThrough }),
    });
    opened.push(log);
    if (hs.commitIndex > log.lastIndex()) {
      throw new StorageCorruptError(
        path.join(dir, STATE_FILE_NAME),
        0,
        `the commit index ${hs.commitIndex} is beyond the last entry (${log.lastIndex()}) of the log in ${logDir}: ` +
          "the log lost entries it had made durable, or the files come from different directories",
      );
    }
    const membership = await MembershipFile.open(dir, fs);
    opened.push(membership);
    const snapshots = await SnapshotStore.open(dir, fs);
    const storage: NodeStorage = { dir, fs, state, log, membership, snapshots };
    for (const s of [...snapshots.list()]) {
      if (snapshotAgrees(storage, s) || s.meta.index < log.snapshotMeta().index) continue;
      logger(`removed snapshot ${s.meta.index} (term ${s.meta.term}): it was received but never installed (the log does not hold it)`);
      await snapshots.remove(s);
    }
    await snapshots.prune(log.snapshotMeta().index);
    return storage;
  } catch (err) {
    for (const f of opened.reverse()) await f.close().catch(() => {});
    throw err;
  }
}

/** Closes every file (the log and state file wait for queued writes). */
export async function closeNodeStorage(s: NodeStorage): Promise<void> {
  await s.log.close().catch(() => {});
  await s.state.close().catch(() => {});
  await s.membership.close().catch(() => {});
}

/** Whether a stored snapshot agrees with the log: at the compaction point with its term, or at an entry with that entry's term. */
export function snapshotAgrees(s: NodeStorage, snap: StoredSnapshot): boolean {
  const c = s.log.snapshotMeta();
  const i = snap.meta.index;
  if (i === c.index) return snap.meta.term === c.term;
  return i > c.index && i <= s.log.lastIndex() && s.log.term(i) === snap.meta.term;
}

/** The newest stored snapshot a state machine may be restored from, or null. */
export function restorableSnapshot(s: NodeStorage): StoredSnapshot | null {
  const all = s.snapshots.list();
  for (let k = all.length - 1; k >= 0; k--) if (snapshotAgrees(s, all[k]!)) return all[k]!;
  return null;
}

/** True when the storage holds no member yet (a fresh directory). */
export function storageIsFresh(s: NodeStorage): boolean {
  return s.log.lastIndex() === 0 && s.log.snapshotMeta().membership.length === 0;
}

/** Records the initial membership of a new cluster: the log's starting point and the membership file. */
export async function bootstrapStorage(s: NodeStorage, members: readonly Member[]): Promise<void> {
  await s.log.installSnapshot({ index: 0, term: 0, membership: members });
  await s.membership.write({ index: 0, members });
}
