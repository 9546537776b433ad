/**
 * The membership file: the configuration in force (dissertation §4.1: a
 * server uses the latest configuration in its log, committed or not), kept
 * in a small file replaced atomically as the seed describes: write
 * `MEMBERSHIP.tmp`, fdatasync it, rename it over `MEMBERSHIP`, fsync the
 * directory through a handle kept open for the file's lifetime. A crash at
 * any point leaves the whole old or the whole new file.
 *
 * Content: `[magic u32 "RMB1"][length u32][index u64][members][crc32c u32]`.
 *
 * @module
 */
import path from "node:path";
import type { ConfigState } from "../raft/types.ts";
import { atomicWriteFile, frameSmallFile, readSmallFile, TMP_SUFFIX, unframeSmallFile } from "./atomic-file.ts";
import { readU64, writeU64 } from "./bytes.ts";
import { nodeFileLayer } from "./file-layer.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";
import { decodeMembers, encodeMembers } from "./member-codec.ts";
import { Poison } from "./poison.ts";
import { StorageCorruptError } from "../errors.ts";

/** The membership file's name inside the data directory. */
export const MEMBERSHIP_FILE_NAME = "MEMBERSHIP";
const _MAGIC = 0x31424d52; // "RMB1"

/** Encodes a `ConfigState` as the membership file's whole content. */
export function encodeMembershipFile(c: ConfigState): Uint8Array {
  const members = encodeMembers(c.members);
  const payload = new Uint8Array(8 + members.length);
  writeU64(payload, 0, c.index);
  payload.set(members, 8);
  return frameSmallFile(_MAGIC, payload);
}

/**
 * Decodes the membership file's content.
 *
 * @throws StorageCorruptError naming `file` and the offset
 */
export function decodeMembershipFile(bytes: Uint8Array, file: string): ConfigState {
  const payload = unframeSmallFile(_MAGIC, bytes, file);
  const index = readU64(payload, 0);
  if (index < 0) throw new StorageCorruptError(file, 8, "index is not a safe integer");
  const { members, end } = decodeMembers(payload, 8, file, 8);
  if (end !== payload.length) throw new StorageCorruptError(file, 8 + end, "trailing bytes after the member list");
  return { index, members };
}

/** The durable record of the membership in force. */
export class MembershipFile {
  readonly #dir: string;
  readonly #fs: FileLayer;
  /** Kept open so every replace can fsync the directory (the seed's advice). */
  readonly #dirHandle: FileHandle;
  readonly #poison = new Poison("The membership file");
  #current: ConfigState | null;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(dir: string, fs: FileLayer, dirHandle: FileHandle, current: ConfigState | null) {
    this.#dir = dir;
    this.#fs = fs;
    this.#dirHandle = dirHandle;
    this.#current = current;
  }

  /**
   * Opens the membership file in `dir` (which need not hold one yet). A
   * leftover `MEMBERSHIP.tmp` from a crashed replace is deleted: the rename
   * never happened, so the old file is the truth.
   *
   * @throws StorageCorruptError if the file exists but does not check out
   * @throws StorageFailedError if the disk fails
   */
  static async open(dir: string, fs: FileLayer = nodeFileLayer): Promise<MembershipFile> {
    await fs.mkdir(dir);
    const names = await fs.readdir(dir);
    const dirHandle = await fs.openDir(dir);
    try {
      if (names.includes(MEMBERSHIP_FILE_NAME + TMP_SUFFIX)) {
        await fs.unlink(path.join(dir, MEMBERSHIP_FILE_NAME + TMP_SUFFIX));
        await fs.fsyncDir(dirHandle);
      }
      const bytes = await readSmallFile(dir, MEMBERSHIP_FILE_NAME, fs);
      const current = bytes === null ? null : decodeMembershipFile(bytes, path.join(dir, MEMBERSHIP_FILE_NAME));
      return new MembershipFile(dir, fs, dirHandle, current);
    } catch (err) {
      await fs.close(dirHandle);
      throw err;
    }
  }

  /** The membership last written, or null if none ever was. */
  read(): ConfigState | null {
    this.#poison.check();
    return this.#current;
  }

  /**
   * Atomically replaces the file with `c`; durable when resolved.
   *
   * @throws InvalidArgumentError if an id or URL is too long
   * @throws StorageFailedError if the disk fails; the store stops
   */
  write(c: ConfigState): Promise<void> {
    const run = this.#queue.then(() =>
      this.#poison.guard(async () => {
        const bytes = encodeMembershipFile(c);
        await atomicWriteFile(this.#dir, MEMBERSHIP_FILE_NAME, bytes, this.#fs, this.#dirHandle);
        this.#current = { index: c.index, members: c.members.map((m) => ({ ...m })) };
      })
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the directory handle. Later calls fail with `ClosedError`. */
  async close(): Promise<void> {
    await this.#queue;
    this.#poison.close();
    await this.#fs.close(this.#dirHandle);
  }
}
