/**
 * The KV store's snapshot format: binary, written and read as a stream of
 * ~64 KiB chunks, so a large map is never turned into one giant buffer.
 *
 * ```
 * header   "RKV1" | u64 index (the last log index folded in)
 * records  0x01 | u32 keyLen | u32 valueLen | key (UTF-8) | value
 *          0x02 | u32 idemLen | u8 flags (1: ok, 2: has current, 4: has fingerprint) | u64 index | u32 currentLen | idempotency key | current | [8 bytes fingerprint]
 * trailer  0xFF | u32 number of 0x01 records | u32 number of 0x02 records | u32 CRC-32 of every byte before it
 * ```
 * All integers big-endian. Idempotency records come in the table's
 * insertion order, which is its eviction order (restoring keeps it).
 *
 * @module
 */
import { StorageCorruptError } from "../errors.ts";
import { crc32c } from "../storage/crc32c.ts";

/** What the state machine remembers about one idempotency key: the first answer. */
export interface IdempotencyRecord {
  /** Log index of the command that first used the key. */
  readonly index: number;
  readonly ok: boolean;
  /** A CAS conflict's current value (null: the key was absent); null otherwise. */
  readonly current: Uint8Array | null;
  /** First 8 bytes of the SHA-256 of the command that used the key (null in snapshots written before it was kept). */
  readonly fingerprint: Uint8Array | null;
}

/** The state a snapshot holds. */
export interface KvSnapshotState {
  readonly index: number;
  readonly entries: Map<string, Uint8Array>;
  readonly idempotency: Map<string, IdempotencyRecord>;
}

/** Bytes per yielded chunk. */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;

const _MAGIC = [0x52, 0x4b, 0x56, 0x31]; // "RKV1"
const _REC_KV = 0x01;
const _REC_IDEM = 0x02;
const _REC_END = 0xff;
const _SNAPSHOT_NAME = "KV snapshot";

const _utf8 = new TextEncoder();
const _utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Fills fixed-size chunks; completed chunks wait in `ready` until the generator yields them. */
class _ChunkWriter {
  readonly ready: Uint8Array[] = [];
  crc = 0;
  private _chunk: Uint8Array;
  private _pos = 0;
  private readonly _scratch = new Uint8Array(8);
  private readonly _scratchView = new DataView(this._scratch.buffer);

  constructor(private readonly _chunkBytes: number) {
    this._chunk = new Uint8Array(_chunkBytes);
  }

  bytes(b: Uint8Array): void {
    this.crc = crc32c(b, 0, b.length, this.crc);
    let off = 0;
    while (off < b.length) {
      const n = Math.min(b.length - off, this._chunkBytes - this._pos);
      this._chunk.set(b.subarray(off, off + n), this._pos);
      this._pos += n;
      off += n;
      if (this._pos === this._chunkBytes) {
        this.ready.push(this._chunk);
        this._chunk = new Uint8Array(this._chunkBytes);
        this._pos = 0;
      }
    }
  }

  u8(v: number): void {
    this._scratch[0] = v;
    this.bytes(this._scratch.subarray(0, 1));
  }

  u32(v: number): void {
    this._scratchView.setUint32(0, v);
    this.bytes(this._scratch.subarray(0, 4));
  }

  u64(v: number): void {
    this._scratchView.setBigUint64(0, BigInt(v));
    this.bytes(this._scratch.subarray(0, 8));
  }

  finish(): void {
    if (this._pos > 0) this.ready.push(this._chunk.subarray(0, this._pos));
    this._pos = 0;
  }
}

/**
 * Streams a snapshot of `state`. The maps must not change while the stream
 * is read (the state machine hands in a frozen view). `chunkBytes` is for
 * tests.
 */
export async function* writeSnapshot(state: KvSnapshotState, chunkBytes = SNAPSHOT_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  const w = new _ChunkWriter(chunkBytes);
  w.bytes(Uint8Array.from(_MAGIC));
  w.u64(state.index);
  let kvCount = 0;
  for (const [key, value] of state.entries) {
    const k = _utf8.encode(key);
    w.u8(_REC_KV);
    w.u32(k.length);
    w.u32(value.length);
    w.bytes(k);
    w.bytes(value);
    kvCount++;
    while (w.ready.length > 0) yield w.ready.shift()!;
  }
  let idemCount = 0;
  for (const [key, rec] of state.idempotency) {
    const k = _utf8.encode(key);
    w.u8(_REC_IDEM);
    w.u32(k.length);
    w.u8((rec.ok ? 1 : 0) | (rec.current !== null ? 2 : 0) | (rec.fingerprint !== null ? 4 : 0));
    w.u64(rec.index);
    w.u32(rec.current?.length ?? 0);
    w.bytes(k);
    if (rec.current !== null) w.bytes(rec.current);
    if (rec.fingerprint !== null) w.bytes(rec.fingerprint);
    idemCount++;
    while (w.ready.length > 0) yield w.ready.shift()!;
  }
  w.u8(_REC_END);
  w.u32(kvCount);
  w.u32(idemCount);
  w.u32(w.crc);
  w.finish();
  while (w.ready.length > 0) yield w.ready.shift()!;
}

/** Reads exact byte counts out of a chunk stream, keeping the CRC and the stream offset. */
class _ChunkReader {
  /** Stream offset of `_cur[0]`. */
  private _base = 0;
  private _cur: Uint8Array = new Uint8Array(0);
  private _pos = 0;
  crc = 0;

  constructor(private readonly _it: AsyncIterator<Uint8Array>) {}

  /** Stream offset of the next unread byte. */
  get offset(): number {
    return this._base + this._pos;
  }

  /** `n` bytes if already buffered (a view: copy what you keep), else null. */
  takeSync(n: number): Uint8Array | null {
    if (this._cur.length - this._pos < n) return null;
    const out = this._cur.subarray(this._pos, this._pos + n);
    this._pos += n;
    this.crc = crc32c(out, 0, out.length, this.crc);
    return out;
  }

  /** `n` bytes, pulling chunks as needed. @throws StorageCorruptError if the stream ends first. */
  async take(n: number, what: string): Promise<Uint8Array> {
    const quick = this.takeSync(n);
    if (quick !== null) return quick;
    const out = new Uint8Array(n);
    let have = this._cur.length - this._pos;
    out.set(this._cur.subarray(this._pos), 0);
    const start = this.offset;
    while (have < n) {
      const next = await this._it.next();
      if (next.done === true) throw new StorageCorruptError(_SNAPSHOT_NAME, start, `the stream ends inside ${what}`);
      this._base += this._cur.length;
      this._cur = next.value;
      this._pos = Math.min(n - have, next.value.length);
      out.set(next.value.subarray(0, this._pos), have);
      have += this._pos;
    }
    this.crc = crc32c(out, 0, out.length, this.crc);
    return out;
  }

  /** True if no byte is left in the stream. */
  async atEnd(): Promise<boolean> {
    while (this._pos >= this._cur.length) {
      const next = await this._it.next();
      if (next.done === true) return true;
      this._base += this._cur.length;
      this._cur = next.value;
      this._pos = 0;
    }
    return false;
  }
}

function _u64(view: DataView, offset: number, file: string, at: number): number {
  const v = view.getBigUint64(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new StorageCorruptError(file, at, `index ${v} is not a safe integer`);
  return Number(v);
}

function _text(bytes: Uint8Array, at: number): string {
  try {
    return _utf8Strict.decode(bytes);
  } catch {
    throw new StorageCorruptError(_SNAPSHOT_NAME, at, "a key is not valid UTF-8");
  }
}

/**
 * Reads a snapshot written by `writeSnapshot`, checking its structure,
 * counts and CRC; nothing is returned unless all of it is sound.
 * @throws StorageCorruptError with the stream offset of the first bad byte.
 */
export async function readSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<KvSnapshotState> {
  const r = new _ChunkReader(chunks[Symbol.asyncIterator]());
  const head = await r.take(12, "the header");
  if (!_MAGIC.every((b, i) => head[i] === b)) throw new StorageCorruptError(_SNAPSHOT_NAME, 0, "not a KV snapshot (bad magic)");
  const index = _u64(new DataView(head.buffer, head.byteOffset, head.byteLength), 4, _SNAPSHOT_NAME, 4);
  const entries = new Map<string, Uint8Array>();
  const idempotency = new Map<string, IdempotencyRecord>();
  for (;;) {
    const at = r.offset;
    const tag = (r.takeSync(1) ?? await r.take(1, "a record tag"))[0]!;
    if (tag === _REC_KV) {
      const h = r.takeSync(8) ?? await r.take(8, "a key-value record header");
      const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
      const keyLen = hv.getUint32(0);
      const valueLen = hv.getUint32(4);
      const body = r.takeSync(keyLen + valueLen) ?? await r.take(keyLen + valueLen, "a key-value record");
      const key = _text(body.subarray(0, keyLen), at);
      if (keyLen === 0 || entries.has(key)) throw new StorageCorruptError(_SNAPSHOT_NAME, at, `empty or repeated key ${JSON.stringify(key)}`);
      entries.set(key, body.slice(keyLen));
    } else if (tag === _REC_IDEM) {
      const h = r.takeSync(17) ?? await r.take(17, "an idempotency record header");
      const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
      const keyLen = hv.getUint32(0);
      const flags = hv.getUint8(4);
      const idx = _u64(hv, 5, _SNAPSHOT_NAME, at);
      const curLen = hv.getUint32(13);
      if ((flags & ~7) !== 0 || ((flags & 2) === 0 && curLen !== 0)) throw new StorageCorruptError(_SNAPSHOT_NAME, at, `bad idempotency record flags ${flags}`);
      const fpLen = (flags & 4) !== 0 ? 8 : 0;
      const body = r.takeSync(keyLen + curLen + fpLen) ?? await r.take(keyLen + curLen + fpLen, "an idempotency record");
      const key = _text(body.subarray(0, keyLen), at);
      if (keyLen === 0 || idempotency.has(key)) throw new StorageCorruptError(_SNAPSHOT_NAME, at, `empty or repeated idempotency key ${JSON.stringify(key)}`);
      idempotency.set(key, {
        index: idx,
        ok: (flags & 1) !== 0,
        current: (flags & 2) !== 0 ? body.slice(keyLen, keyLen + curLen) : null,
        fingerprint: fpLen > 0 ? body.slice(keyLen + curLen) : null,
      });
    } else if (tag === _REC_END) {
      const t = await r.take(8, "the trailer");
      const tv = new DataView(t.buffer, t.byteOffset, t.byteLength);
      const kvCount = tv.getUint32(0);
      const idemCount = tv.getUint32(4);
      const expectCrc = r.crc;
      const c = await r.take(4, "the trailer's checksum");
      const crc = new DataView(c.buffer, c.byteOffset, c.byteLength).getUint32(0);
      if (kvCount !== entries.size || idemCount !== idempotency.size) {
        throw new StorageCorruptError(_SNAPSHOT_NAME, at, `the trailer counts ${kvCount} keys and ${idemCount} idempotency keys, the stream held ${entries.size} and ${idempotency.size}`);
      }
      if (crc !== expectCrc) throw new StorageCorruptError(_SNAPSHOT_NAME, at + 9, `checksum mismatch (stored ${crc}, computed ${expectCrc})`);
      if (!(await r.atEnd())) throw new StorageCorruptError(_SNAPSHOT_NAME, r.offset, "bytes after the trailer");
      return { index, entries, idempotency };
    } else {
      throw new StorageCorruptError(_SNAPSHOT_NAME, at, `unknown record tag 0x${tag.toString(16)}`);
    }
  }
}
