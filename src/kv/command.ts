/**
 * The KV store's commands as they travel through the Raft log: a compact
 * binary encoding (no JSON on the write path), decoded on every member by
 * `KvStateMachine.apply`.
 *
 * Layout (lengths are unsigned LEB128 varints):
 * ```
 * byte 0     op (low nibble: 1 put, 2 del, 3 cas) | flags (0x10: has an idempotency key, 0x20: cas expects a value)
 * [varint n, n bytes]   idempotency key (flag 0x10)
 * varint n, n bytes     key (UTF-8)
 * put:  the value: every remaining byte
 * del:  nothing (trailing bytes are garbage)
 * cas:  [varint n, n bytes] the expected value (flag 0x20; absent: "expect the key to be absent"), then the new value: every remaining byte
 * ```
 * The value runs to the end of the buffer, so a 100-byte put costs 100 +
 * key + 2 bytes. Decoding is strict: anything else is rejected with a
 * reason, and every member rejects the same bytes the same way.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";

/** Hard ceilings of the encoding, independent of any member's configured limits (so apply is deterministic). */
export const KEY_BYTES_HARD_MAX = 64 * 1024;
/** Longest idempotency key the encoding carries. */
export const IDEMPOTENCY_KEY_BYTES_MAX = 256;

const OP_PUT = 1;
const OP_DEL = 2;
const OP_CAS = 3;
const FLAG_IDEMPOTENCY = 0x10;
const FLAG_EXPECT = 0x20;
const FLAGS_ALL = FLAG_IDEMPOTENCY | FLAG_EXPECT;

/** A decoded command. Byte arrays are copies: they never alias the log entry's buffer. */
export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array; readonly idempotencyKey: string | null }
  | { readonly op: "del"; readonly key: string; readonly idempotencyKey: string | null }
  | {
    readonly op: "cas";
    readonly key: string;
    /** null: succeed only if the key is absent. */
    readonly expect: Uint8Array | null;
    readonly value: Uint8Array;
    readonly idempotencyKey: string | null;
  };

const _utf8 = new TextEncoder();
const _utf8Strict = new TextDecoder("utf-8", { fatal: true });

function _varintBytes(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

function _putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Encodes a command for `RaftNodeApi.propose`.
 * @throws InvalidArgumentError if the key or idempotency key is empty or past the encoding's ceilings.
 */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  const key = _utf8.encode(cmd.key);
  if (key.length === 0) throw new InvalidArgumentError("The key is empty; give a key of at least one byte");
  if (key.length > KEY_BYTES_HARD_MAX) throw new InvalidArgumentError(`The key is ${key.length} bytes; the most is ${KEY_BYTES_HARD_MAX}`);
  const idem = cmd.idempotencyKey === null ? null : _utf8.encode(cmd.idempotencyKey);
  if (idem !== null && (idem.length === 0 || idem.length > IDEMPOTENCY_KEY_BYTES_MAX)) {
    throw new InvalidArgumentError(`The idempotency key is ${idem.length} bytes; give 1 to ${IDEMPOTENCY_KEY_BYTES_MAX}`);
  }
  const expect = cmd.op === "cas" ? cmd.expect : null;
  const value = cmd.op === "del" ? null : cmd.value;

  let size = 1 + _varintBytes(key.length) + key.length;
  if (idem !== null) size += _varintBytes(idem.length) + idem.length;
  if (expect !== null) size += _varintBytes(expect.length) + expect.length;
  if (value !== null) size += value.length;

  const out = new Uint8Array(size);
  const op = cmd.op === "put" ? OP_PUT : cmd.op === "del" ? OP_DEL : OP_CAS;
  out[0] = op | (idem !== null ? FLAG_IDEMPOTENCY : 0) | (expect !== null ? FLAG_EXPECT : 0);
  let pos = 1;
  if (idem !== null) {
    pos = _putVarint(out, pos, idem.length);
    out.set(idem, pos);
    pos += idem.length;
  }
  pos = _putVarint(out, pos, key.length);
  out.set(key, pos);
  pos += key.length;
  if (expect !== null) {
    pos = _putVarint(out, pos, expect.length);
    out.set(expect, pos);
    pos += expect.length;
  }
  if (value !== null) {
    out.set(value, pos);
    pos += value.length;
  }
  if (pos !== size) throw new Error(`encodeCommand: wrote ${pos} bytes of ${size} (bug)`);
  return out;
}

/** A cursor over a command buffer; every read is bounds-checked. */
class _Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(what: string): number {
    let n = 0;
    let scale = 1;
    // At most 5 bytes (35 bits): every length here is far below that, and it keeps n a safe integer.
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.buf.length) throw new InvalidArgumentError(`Truncated command: ${what} length runs past the end`);
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return n;
      scale *= 0x80;
    }
    throw new InvalidArgumentError(`Malformed command: ${what} length is not a valid varint`);
  }

  bytes(n: number, what: string): Uint8Array {
    if (n > this.buf.length - this.pos) throw new InvalidArgumentError(`Truncated command: ${what} needs ${n} bytes, ${this.buf.length - this.pos} left`);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  rest(): Uint8Array {
    const out = this.buf.slice(this.pos);
    this.pos = this.buf.length;
    return out;
  }
}

function _text(bytes: Uint8Array, what: string): string {
  try {
    return _utf8Strict.decode(bytes);
  } catch {
    throw new InvalidArgumentError(`Malformed command: the ${what} is not valid UTF-8`);
  }
}

/**
 * Decodes a command written by `encodeCommand`.
 * @throws InvalidArgumentError naming what is wrong, for any other bytes.
 */
export function decodeCommand(data: Uint8Array): KvCommand {
  if (data.length === 0) throw new InvalidArgumentError("Malformed command: empty");
  const head = data[0]!;
  const op = head & 0x0f;
  const flags = head & 0xf0;
  if ((flags & ~FLAGS_ALL) !== 0 || op < OP_PUT || op > OP_CAS) {
    throw new InvalidArgumentError(`Malformed command: unknown op byte 0x${head.toString(16).padStart(2, "0")}`);
  }
  if (op !== OP_CAS && (flags & FLAG_EXPECT) !== 0) throw new InvalidArgumentError("Malformed command: only cas carries an expected value");
  const r = new _Reader(data);
  r.pos = 1;
  let idempotencyKey: string | null = null;
  if ((flags & FLAG_IDEMPOTENCY) !== 0) {
    const n = r.varint("idempotency key");
    if (n === 0 || n > IDEMPOTENCY_KEY_BYTES_MAX) throw new InvalidArgumentError(`Malformed command: idempotency key of ${n} bytes`);
    idempotencyKey = _text(r.bytes(n, "idempotency key"), "idempotency key");
  }
  const keyLen = r.varint("key");
  if (keyLen === 0 || keyLen > KEY_BYTES_HARD_MAX) throw new InvalidArgumentError(`Malformed command: key of ${keyLen} bytes`);
  const key = _text(r.bytes(keyLen, "key"), "key");
  switch (op) {
    case OP_PUT:
      return { op: "put", key, value: r.rest(), idempotencyKey };
    case OP_DEL:
      if (r.pos !== data.length) throw new InvalidArgumentError(`Malformed command: ${data.length - r.pos} trailing bytes after a del`);
      return { op: "del", key, idempotencyKey };
    default: {
      const expect = (flags & FLAG_EXPECT) !== 0 ? r.bytes(r.varint("expected value"), "expected value") : null;
      return { op: "cas", key, expect, value: r.rest(), idempotencyKey };
    }
  }
}
