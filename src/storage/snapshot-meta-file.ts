/**
 * The compaction point file (`SNAPSHOT`): the index and term of the last
 * entry folded into a snapshot, the membership as of that index, and the
 * lowest segment sequence number still part of the log. Replaced atomically
 * (tmp + fdatasync + rename + directory fsync) before any segment it makes
 * obsolete is deleted, so a crash in between only leaves files that the next
 * open deletes.
 *
 * Content: `[magic u32 "RSN1"][length u32][index u64][term u64][minSeq u64][members][crc32c u32]`.
 *
 * @module
 */
import { StorageCorruptError } from "../errors.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { frameSmallFile, unframeSmallFile } from "./atomic-file.ts";
import { readU64, writeU64 } from "./bytes.ts";
import { decodeMembers, encodeMembers } from "./member-codec.ts";

/** The compaction point file's name. */
export const SNAPSHOT_META_FILE_NAME = "SNAPSHOT";
const _MAGIC = 0x314e5352; // "RSN1"

/** What the compaction point file holds. */
export interface CompactionPoint {
  readonly meta: SnapshotMeta;
  /** Segments with a lower sequence number are no longer part of the log (set by `installSnapshot`). */
  readonly minSeq: number;
}

/** Encodes the file's whole content. */
export function encodeCompactionPoint(p: CompactionPoint): Uint8Array {
  const members = encodeMembers(p.meta.membership);
  const payload = new Uint8Array(24 + members.length);
  writeU64(payload, 0, p.meta.index);
  writeU64(payload, 8, p.meta.term);
  writeU64(payload, 16, p.minSeq);
  payload.set(members, 24);
  return frameSmallFile(_MAGIC, payload);
}

/**
 * Decodes the file's content.
 *
 * @throws StorageCorruptError naming `file` and the offset
 */
export function decodeCompactionPoint(bytes: Uint8Array, file: string): CompactionPoint {
  const payload = unframeSmallFile(_MAGIC, bytes, file);
  if (payload.length < 28) throw new StorageCorruptError(file, 8, "payload too short");
  const index = readU64(payload, 0);
  const term = readU64(payload, 8);
  const minSeq = readU64(payload, 16);
  if (index < 0 || term < 0 || minSeq < 0 || (index > 0 && term < 1)) {
    throw new StorageCorruptError(file, 8, "index, term or sequence out of range");
  }
  const { members, end } = decodeMembers(payload, 24, file, 8);
  if (end !== payload.length) throw new StorageCorruptError(file, 8 + end, "trailing bytes after the member list");
  return { meta: { index, term, membership: members }, minSeq };
}
