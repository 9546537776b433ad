/**
 * The binary wire codec for peer messages: one request body carries a batch
 * of `Message`s (the driver sends everything produced for one peer in one
 * loop turn as one request). No JSON on this path.
 *
 * Layout (all integers little-endian):
 * ```
 * body    = magic "RFT" u8 version(=1) | u32 count | count × message
 * message = u8 kind | str from | str to | u64 term | fields of the kind
 * str     = u16 byteLength | UTF-8 bytes
 * u64     = u32 low | u32 high      (value must be <= Number.MAX_SAFE_INTEGER)
 * bool    = u8 0 | 1
 * MsgApp           u64 prevLogIndex | u64 prevLogTerm | u64 leaderCommit | u32 n | n × entry
 *   entry          u64 term | u8 type (0 normal, 1 noop, 2 config) | u32 dataLength | data
 *                  (entry i has index prevLogIndex + 1 + i: AppendEntries carries a
 *                  contiguous run, Figure 2, so the index is implied, not sent)
 * MsgAppResp       bool success | u64 matchIndex | u64 conflictTerm | u64 conflictIndex | u64 lastLogIndex
 * MsgVote/PreVote  u64 lastLogIndex | u64 lastLogTerm | bool transfer
 * MsgVoteResp/Pre  bool granted
 * MsgHeartbeat     u64 leaderCommit | u64 readContext
 * MsgHeartbeatResp u64 readContext
 * MsgSnap          u64 index | u64 term | u16 n | n × (str id | str url | bool voter)
 * MsgTimeoutNow    (nothing)
 * ```
 *
 * u64s travel as two u32 halves because `DataView.getBigUint64` plus the
 * BigInt-to-number conversion is several times slower than two `getUint32`s.
 *
 * Decoding trusts nothing: every kind, length, boolean, enum and integer is
 * checked against the bytes that remain and against the Raft invariants a
 * well-formed AppendEntries obeys (entry terms in [1, term], never
 * decreasing: the Log Matching property of §5.3), and trailing bytes are
 * refused. It also puts limits on what a body may make the receiver hold
 * (src/raft/limits.ts): every term below 2^52, ids that are member ids, at
 * most `MSG_APP_ENTRIES_MAX` entries per AppendEntries, `BODY_ENTRIES_MAX`
 * entries and `BODY_MESSAGES_MAX` messages per body (the encoder refuses
 * the same). Any failure throws `CodecError`; a half-parsed message is never
 * returned. Entry `data` in decoded messages is a view into the body (no
 * copy): the caller must not reuse the body's buffer while entries live.
 *
 * @module
 */
import { RaftError } from "../errors.ts";
import { isMemberId, MSG_APP_ENTRIES_MAX, TERM_MAX } from "../raft/limits.ts";
import type { Entry, EntryType, Member, Message, MsgApp, MsgSnap } from "../raft/types.ts";

/**
 * A body or field is not a valid encoding (decode), or a message cannot be
 * encoded (a string longer than 65,535 UTF-8 bytes, an index that is not a
 * safe non-negative integer). `offset` is the byte offset where decoding
 * stopped (-1 when encoding).
 */
export class CodecError extends RaftError {
  override name = "CodecError";
  /** Byte offset in the body where the problem was found; -1 for an encoding error. */
  readonly offset: number;
  constructor(detail: string, offset: number) {
    super(offset >= 0 ? `Malformed peer message body at byte ${offset}: ${detail}` : `Cannot encode peer message: ${detail}`);
    this.offset = offset;
  }
}

/** The four bytes every body starts with: "RFT" and the format version. */
export const CODEC_MAGIC: readonly number[] = [0x52, 0x46, 0x54, 0x01];

/**
 * Most messages in one body: a sender's queue holds at most 4,096 by default,
 * and decoding a body costs an object per message, so the count is bounded
 * as well as the bytes.
 */
export const BODY_MESSAGES_MAX = 8192;
/** Most entries across all the AppendEntries of one body (each also holds at most `MSG_APP_ENTRIES_MAX`). */
export const BODY_ENTRIES_MAX = 65_536;

/** Bytes before the first message: magic and u32 count. */
const _HEADER_BYTES = 8;
/** Smallest possible message: kind, two empty strings, term. */
const _MESSAGE_BYTES_MIN = 1 + 2 + 2 + 8;
/** Smallest possible entry: term, type, data length. */
const _ENTRY_BYTES_MIN = 8 + 1 + 4;
/** Smallest possible member: two empty strings and a bool. */
const _MEMBER_BYTES_MIN = 2 + 2 + 1;
/** Largest string (u16 length prefix). */
const _STRING_BYTES_MAX = 0xffff;
/** 2^32, to join the two u32 halves of a u64. */
const _TWO_POW_32 = 0x1_0000_0000;
/** High half of Number.MAX_SAFE_INTEGER (2^53 - 1 = 0x1f_ffff_ffff_ffff). */
const _SAFE_HIGH_MAX = 0x1f_ffff;

/** Wire code of each message kind. */
const _KIND_CODE = {
  MsgApp: 1,
  MsgAppResp: 2,
  MsgVote: 3,
  MsgPreVote: 4,
  MsgVoteResp: 5,
  MsgPreVoteResp: 6,
  MsgHeartbeat: 7,
  MsgHeartbeatResp: 8,
  MsgSnap: 9,
  MsgTimeoutNow: 10,
} as const satisfies Record<Message["type"], number>;

const _ENTRY_TYPE_CODE = { normal: 0, noop: 1, config: 2 } as const satisfies Record<EntryType, number>;
const _ENTRY_TYPES: readonly EntryType[] = ["normal", "noop", "config"];

const _utf8Encoder = new TextEncoder();
const _utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------
// Encoding

/** UTF-8 byte length of `s`, the same count `TextEncoder` produces (a lone surrogate becomes U+FFFD, 3 bytes). */
function _utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function _strSize(s: string, field: string): number {
  const n = _utf8Length(s);
  if (n > _STRING_BYTES_MAX) throw new CodecError(`${field} is ${n} UTF-8 bytes, more than ${_STRING_BYTES_MAX}`, -1);
  return 2 + n;
}

function _checkU64(v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`${field} = ${v} is not a safe non-negative integer`, -1);
}

function _checkTerm(v: number, field: string): void {
  _checkU64(v, field);
  if (v >= TERM_MAX) throw new CodecError(`${field} = ${v} is not below the term limit 2^52`, -1);
}

/** Encoded size of one message, validating what the writer will rely on. */
function _messageSize(m: Message): number {
  if (typeof m.from !== "string" || m.from.length === 0) throw new CodecError(`${m.type}.from must be a non-empty string`, -1);
  if (typeof m.to !== "string" || m.to.length === 0) throw new CodecError(`${m.type}.to must be a non-empty string`, -1);
  _checkTerm(m.term, `${m.type}.term`);
  let n = 1 + _strSize(m.from, "from") + _strSize(m.to, "to") + 8;
  switch (m.type) {
    case "MsgApp": {
      _checkU64(m.prevLogIndex, "MsgApp.prevLogIndex");
      _checkTerm(m.prevLogTerm, "MsgApp.prevLogTerm");
      _checkU64(m.leaderCommit, "MsgApp.leaderCommit");
      n += 8 * 3 + 4;
      const entries = m.entries;
      if (entries.length > MSG_APP_ENTRIES_MAX) throw new CodecError(`MsgApp carries ${entries.length} entries, more than ${MSG_APP_ENTRIES_MAX}`, -1);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (e.index !== m.prevLogIndex + 1 + i) {
          throw new CodecError(`MsgApp.entries[${i}].index = ${e.index}, expected ${m.prevLogIndex + 1 + i} (entries must follow prevLogIndex contiguously)`, -1);
        }
        _checkTerm(e.term, "Entry.term");
        if (!(e.type in _ENTRY_TYPE_CODE)) throw new CodecError(`unknown entry type ${String(e.type)}`, -1);
        n += _ENTRY_BYTES_MIN + e.data.length;
      }
      return n;
    }
    case "MsgAppResp":
      _checkU64(m.matchIndex, "MsgAppResp.matchIndex");
      _checkTerm(m.conflictTerm, "MsgAppResp.conflictTerm");
      _checkU64(m.conflictIndex, "MsgAppResp.conflictIndex");
      _checkU64(m.lastLogIndex, "MsgAppResp.lastLogIndex");
      return n + 1 + 8 * 4;
    case "MsgVote":
    case "MsgPreVote":
      _checkU64(m.lastLogIndex, `${m.type}.lastLogIndex`);
      _checkTerm(m.lastLogTerm, `${m.type}.lastLogTerm`);
      return n + 8 * 2 + 1;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      return n + 1;
    case "MsgHeartbeat":
      _checkU64(m.leaderCommit, "MsgHeartbeat.leaderCommit");
      _checkU64(m.readContext, "MsgHeartbeat.readContext");
      return n + 8 * 2;
    case "MsgHeartbeatResp":
      _checkU64(m.readContext, "MsgHeartbeatResp.readContext");
      return n + 8;
    case "MsgSnap": {
      const s = m.snapshot;
      _checkU64(s.index, "MsgSnap.snapshot.index");
      _checkTerm(s.term, "MsgSnap.snapshot.term");
      if (s.membership.length > 0xffff) throw new CodecError(`MsgSnap membership has ${s.membership.length} members, more than 65535`, -1);
      n += 8 * 2 + 2;
      for (const mem of s.membership) n += _strSize(mem.id, "Member.id") + _strSize(mem.url, "Member.url") + 1;
      return n;
    }
    case "MsgTimeoutNow":
      return n;
    default:
      throw new CodecError(`unknown message type ${String((m as { type: unknown }).type)}`, -1);
  }
}

/** Writes bodies into one preallocated buffer; sizes were checked by `_messageSize`. */
class _Writer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(v: number): void {
    this.bytes[this.pos++] = v;
  }
  bool(v: boolean): void {
    this.bytes[this.pos++] = v ? 1 : 0;
  }
  u16(v: number): void {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number): void {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.view.setUint32(this.pos + 4, Math.floor(v / _TWO_POW_32), true);
    this.pos += 8;
  }
  str(s: string): void {
    const start = this.pos + 2;
    let ascii = true;
    // ASCII fast path: node ids and URLs almost always are.
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      this.bytes[start + i] = c;
    }
    let n = s.length;
    if (!ascii) {
      n = _utf8Length(s);
      const { written } = _utf8Encoder.encodeInto(s, this.bytes.subarray(start, start + n));
      if (written !== n) throw new Error(`Assertion failed: UTF-8 length of a string: computed ${n}, wrote ${written}`);
    }
    this.view.setUint16(this.pos, n, true);
    this.pos = start + n;
  }
  raw(data: Uint8Array): void {
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }
}

function _writeMessage(w: _Writer, m: Message): void {
  w.u8(_KIND_CODE[m.type]);
  w.str(m.from);
  w.str(m.to);
  w.u64(m.term);
  switch (m.type) {
    case "MsgApp":
      w.u64(m.prevLogIndex);
      w.u64(m.prevLogTerm);
      w.u64(m.leaderCommit);
      w.u32(m.entries.length);
      for (const e of m.entries) {
        w.u64(e.term);
        w.u8(_ENTRY_TYPE_CODE[e.type]);
        w.u32(e.data.length);
        w.raw(e.data);
      }
      return;
    case "MsgAppResp":
      w.bool(m.success);
      w.u64(m.matchIndex);
      w.u64(m.conflictTerm);
      w.u64(m.conflictIndex);
      w.u64(m.lastLogIndex);
      return;
    case "MsgVote":
    case "MsgPreVote":
      w.u64(m.lastLogIndex);
      w.u64(m.lastLogTerm);
      w.bool(m.transfer);
      return;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      w.bool(m.granted);
      return;
    case "MsgHeartbeat":
      w.u64(m.leaderCommit);
      w.u64(m.readContext);
      return;
    case "MsgHeartbeatResp":
      w.u64(m.readContext);
      return;
    case "MsgSnap":
      w.u64(m.snapshot.index);
      w.u64(m.snapshot.term);
      w.u16(m.snapshot.membership.length);
      for (const mem of m.snapshot.membership) {
        w.str(mem.id);
        w.str(mem.url);
        w.bool(mem.voter);
      }
      return;
    case "MsgTimeoutNow":
      return;
  }
}

/**
 * Encodes a batch of messages as one request body.
 *
 * @param msgs The messages, in the order they must be delivered.
 * @returns A new buffer holding the body.
 * @throws {CodecError} If `msgs` is empty or a message cannot be encoded (an index or term that
 * is not a safe non-negative integer, a string over 65,535 UTF-8 bytes, an
 * empty `from`/`to`, MsgApp entries that do not follow `prevLogIndex`
 * contiguously).
 * @example
 * ```ts
 * const body = encodeMessages([{ type: "MsgTimeoutNow", from: "n1", to: "n2", term: 3 }]);
 * decodeMessages(body); // [{ type: "MsgTimeoutNow", from: "n1", to: "n2", term: 3 }]
 * ```
 */
export function encodeMessages(msgs: readonly Message[]): Uint8Array {
  if (msgs.length === 0) throw new CodecError("an empty batch is not a valid body", -1);
  if (msgs.length > BODY_MESSAGES_MAX) throw new CodecError(`${msgs.length} messages in one body, more than ${BODY_MESSAGES_MAX}`, -1);
  let entries = 0;
  for (const m of msgs) if (m.type === "MsgApp") entries += m.entries.length;
  if (entries > BODY_ENTRIES_MAX) throw new CodecError(`${entries} entries in one body, more than ${BODY_ENTRIES_MAX}`, -1);
  let size = _HEADER_BYTES;
  for (const m of msgs) size += _messageSize(m);
  const w = new _Writer(size);
  for (const b of CODEC_MAGIC) w.u8(b);
  w.u32(msgs.length);
  for (const m of msgs) _writeMessage(w, m);
  if (w.pos !== size) throw new Error(`Assertion failed: encoded ${w.pos} bytes, sized ${size}`);
  return w.bytes;
}

/**
 * Encoded size of `msgs` as one body, without encoding them (for batching
 * under a byte limit).
 *
 * @throws {CodecError} As `encodeMessages`.
 */
export function encodedSize(msgs: readonly Message[]): number {
  let size = _HEADER_BYTES;
  for (const m of msgs) size += _messageSize(m);
  return size;
}

/**
 * Encoded size of one message inside a body (the body adds 8 header bytes).
 *
 * @throws {CodecError} As `encodeMessages`.
 */
export function encodedMessageSize(msg: Message): number {
  return _messageSize(msg);
}

// ---------------------------------------------------------------------------
// Decoding

/** Reads a body; every read checks the bytes remaining first. */
class _Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  fail(detail: string, at: number = this.pos): never {
    throw new CodecError(detail, at);
  }
  need(n: number, what: string): void {
    if (this.bytes.length - this.pos < n) this.fail(`truncated ${what}: needs ${n} bytes, ${this.bytes.length - this.pos} left`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }
  bool(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) this.fail(`${what} is a boolean, got ${v}`, this.pos - 1);
    return v === 1;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi > _SAFE_HIGH_MAX) this.fail(`${what} exceeds Number.MAX_SAFE_INTEGER`);
    this.pos += 8;
    return hi * _TWO_POW_32 + lo;
  }
  str(what: string): string {
    const n = this.u16(`${what} length`);
    this.need(n, what);
    const start = this.pos;
    const end = start + n;
    const b = this.bytes;
    let s = "";
    let ascii = true;
    // ASCII fast path (node ids, URLs); TextDecoder costs more than the loop for short strings.
    for (let i = start; i < end; i++) {
      const c = b[i]!;
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      s += String.fromCharCode(c);
    }
    if (!ascii) {
      try {
        s = _utf8Decoder.decode(b.subarray(start, end));
      } catch {
        this.fail(`${what} is not valid UTF-8`, start);
      }
    }
    this.pos = end;
    return s;
  }
  id(what: string): string {
    const at = this.pos;
    const s = this.str(what);
    if (s.length === 0) this.fail(`${what} is empty`, at);
    if (!isMemberId(s)) this.fail(`${what} is not a member id (1-64 letters, digits, '.', '_' or '-')`, at);
    return s;
  }
  /** A term: refused at TERM_MAX and above, where elections would run out of safe integers. */
  term(what: string): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v >= TERM_MAX) this.fail(`${what} = ${v} is not below the term limit 2^52`, at);
    return v;
  }
  /** Entries decoded so far in this body (bounded by BODY_ENTRIES_MAX). */
  entries = 0;
  /** A count of items of at least `itemBytesMin` bytes each: refuse counts the remaining bytes cannot hold before allocating anything. */
  count(n: number, itemBytesMin: number, what: string, at: number): number {
    if (n * itemBytesMin > this.remaining) this.fail(`${what} count ${n} cannot fit in the ${this.remaining} bytes left`, at);
    return n;
  }
}

function _readEntries(r: _Reader, m: { term: number; prevLogIndex: number; prevLogTerm: number }): Entry[] {
  const at = r.pos;
  const n = r.count(r.u32("MsgApp entry count"), _ENTRY_BYTES_MIN, "MsgApp entry", at);
  if (n > MSG_APP_ENTRIES_MAX) r.fail(`MsgApp carries ${n} entries, more than ${MSG_APP_ENTRIES_MAX}`, at);
  r.entries += n;
  if (r.entries > BODY_ENTRIES_MAX) r.fail(`the body carries more than ${BODY_ENTRIES_MAX} entries`, at);
  if (n > 0 && !Number.isSafeInteger(m.prevLogIndex + n)) r.fail("MsgApp last entry index exceeds Number.MAX_SAFE_INTEGER", at);
  const entries: Entry[] = new Array<Entry>(n);
  let prevTerm = m.prevLogTerm;
  for (let i = 0; i < n; i++) {
    const termAt = r.pos;
    const term = r.term("Entry.term");
    // Log Matching (§5.3): terms never decrease along a log, and a leader only
    // holds entries from its own or earlier terms.
    if (term < 1 || term < prevTerm || term > m.term) {
      r.fail(`entry ${i} has term ${term}; expected a term in [${Math.max(1, prevTerm)}, ${m.term}]`, termAt);
    }
    prevTerm = term;
    const typeCode = r.u8("Entry.type");
    const type = _ENTRY_TYPES[typeCode];
    if (type === undefined) r.fail(`entry ${i} has unknown type code ${typeCode}`, r.pos - 1);
    const len = r.u32("Entry data length");
    r.need(len, "Entry data");
    const data = r.bytes.subarray(r.pos, r.pos + len);
    r.pos += len;
    entries[i] = { index: m.prevLogIndex + 1 + i, term, type, data };
  }
  return entries;
}

function _readMembers(r: _Reader): Member[] {
  const at = r.pos;
  const n = r.count(r.u16("member count"), _MEMBER_BYTES_MIN, "member", at);
  if (n === 0) r.fail("a snapshot's membership cannot be empty", at);
  const members: Member[] = new Array<Member>(n);
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const idAt = r.pos;
    const id = r.id("Member.id");
    if (seen.has(id)) r.fail(`member ${id} is listed twice`, idAt);
    seen.add(id);
    const url = r.str("Member.url");
    const voter = r.bool("Member.voter");
    members[i] = { id, url, voter };
  }
  return members;
}

function _readMessage(r: _Reader): Message {
  const kindAt = r.pos;
  const kind = r.u8("message kind");
  const from = r.id("from");
  const to = r.id("to");
  const term = r.term("term");
  switch (kind) {
    case _KIND_CODE.MsgApp: {
      const prevLogIndex = r.u64("MsgApp.prevLogIndex");
      const prevLogTerm = r.term("MsgApp.prevLogTerm");
      const leaderCommit = r.u64("MsgApp.leaderCommit");
      const entries = _readEntries(r, { term, prevLogIndex, prevLogTerm });
      const m: MsgApp = { type: "MsgApp", from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit };
      return m;
    }
    case _KIND_CODE.MsgAppResp: {
      const success = r.bool("MsgAppResp.success");
      const matchIndex = r.u64("MsgAppResp.matchIndex");
      const conflictTerm = r.term("MsgAppResp.conflictTerm");
      const conflictIndex = r.u64("MsgAppResp.conflictIndex");
      const lastLogIndex = r.u64("MsgAppResp.lastLogIndex");
      return { type: "MsgAppResp", from, to, term, success, matchIndex, conflictTerm, conflictIndex, lastLogIndex };
    }
    case _KIND_CODE.MsgVote:
    case _KIND_CODE.MsgPreVote: {
      const type = kind === _KIND_CODE.MsgVote ? "MsgVote" : "MsgPreVote";
      const lastLogIndex = r.u64(`${type}.lastLogIndex`);
      const lastLogTerm = r.term(`${type}.lastLogTerm`);
      const transfer = r.bool(`${type}.transfer`);
      return { type, from, to, term, lastLogIndex, lastLogTerm, transfer };
    }
    case _KIND_CODE.MsgVoteResp:
    case _KIND_CODE.MsgPreVoteResp: {
      const type = kind === _KIND_CODE.MsgVoteResp ? "MsgVoteResp" : "MsgPreVoteResp";
      const granted = r.bool(`${type}.granted`);
      return { type, from, to, term, granted };
    }
    case _KIND_CODE.MsgHeartbeat: {
      const leaderCommit = r.u64("MsgHeartbeat.leaderCommit");
      const readContext = r.u64("MsgHeartbeat.readContext");
      return { type: "MsgHeartbeat", from, to, term, leaderCommit, readContext };
    }
    case _KIND_CODE.MsgHeartbeatResp: {
      const readContext = r.u64("MsgHeartbeatResp.readContext");
      return { type: "MsgHeartbeatResp", from, to, term, readContext };
    }
    case _KIND_CODE.MsgSnap: {
      const index = r.u64("MsgSnap.snapshot.index");
      const snapTerm = r.term("MsgSnap.snapshot.term");
      const membership = _readMembers(r);
      const m: MsgSnap = { type: "MsgSnap", from, to, term, snapshot: { index, term: snapTerm, membership } };
      return m;
    }
    case _KIND_CODE.MsgTimeoutNow:
      return { type: "MsgTimeoutNow", from, to, term };
    default:
      return r.fail(`unknown message kind ${kind}`, kindAt);
  }
}

/**
 * Decodes a request body into its messages, validating everything.
 *
 * @param bytes The body. Entry data in the result are views into it.
 * @returns The messages, in the order they were encoded (at least one).
 * @throws {CodecError} If the body is not exactly one valid encoding: wrong
 * magic or version, truncated anywhere, unknown kinds or entry types,
 * booleans other than 0/1, integers above 2^53 - 1, counts the body cannot
 * hold, invalid UTF-8, empty ids, an empty batch, or trailing bytes.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  const r = new _Reader(bytes);
  r.need(_HEADER_BYTES, "header");
  for (let i = 0; i < CODEC_MAGIC.length; i++) {
    if (bytes[i] !== CODEC_MAGIC[i]) r.fail("not a raft peer message body (bad magic or version)", i);
  }
  r.pos = CODEC_MAGIC.length;
  const n = r.count(r.u32("message count"), _MESSAGE_BYTES_MIN, "message", 4);
  if (n === 0) r.fail("empty batch", 4);
  if (n > BODY_MESSAGES_MAX) r.fail(`${n} messages in one body, more than ${BODY_MESSAGES_MAX}`, 4);
  const msgs: Message[] = new Array<Message>(n);
  for (let i = 0; i < n; i++) msgs[i] = _readMessage(r);
  if (r.remaining !== 0) r.fail(`${r.remaining} trailing bytes after the last message`);
  return msgs;
}
