/**
 * The backup file (`raft snapshot save`): one state-machine snapshot as of
 * one committed index, self-describing and checked end to end.
 *
 * ```
 * [0, 8)          magic "RAFTSNAP"
 * [8, 12)         u32 format version (1)
 * [12, 16)        u32 H: length of the header
 * [16, 16+H)      header, UTF-8 JSON: index, term, members, clusterId, memberId,
 *                 payloadBytes, blockBytes, createdAt
 * [16+H, 20+H)    u32 CRC32C of bytes [0, 16+H)
 * blocks          the payload (the state machine's snapshot bytes) in blocks of
 *                 blockBytes (the last may be shorter), each followed by the
 *                 u32 CRC32C of its bytes
 * trailer (44)    "RAFTEND1", SHA-256 of the whole payload (32 bytes),
 *                 u32 CRC32C of the trailer's first 40 bytes
 * ```
 *
 * u32 values are little-endian. The total size follows from the header, so
 * a truncated file is found before a byte of the payload is trusted; a
 * flipped bit is found in the block (or header, or trailer) that holds it,
 * and every refusal names the file and the byte offset. The SHA-256 is the
 * backup's checksum as `raft snapshot status` prints it, and what a
 * restored cluster's id is derived from.
 *
 * JSON in the header is fine: it is read once per file, never on a hot path.
 *
 * @module
 */
import * as fs from "node:fs";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { BackupCorruptError } from "../errors.ts";
import { isMemberId } from "../raft/limits.ts";
import type { Member } from "../raft/types.ts";
import { readU32, writeU32 } from "./bytes.ts";
import { crc32c } from "./crc32c.ts";

/** The file's first 8 bytes. */
export const BACKUP_MAGIC = new TextEncoder().encode("RAFTSNAP");
const _TRAILER_MAGIC = new TextEncoder().encode("RAFTEND1");
/** The format version this code writes and reads. */
export const BACKUP_VERSION = 1;
/** Payload bytes per checksummed block. */
export const BACKUP_BLOCK_BYTES = 1024 * 1024;
const _HEADER_BYTES_MAX = 1024 * 1024;
const _BLOCK_BYTES_MAX = 64 * 1024 * 1024;
/** Trailer: magic, SHA-256, CRC32C. */
export const BACKUP_TRAILER_BYTES = 8 + 32 + 4;

/** What a backup says about itself. */
export interface BackupHeader {
  /** The last log index folded into the snapshot (committed on the member it came from). */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The membership as of `index`. */
  readonly members: readonly Member[];
  /** The cluster the backup was taken from. */
  readonly clusterId: string;
  /** The member that served it. */
  readonly memberId: string;
  /** Length of the state machine's snapshot. */
  readonly payloadBytes: number;
  readonly blockBytes: number;
  /** When it was taken (ISO 8601, the serving member's clock). */
  readonly createdAt: string;
}

/** What `readBackupInfo` found in a whole, undamaged file. */
export interface BackupInfo extends BackupHeader {
  readonly file: string;
  /** The file's size in bytes. */
  readonly fileBytes: number;
  /** SHA-256 of the payload, hex. */
  readonly sha256: string;
  readonly version: number;
}

/** Size of a whole backup file with this header. */
export function backupFileBytes(headerBytes: number, payloadBytes: number, blockBytes: number): number {
  return 20 + headerBytes + payloadBytes + 4 * Math.ceil(payloadBytes / blockBytes) + BACKUP_TRAILER_BYTES;
}

/** The encoded prefix: magic, version, header, CRC32C. */
export function encodeBackupHead(h: Omit<BackupHeader, "blockBytes"> & { blockBytes?: number }): Uint8Array {
  const header: BackupHeader = {
    index: h.index,
    term: h.term,
    members: h.members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })),
    clusterId: h.clusterId,
    memberId: h.memberId,
    payloadBytes: h.payloadBytes,
    blockBytes: h.blockBytes ?? BACKUP_BLOCK_BYTES,
    createdAt: h.createdAt,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(20 + json.length);
  out.set(BACKUP_MAGIC, 0);
  writeU32(out, 8, BACKUP_VERSION);
  writeU32(out, 12, json.length);
  out.set(json, 16);
  writeU32(out, 16 + json.length, crc32c(out, 0, 16 + json.length));
  return out;
}

/**
 * Streams a whole backup file: head, checksummed blocks of `payload`,
 * trailer. Throws (ending the stream short, which any reader refuses) when
 * the payload is not `payloadBytes` long.
 */
export async function* encodeBackup(h: Omit<BackupHeader, "blockBytes">, payload: AsyncIterable<Uint8Array>, blockBytes = BACKUP_BLOCK_BYTES): AsyncIterable<Uint8Array> {
  yield encodeBackupHead({ ...h, blockBytes });
  const hash = sha256.create();
  let block = new Uint8Array(Math.min(blockBytes, h.payloadBytes) + 4);
  let fill = 0;
  let total = 0;
  const flush = (): Uint8Array => {
    const out = block.subarray(0, fill + 4);
    writeU32(out, fill, crc32c(block, 0, fill));
    return out;
  };
  for await (const chunk of payload) {
    total += chunk.length;
    if (total > h.payloadBytes) throw new Error(`The snapshot is longer than the ${h.payloadBytes} bytes it declared`);
    hash.update(chunk);
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, blockBytes - fill);
      block.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === blockBytes) {
        yield flush();
        block = new Uint8Array(Math.min(blockBytes, h.payloadBytes - total + (chunk.length - at)) + 4);
        fill = 0;
      }
    }
  }
  if (total !== h.payloadBytes) throw new Error(`The snapshot is ${total} bytes, not the ${h.payloadBytes} it declared`);
  if (fill > 0) yield flush();
  const trailer = new Uint8Array(BACKUP_TRAILER_BYTES);
  trailer.set(_TRAILER_MAGIC, 0);
  trailer.set(hash.digest(), 8);
  writeU32(trailer, 40, crc32c(trailer, 0, 40));
  yield trailer;
}

/** Reads exactly `len` bytes at `pos`, or fewer at the end of the file. */
function _readAt(fd: number, pos: number, len: number): Uint8Array {
  const buf = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

function _checkHeader(v: unknown, file: string): BackupHeader {
  const bad = (what: string): never => {
    throw new BackupCorruptError(file, 16, `the header ${what}`);
  };
  if (typeof v !== "object" || v === null) return bad("is not a JSON object");
  const o = v as Record<string, unknown>;
  const int = (k: string, min: number) => {
    const x = o[k];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < min) bad(`field ${k} is not an integer >= ${min}`);
    return x as number;
  };
  const index = int("index", 0);
  const term = int("term", 0);
  const payloadBytes = int("payloadBytes", 0);
  const blockBytes = int("blockBytes", 1);
  if (blockBytes > _BLOCK_BYTES_MAX) bad(`block size ${blockBytes} is larger than ${_BLOCK_BYTES_MAX}`);
  if (!Array.isArray(o.members)) return bad("has no members list");
  const members: Member[] = [];
  for (const m of o.members as unknown[]) {
    const r = m as Record<string, unknown> | null;
    if (typeof r !== "object" || r === null || typeof r.id !== "string" || !isMemberId(r.id) || typeof r.url !== "string" || typeof r.voter !== "boolean") {
      bad("has a member without a valid id, url and voter");
    }
    members.push({ id: r!.id as string, url: r!.url as string, voter: r!.voter as boolean });
  }
  for (const k of ["clusterId", "memberId", "createdAt"]) if (typeof o[k] !== "string") bad(`field ${k} is not a string`);
  return { index, term, members, clusterId: o.clusterId as string, memberId: o.memberId as string, payloadBytes, blockBytes, createdAt: o.createdAt as string };
}

/** An opened backup file whose head was checked. */
interface _Opened {
  readonly fd: number;
  readonly header: BackupHeader;
  readonly version: number;
  readonly payloadAt: number;
  readonly fileBytes: number;
}

function _open(file: string): _Opened {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupCorruptError(file, 0, code === "ENOENT" ? "the file does not exist" : `it cannot be opened (${code ?? (err as Error).message})`);
  }
  try {
    const fileBytes = fs.fstatSync(fd).size;
    const pre = _readAt(fd, 0, 16);
    if (pre.length < 16) throw new BackupCorruptError(file, pre.length, `the file is ${fileBytes} bytes, shorter than a backup's fixed header (truncated)`);
    for (let i = 0; i < 8; i++) {
      if (pre[i] !== BACKUP_MAGIC[i]) throw new BackupCorruptError(file, i, "it does not start with RAFTSNAP: not a raft snapshot file");
    }
    const version = readU32(pre, 8);
    if (version !== BACKUP_VERSION) throw new BackupCorruptError(file, 8, `format version ${version} is not one this version reads (${BACKUP_VERSION})`);
    const h = readU32(pre, 12);
    if (h > _HEADER_BYTES_MAX) throw new BackupCorruptError(file, 12, `the header length ${h} is implausible (damaged)`);
    if (20 + h > fileBytes) {
      throw new BackupCorruptError(file, 12, `the header length ${h} (at offset 12) runs past the end of the file (${fileBytes} bytes): truncated, or the length is damaged`);
    }
    const rest = _readAt(fd, 16, h + 4);
    if (rest.length < h + 4) throw new BackupCorruptError(file, 16 + rest.length, `the file ends inside its header (${fileBytes} bytes: truncated)`);
    const head = new Uint8Array(16 + h);
    head.set(pre, 0);
    head.set(rest.subarray(0, h), 16);
    if (crc32c(head) !== readU32(rest, h)) throw new BackupCorruptError(file, 0, `the header's checksum (at offset ${16 + h}) does not match bytes 0-${15 + h}: damaged header`);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(rest.subarray(0, h)));
    } catch {
      throw new BackupCorruptError(file, 16, "the header is not valid JSON");
    }
    const header = _checkHeader(json, file);
    const expected = backupFileBytes(h, header.payloadBytes, header.blockBytes);
    if (fileBytes < expected) throw new BackupCorruptError(file, fileBytes, `the file is ${fileBytes} bytes but its header describes ${expected}: truncated at offset ${fileBytes}`);
    if (fileBytes > expected) throw new BackupCorruptError(file, expected, `the file is ${fileBytes} bytes but its header describes ${expected}: unexpected bytes from offset ${expected}`);
    return { fd, header, version, payloadAt: 20 + h, fileBytes };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * The payload of a backup, block by block, each checked against its
 * CRC32C, then the trailer's SHA-256 over all of it.
 *
 * @throws BackupCorruptError naming the file and the offset of the first damage found
 */
export async function* readBackupPayload(file: string): AsyncIterable<Uint8Array> {
  const o = _open(file);
  try {
    yield* _blocks(o, file, null);
  } finally {
    fs.closeSync(o.fd);
  }
}

function* _blocks(o: _Opened, file: string, done: ((hex: string) => void) | null): Iterable<Uint8Array> {
  const { header: h, fd } = o;
  const hash = sha256.create();
  let pos = o.payloadAt;
  for (let left = h.payloadBytes; left > 0;) {
    const n = Math.min(left, h.blockBytes);
    const b = _readAt(fd, pos, n + 4);
    if (b.length < n + 4) throw new BackupCorruptError(file, pos + b.length, "the file ends inside a block (truncated)");
    if (crc32c(b, 0, n) !== readU32(b, n)) throw new BackupCorruptError(file, pos, `the block of ${n} bytes at offset ${pos} does not match its checksum (at offset ${pos + n}): damaged data`);
    const data = b.subarray(0, n);
    hash.update(data);
    yield data;
    pos += n + 4;
    left -= n;
  }
  const t = _readAt(fd, pos, BACKUP_TRAILER_BYTES);
  if (t.length < BACKUP_TRAILER_BYTES) throw new BackupCorruptError(file, pos + t.length, "the file ends inside its trailer (truncated)");
  if (crc32c(t, 0, 40) !== readU32(t, 40)) throw new BackupCorruptError(file, pos, `the trailer at offset ${pos} does not match its checksum: damaged`);
  for (let i = 0; i < 8; i++) if (t[i] !== _TRAILER_MAGIC[i]) throw new BackupCorruptError(file, pos + i, "the trailer does not start with RAFTEND1");
  const digest = hash.digest();
  for (let i = 0; i < 32; i++) {
    if (digest[i] !== t[8 + i]) throw new BackupCorruptError(file, pos + 8, "the payload's SHA-256 does not match the trailer's: damaged data");
  }
  done?.(bytesToHex(digest));
}

/**
 * Reads and checks a whole backup file (every block, the trailer).
 *
 * @throws BackupCorruptError naming the file and the offset when it is missing, truncated, damaged or not a backup
 */
export function readBackupInfo(file: string): BackupInfo {
  const o = _open(file);
  try {
    let hex = "";
    for (const _ of _blocks(o, file, (h) => (hex = h)));
    return { ...o.header, file, fileBytes: o.fileBytes, sha256: hex, version: o.version };
  } finally {
    fs.closeSync(o.fd);
  }
}
