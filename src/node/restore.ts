/**
 * `raft snapshot restore` (etcdutl's): prepares the data directory of one
 * member of a new cluster from a backup file, with the storage classes a
 * running member uses, so the directory is what a member that had
 * installed that snapshot from a leader would hold: the snapshot in the
 * snapshot store, the log empty from the snapshot's index on (its
 * compaction point), the membership file, a state file at the backup's
 * term with the commit index at the snapshot, and the identity.
 *
 * The new cluster's id is derived from the backup's SHA-256, its index and
 * the new member list, so every member restored from the same file with the
 * same list gets the same one (and a cluster restored from another backup,
 * or with another list, a different one). The old members are forgotten:
 * the new cluster holds exactly `members`, all voters.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import type { RuntimeAdapter } from "../../adapters/types.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Member, NodeId } from "../raft/types.ts";
import { type BackupInfo, readBackupInfo, readBackupPayload } from "../storage/backup-file.ts";
import { clusterIdFor } from "./cluster-routes.ts";
import { checkMemberUrl, checkNodeId, writeIdentity } from "./identity.ts";
import { closeNodeStorage, openNodeStorage, storageIsFresh } from "./node-storage.ts";

/** Options of `restoreBackup`. */
export interface RestoreOptions {
  /** The new member's data directory: must not exist, or be empty. */
  readonly dataDir: string;
  /** This member's id (one of `members`). */
  readonly id: NodeId;
  /** The whole new cluster, the same list on every member (URLs as in `raft bootstrap`). */
  readonly members: readonly { readonly id: NodeId; readonly url: string }[];
  /** Where it will listen; default the host and port of its URL. */
  readonly host?: string;
  readonly port?: number;
  readonly runtime?: RuntimeAdapter;
}

/** What `restoreBackup` prepared. */
export interface RestoreResult {
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  readonly members: readonly Member[];
  readonly backup: BackupInfo;
}

/** The restored cluster's id (see the module comment). */
export function restoredClusterId(backup: Pick<BackupInfo, "sha256" | "index">, members: readonly Member[]): string {
  return clusterIdFor(members, `restore:${backup.sha256}:${backup.index}`);
}

function _hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port) };
}

/**
 * Prepares `opts.dataDir` for member `opts.id` of a new cluster holding the
 * state machine of the backup `file`. Then `raft start --data DIR` (or
 * `RaftNode.start({ dataDir, stateMachine })`) on every member starts the
 * cluster; a state machine with `restore()` is restored from the snapshot
 * at start.
 *
 * @throws BackupCorruptError (file and offset named) when the file is missing, truncated or damaged
 * @throws InvalidArgumentError for a non-empty directory or a bad member list
 */
export async function restoreBackup(file: string, opts: RestoreOptions): Promise<RestoreResult> {
  checkNodeId(opts.id);
  const seen = new Set<string>();
  const members: Member[] = [];
  for (const m of opts.members) {
    checkNodeId(m.id);
    checkMemberUrl(m.url);
    if (seen.has(m.id)) throw new InvalidArgumentError(`Member ${m.id} is listed twice`);
    seen.add(m.id);
    members.push({ id: m.id, url: m.url, voter: true });
  }
  const self = members.find((m) => m.id === opts.id);
  if (self === undefined) throw new InvalidArgumentError(`The member list does not include this member (${opts.id})`);
  const backup = readBackupInfo(file); // every block and the trailer checked before anything is written
  const dir = path.resolve(opts.dataDir);
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new InvalidArgumentError(`Cannot use ${dir} as a data directory: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw new InvalidArgumentError(`Data directory ${dir} is not empty; restore into a new or empty directory`);
  fs.mkdirSync(dir, { recursive: true });
  const clusterId = restoredClusterId(backup, members);
  const meta = { index: backup.index, term: backup.term, membership: members };
  const lock = (opts.runtime ?? defaultRuntime).lockDir(dir);
  try {
    const storage = await openNodeStorage(dir);
    try {
      if (!storageIsFresh(storage)) throw new InvalidArgumentError(`Data directory ${dir} already holds a log; use an empty directory`);
      // The same order as installing a snapshot from a leader: the data durable first, then the log reset to it.
      await storage.snapshots.write(meta, readBackupPayload(file));
      await storage.log.installSnapshot(meta);
      await storage.membership.write({ index: backup.index, members });
      await storage.state.write({ term: backup.term, votedFor: null, commitIndex: backup.index });
      await storage.state.flush();
    } finally {
      await closeNodeStorage(storage);
    }
    const hp = opts.host !== undefined && opts.port !== undefined ? { host: opts.host, port: opts.port } : _hostPort(self.url);
    // The identity last: a directory without one was not restored completely (restore again into an empty one).
    await writeIdentity(dir, { id: opts.id, url: self.url, host: opts.host ?? hp.host, port: opts.port ?? hp.port, clusterId });
  } finally {
    lock.release();
  }
  return { clusterId, index: backup.index, term: backup.term, members, backup };
}
