/**
 * The built-in key-value state machine: an in-memory map fed by the Raft
 * log, with CAS, exactly-once client retries and streamed snapshots.
 *
 * - `apply` decodes a binary command (see command.ts) and returns a
 *   `KvResult`; ids at or below `lastApplied()` are ignored (the seed's
 *   contract: a restarted node may replay entries).
 * - Exactly-once (dissertation §6.3): a command carrying an idempotency key
 *   that was seen before is not applied again; the first answer is returned.
 *   A key reused for a different command is not applied either, and is
 *   reported as such (`keyReused`; the API answers 422, as the IETF
 *   Idempotency-Key draft says), never answered with the other command's result.
 *   The remembered keys are part of the replicated state (they come from
 *   the commands and travel in snapshots) and bounded, oldest evicted first,
 *   so every member keeps the same table.
 * - Snapshots are consistent views taken without copying the map: while a
 *   snapshot streams, writes go to an overlay that is folded back when the
 *   stream ends.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { InvalidArgumentError } from "../errors.ts";
import type { SnapshotSource, StateMachine } from "../node/types.ts";
import { decodeCommand } from "./command.ts";
import type { KvCommand } from "./command.ts";
import { readSnapshot, SNAPSHOT_CHUNK_BYTES, writeSnapshot } from "./snapshot-codec.ts";
import type { IdempotencyRecord } from "./snapshot-codec.ts";

/** What `apply` returns for a command (and `propose` resolves to on the proposing member). */
export interface KvResult {
  /** The log index at which the command took effect; for a duplicate, the first one's. */
  readonly index: number;
  /** put and del: true; cas: whether the current value matched; a malformed command: false. */
  readonly ok: boolean;
  /** cas that did not match: the current value (null: absent); del: the value removed (null: there was none); else null. */
  readonly current: Uint8Array | null;
  /** Answered from the idempotency table: this retry was not applied again. */
  readonly duplicate: boolean;
  /** The idempotency key was first used for a different command: nothing was applied. */
  readonly keyReused?: boolean;
  /** A malformed command (ignored, on every member alike): why. Else null. */
  readonly error: string | null;
}

/** Limits of the replicated idempotency table. Every member must use the same values. */
export interface KvStateMachineOptions {
  /** Remember at most this many idempotency keys. Default 10 000. */
  readonly idempotencyKeysMax?: number;
  /** Remember at most this many bytes (keys plus remembered CAS values). Default 16 MiB. */
  readonly idempotencyBytesMax?: number;
  /** Snapshot chunk size (tests use small chunks). Default 64 KiB. */
  readonly snapshotChunkBytes?: number;
}

const _IDEMPOTENCY_RECORD_OVERHEAD_BYTES = 32;

function _idemBytes(key: string, rec: IdempotencyRecord): number {
  return key.length * 2 + (rec.current?.length ?? 0) + (rec.fingerprint?.length ?? 0) + _IDEMPOTENCY_RECORD_OVERHEAD_BYTES;
}

/** What tells two commands apart under one idempotency key: the first 8 bytes of the SHA-256 of the encoded command. */
function _fingerprint(data: Uint8Array): Uint8Array {
  return sha256(data).slice(0, 8);
}

function _equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The built-in KV store, as a Raft `StateMachine`. */
export class KvStateMachine implements StateMachine {
  /** Invariant: the id of the last command applied; only grows, except by `restore`. */
  private _lastApplied = 0;
  /** The map. Frozen (never written) while `_overlay` is non-null. */
  private _base = new Map<string, Uint8Array>();
  /** Writes made while a snapshot streams `_base`: a value, or null for "deleted". */
  private _overlay: Map<string, Uint8Array | null> | null = null;
  /** Which snapshot froze `_base` (its stream folds the overlay back when it ends). */
  private _frozenBy: object | null = null;
  /** Bumped by `restore`: a stream from before it must not fold into the new state. */
  private _generation = 0;
  /** Invariant: equals the number of live keys in base + overlay. */
  private _keyCount = 0;
  /** Idempotency key -> first answer; insertion order is eviction order. */
  private _idem = new Map<string, IdempotencyRecord>();
  /** Invariant: sum of `_idemBytes` over `_idem`, <= idempotencyBytesMax after every apply. */
  private _idemBytesTotal = 0;
  private readonly _idemKeysMax: number;
  private readonly _idemBytesMax: number;
  private readonly _chunkBytes: number;

  constructor(opts: KvStateMachineOptions = {}) {
    this._idemKeysMax = opts.idempotencyKeysMax ?? 10_000;
    this._idemBytesMax = opts.idempotencyBytesMax ?? 16 * 1024 * 1024;
    this._chunkBytes = opts.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this._idemKeysMax) || this._idemKeysMax < 1) throw new InvalidArgumentError(`idempotencyKeysMax must be a positive integer, got ${this._idemKeysMax}`);
    if (!Number.isSafeInteger(this._idemBytesMax) || this._idemBytesMax < 1) throw new InvalidArgumentError(`idempotencyBytesMax must be a positive integer, got ${this._idemBytesMax}`);
    if (!Number.isSafeInteger(this._chunkBytes) || this._chunkBytes < 16) throw new InvalidArgumentError(`snapshotChunkBytes must be an integer >= 16, got ${this._chunkBytes}`);
  }

  /** The id of the last command applied (0 if none). */
  lastApplied(): number {
    return this._lastApplied;
  }

  /** The value of `key` in the local copy, or undefined. Linearizable only after `RaftNodeApi.readBarrier()`. */
  get(key: string): Uint8Array | undefined {
    if (this._overlay !== null) {
      const v = this._overlay.get(key);
      if (v !== undefined) return v ?? undefined;
    }
    return this._base.get(key);
  }

  /** Number of keys held. */
  get size(): number {
    return this._keyCount;
  }

  /** Number of idempotency keys remembered. */
  get idempotencyKeys(): number {
    return this._idem.size;
  }

  /**
   * Applies the command at log index `id`. Returns null for an id already
   * applied (ignored), else a `KvResult`. A malformed command changes
   * nothing but `lastApplied` and returns `ok: false` with the reason.
   */
  apply(id: number, data: Uint8Array): KvResult | null {
    if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`apply: id must be a positive safe integer, got ${id}`);
    if (id <= this._lastApplied) return null;
    this._lastApplied = id;
    let cmd: KvCommand;
    try {
      cmd = decodeCommand(data);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      return { index: id, ok: false, current: null, duplicate: false, error: err.message };
    }
    const fingerprint = cmd.idempotencyKey === null ? null : _fingerprint(data);
    if (cmd.idempotencyKey !== null) {
      const seen = this._idem.get(cmd.idempotencyKey);
      if (seen !== undefined) {
        if (seen.fingerprint !== null && !_equalBytes(seen.fingerprint, fingerprint!)) {
          return { index: seen.index, ok: false, current: null, duplicate: false, keyReused: true, error: null };
        }
        return { index: seen.index, ok: seen.ok, current: seen.current, duplicate: true, error: null };
      }
    }
    const result = this._applyCommand(id, cmd);
    if (cmd.idempotencyKey !== null) this._remember(cmd.idempotencyKey, { index: id, ok: result.ok, current: cmd.op === "cas" ? result.current : null, fingerprint });
    return result;
  }

  private _applyCommand(id: number, cmd: KvCommand): KvResult {
    const current = this.get(cmd.key) ?? null;
    switch (cmd.op) {
      case "put":
        this._set(cmd.key, cmd.value, current !== null);
        return { index: id, ok: true, current: null, duplicate: false, error: null };
      case "del":
        if (current !== null) this._delete(cmd.key);
        return { index: id, ok: true, current, duplicate: false, error: null };
      case "cas": {
        const matches = cmd.expect === null ? current === null : current !== null && _equalBytes(current, cmd.expect);
        if (!matches) return { index: id, ok: false, current, duplicate: false, error: null };
        this._set(cmd.key, cmd.value, current !== null);
        return { index: id, ok: true, current: null, duplicate: false, error: null };
      }
    }
  }

  private _set(key: string, value: Uint8Array, existed: boolean): void {
    if (this._overlay !== null) this._overlay.set(key, value);
    else this._base.set(key, value);
    if (!existed) this._keyCount++;
  }

  private _delete(key: string): void {
    if (this._overlay !== null) this._overlay.set(key, null);
    else this._base.delete(key);
    this._keyCount--;
    if (this._keyCount < 0) throw new Error(`KvStateMachine: key count went negative deleting ${JSON.stringify(key)} (bug)`);
  }

  /** Remembers an answer, evicting the oldest first: a pure function of the applied commands, so the same on every member. */
  private _remember(key: string, rec: IdempotencyRecord): void {
    this._idem.set(key, rec);
    this._idemBytesTotal += _idemBytes(key, rec);
    for (const [oldKey, oldRec] of this._idem) {
      if (this._idem.size <= this._idemKeysMax && this._idemBytesTotal <= this._idemBytesMax) break;
      this._idem.delete(oldKey);
      this._idemBytesTotal -= _idemBytes(oldKey, oldRec);
    }
  }

  /**
   * A consistent snapshot as of `lastApplied()`, streamed in chunks. The map
   * is not copied: `_base` is frozen and later writes go to an overlay until
   * the stream ends (or is abandoned with `return()`). A second snapshot
   * while one streams gets a copy of the map (rare; O(keys)).
   */
  snapshot(): SnapshotSource {
    const index = this._lastApplied;
    const idempotency = new Map(this._idem);
    if (this._overlay === null) {
      const token = {};
      const generation = this._generation;
      const frozen = this._base;
      this._overlay = new Map();
      this._frozenBy = token;
      const unfreeze = () => {
        if (this._frozenBy === token && this._generation === generation) this._foldOverlay();
      };
      return { index, chunks: this._stream({ index, entries: frozen, idempotency }, unfreeze) };
    }
    const copy = new Map(this._base);
    for (const [k, v] of this._overlay) {
      if (v === null) copy.delete(k);
      else copy.set(k, v);
    }
    return { index, chunks: this._stream({ index, entries: copy, idempotency }, () => {}) };
  }

  private async *_stream(state: Parameters<typeof writeSnapshot>[0], done: () => void): AsyncGenerator<Uint8Array> {
    try {
      yield* writeSnapshot(state, this._chunkBytes);
    } finally {
      done();
    }
  }

  private _foldOverlay(): void {
    const overlay = this._overlay;
    if (overlay === null) return;
    for (const [k, v] of overlay) {
      if (v === null) this._base.delete(k);
      else this._base.set(k, v);
    }
    this._overlay = null;
    this._frozenBy = null;
  }

  /**
   * Replaces the whole state with the snapshot taken at `index`. Nothing
   * changes unless the whole stream is sound.
   * @throws StorageCorruptError if the stream is malformed; InvalidArgumentError if it was taken at another index.
   */
  async restore(index: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const state = await readSnapshot(chunks);
    if (state.index !== index) throw new InvalidArgumentError(`The KV snapshot was taken at index ${state.index}, but restore was asked for index ${index}`);
    this._generation++;
    this._base = state.entries;
    this._overlay = null;
    this._frozenBy = null;
    this._keyCount = state.entries.size;
    this._idem = new Map();
    this._idemBytesTotal = 0;
    for (const [k, rec] of state.idempotency) this._remember(k, rec);
    this._lastApplied = index;
  }
}
