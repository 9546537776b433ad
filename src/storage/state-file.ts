/**
 * The state file: Raft's persistent `currentTerm` and `votedFor` (Figure 2),
 * plus the highest index known to be committed.
 *
 * Layout: 1024 bytes, two 512-byte slots written alternately, in place (the
 * file's size never changes after creation). Each slot holds one record
 * framed as the seed asks, `[length u32][data][crc32c u32]`, then zeros:
 *
 *     data = [magic u32 "RSF1"][seq u64][term u64][commitIndex u64][idLen u8][votedFor utf-8]
 *
 * A write smaller than a sector that does not change the file's size is
 * usually atomic, but not always: a torn write could destroy the only copy.
 * With two slots a write only ever touches the slot that does NOT hold the
 * newest durable record, so a torn write loses at most the new state, which
 * was never acknowledged. Reading takes the valid slot with the highest
 * sequence number; a file with no valid slot is corruption, never "start
 * fresh" (that could vote twice in one term, §5.2).
 *
 * A change of term or vote is made durable (fdatasync) before `write`
 * resolves. A change of only the commit index is written without fdatasync
 * (lazily): losing it only means replaying less on restart, and the next
 * durable write or `close` carries it to disk.
 *
 * @module
 */
import path from "node:path";
import { InvalidArgumentError, StorageCorruptError } from "../errors.ts";
import type { HardState } from "../raft/types.ts";
import { atomicWriteFile, TMP_SUFFIX } from "./atomic-file.ts";
import { assert, readU32, readU64, utf8Decoder, utf8Encoder, writeU32, writeU64 } from "./bytes.ts";
import { crc32c } from "./crc32c.ts";
import { nodeFileLayer } from "./file-layer.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";
import { MEMBER_ID_BYTES_MAX } from "./member-codec.ts";
import { Poison } from "./poison.ts";

/** The state file's name inside the data directory. */
export const STATE_FILE_NAME = "STATE";
/** Size of one slot: a record never crosses a 512-byte sector. */
export const STATE_SLOT_BYTES = 512;
const _FILE_BYTES = 2 * STATE_SLOT_BYTES;
const _MAGIC = 0x31465352; // "RSF1" little-endian
const _DATA_FIXED_BYTES = 4 + 8 + 8 + 8 + 1;

/** A decoded slot. */
interface _Slot {
  readonly seq: number;
  readonly state: HardState;
}

/**
 * Encodes one slot (exactly `STATE_SLOT_BYTES` bytes, zero padded).
 * Exported for tests that tear slots at every byte offset.
 */
export function encodeStateSlot(seq: number, hs: HardState): Uint8Array {
  const id = hs.votedFor === null ? new Uint8Array(0) : utf8Encoder.encode(hs.votedFor);
  assert(id.length <= MEMBER_ID_BYTES_MAX, "votedFor id fits in a slot");
  const dataLen = _DATA_FIXED_BYTES + id.length;
  const slot = new Uint8Array(STATE_SLOT_BYTES);
  writeU32(slot, 0, dataLen);
  writeU32(slot, 4, _MAGIC);
  writeU64(slot, 8, seq);
  writeU64(slot, 16, hs.term);
  writeU64(slot, 24, hs.commitIndex);
  slot[32] = hs.votedFor === null ? 0 : id.length;
  slot.set(id, 33);
  writeU32(slot, 4 + dataLen, crc32c(slot, 0, 4 + dataLen));
  return slot;
}

/** Decodes a slot, or returns null if it does not hold a valid record (torn, never written, or corrupt). */
function _decodeSlot(slot: Uint8Array): _Slot | null {
  const dataLen = readU32(slot, 0);
  if (dataLen < _DATA_FIXED_BYTES || dataLen > _DATA_FIXED_BYTES + MEMBER_ID_BYTES_MAX) return null;
  if (crc32c(slot, 0, 4 + dataLen) !== readU32(slot, 4 + dataLen)) return null;
  if (readU32(slot, 4) !== _MAGIC) return null;
  const seq = readU64(slot, 8);
  const term = readU64(slot, 16);
  const commitIndex = readU64(slot, 24);
  const idLen = slot[32]!;
  if (seq < 1 || term < 0 || commitIndex < 0 || _DATA_FIXED_BYTES + idLen !== dataLen) return null;
  let votedFor: string | null = null;
  if (idLen > 0) {
    try {
      votedFor = utf8Decoder.decode(slot.subarray(33, 33 + idLen));
    } catch {
      return null;
    }
  }
  return { seq, state: { term, votedFor, commitIndex } };
}

/** The durable `HardState` of one member. */
export class StateFile {
  readonly #fs: FileLayer;
  readonly #file: FileHandle;
  readonly #poison = new Poison("The state file");
  /** The newest state written (durably or lazily). */
  #state: HardState;
  /** Sequence number of the newest record written. Invariant: strictly increases with every write. */
  #seq: number;
  /** The slot (0 or 1) holding the newest durable record. Invariant: writes only ever go to the other slot. */
  #durableSlot: number;
  /** True while a commit-index-only change is written but not yet fdatasynced. */
  #lazyPending = false;
  /** Serializes writes: each waits for the previous one. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(fs: FileLayer, file: FileHandle, slot: number, decoded: _Slot) {
    this.#fs = fs;
    this.#file = file;
    this.#durableSlot = slot;
    this.#seq = decoded.seq;
    this.#state = decoded.state;
  }

  /**
   * Opens (or creates, in a fresh directory) the state file in `dir`.
   *
   * @throws StorageCorruptError if the file exists but no slot holds a valid record, or its size is wrong
   * @throws StorageFailedError if the disk fails
   */
  static async open(dir: string, fs: FileLayer = nodeFileLayer): Promise<StateFile> {
    await fs.mkdir(dir);
    const names = await fs.readdir(dir);
    const filePath = path.join(dir, STATE_FILE_NAME);
    if (names.includes(STATE_FILE_NAME + TMP_SUFFIX)) await fs.unlink(filePath + TMP_SUFFIX);
    if (!names.includes(STATE_FILE_NAME)) {
      // Created whole through tmp + rename, so an existing STATE file always
      // held a valid first record: its absence means a fresh directory.
      const initial = new Uint8Array(_FILE_BYTES);
      initial.set(encodeStateSlot(1, { term: 0, votedFor: null, commitIndex: 0 }), 0);
      await atomicWriteFile(dir, STATE_FILE_NAME, initial, fs);
    }
    const file = await fs.open(filePath, "readwrite");
    try {
      const size = fs.size(file);
      if (size !== _FILE_BYTES) {
        throw new StorageCorruptError(filePath, Math.min(size, _FILE_BYTES), `the state file is ${size} bytes, expected ${_FILE_BYTES}`);
      }
      const bytes = new Uint8Array(_FILE_BYTES);
      fs.pread(file, bytes, 0);
      const a = _decodeSlot(bytes.subarray(0, STATE_SLOT_BYTES));
      const b = _decodeSlot(bytes.subarray(STATE_SLOT_BYTES));
      if (a === null && b === null) {
        throw new StorageCorruptError(filePath, 0, "neither of the two state slots holds a valid record");
      }
      const slot = b === null || (a !== null && a.seq > b.seq) ? 0 : 1;
      const newest = (slot === 0 ? a : b)!;
      // What was read may still sit only in the page cache (a process crash
      // leaves it there): make it durable before writing the other slot.
      await fs.fdatasync(file);
      return new StateFile(fs, file, slot, newest);
    } catch (err) {
      await fs.close(file);
      throw err;
    }
  }

  /**
   * The newest state written.
   *
   * @throws the store's fatal error if it has stopped
   */
  read(): HardState {
    this.#poison.check();
    return this.#state;
  }

  /**
   * Writes `hs`. Resolves when it is durable, except that a change of only
   * `commitIndex` is written without fdatasync (see the module comment).
   *
   * @throws InvalidArgumentError if `hs` breaks Raft's rules: the term went
   *   back, the vote changed within a term, the commit index went back, or
   *   the id is longer than 255 bytes
   * @throws StorageFailedError if the disk fails; the store stops
   */
  write(hs: HardState): Promise<void> {
    const run = this.#queue.then(() => this.#poison.guard(() => this.#write(hs)));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Makes a lazily written commit index durable. */
  flush(): Promise<void> {
    const run = this.#queue.then(() => this.#poison.guard(() => this.#flush()));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Flushes and closes the file. Later calls fail with `ClosedError`. */
  async close(): Promise<void> {
    await this.#queue;
    try {
      if (this.#poison.error === null) await this.#flush();
    } finally {
      this.#poison.close();
      await this.#fs.close(this.#file);
    }
  }

  async #flush(): Promise<void> {
    if (!this.#lazyPending) return;
    await this.#fs.fdatasync(this.#file);
    this.#lazyPending = false;
    this.#durableSlot = 1 - this.#durableSlot;
  }

  async #write(hs: HardState): Promise<void> {
    const cur = this.#state;
    for (const [name, v] of [["term", hs.term], ["commitIndex", hs.commitIndex]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`HardState.${name} must be a non-negative safe integer, got ${v}`);
    }
    if (hs.term < cur.term) throw new InvalidArgumentError(`HardState.term must not go back (from ${cur.term} to ${hs.term})`);
    if (hs.term === cur.term && cur.votedFor !== null && hs.votedFor !== cur.votedFor) {
      throw new InvalidArgumentError(`The vote of term ${hs.term} was already cast for ${cur.votedFor}; it cannot change to ${hs.votedFor}`);
    }
    if (hs.commitIndex < cur.commitIndex) {
      throw new InvalidArgumentError(`HardState.commitIndex must not go back (from ${cur.commitIndex} to ${hs.commitIndex})`);
    }
    if (hs.votedFor !== null) {
      const len = utf8Encoder.encode(hs.votedFor).length;
      if (len === 0 || len > MEMBER_ID_BYTES_MAX) throw new InvalidArgumentError(`votedFor must be 1 to ${MEMBER_ID_BYTES_MAX} bytes of UTF-8`);
    }
    const durable = hs.term !== cur.term || hs.votedFor !== cur.votedFor;
    if (!durable && hs.commitIndex === cur.commitIndex) return;
    const slot = 1 - this.#durableSlot;
    const seq = this.#seq + 1;
    await this.#fs.pwrite(this.#file, encodeStateSlot(seq, hs), slot * STATE_SLOT_BYTES);
    this.#seq = seq;
    this.#state = { term: hs.term, votedFor: hs.votedFor, commitIndex: hs.commitIndex };
    this.#lazyPending = true;
    if (durable) await this.#flush();
  }
}
