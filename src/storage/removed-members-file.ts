/**
 * `DATA/REMOVED`: the ids of members whose removal this member saw commit,
 * each with the index of the committed configuration that no longer held it,
 * so that a removed member that comes back (from an old data directory, or
 * one that missed its own removal) is answered 410 Gone for good, as etcd
 * does, even after the log that recorded its removal has been compacted.
 * One small framed file, replaced atomically; JSON inside is fine here (it
 * changes only when the membership does).
 *
 * @module
 */
import * as path from "node:path";
import { StorageCorruptError } from "../errors.ts";
import { isMemberId } from "../raft/limits.ts";
import { atomicWriteFile, frameSmallFile, readSmallFile, unframeSmallFile } from "./atomic-file.ts";

/** The file's name inside the data directory. */
export const REMOVED_FILE_NAME = "REMOVED";
const _MAGIC = 0x52524d30; // "RRM0"

/** Reads the removed ids, each with the index of the configuration that removed it (empty when the file does not exist yet). @throws StorageCorruptError */
export async function readRemovedMembers(dataDir: string): Promise<Map<string, number>> {
  const bytes = await readSmallFile(dataDir, REMOVED_FILE_NAME);
  if (bytes === null) return new Map();
  const file = path.join(dataDir, REMOVED_FILE_NAME);
  const payload = unframeSmallFile(_MAGIC, bytes, file);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new StorageCorruptError(file, 8, "the removed-member list is not valid JSON");
  }
  const ok = Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2 && isMemberId(x[0]) && Number.isSafeInteger(x[1]) && (x[1] as number) >= 0);
  if (!ok) throw new StorageCorruptError(file, 8, "the removed-member list holds something other than [member id, index] pairs");
  return new Map(v as [string, number][]);
}

/** Replaces the removed ids durably (atomic replace). */
export async function writeRemovedMembers(dataDir: string, removed: ReadonlyMap<string, number>): Promise<void> {
  const payload = new TextEncoder().encode(JSON.stringify([...removed].sort((a, b) => (a[0] < b[0] ? -1 : 1))));
  await atomicWriteFile(dataDir, REMOVED_FILE_NAME, frameSmallFile(_MAGIC, payload));
}
