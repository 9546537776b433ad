/**
 * What crosses between a `RaftNode` handle on the caller's thread
 * (`./worker-node.ts`) and the driver in its worker (`./worker-main.ts`):
 * the message shapes, errors as
 * plain data rebuilt as the same classes, batches of entries packed into one
 * transferred `ArrayBuffer`, and pull-based chunk streams for snapshots.
 *
 * Hot-path messages are batched (one message per microtask of proposals,
 * one per apply batch, one per batch of settled calls, an acknowledgement of
 * applied batches with the next calls or once per `APPLY_ACK_EVERY`) and
 * carry bytes in transferred buffers, never per-entry messages or copies of
 * whole pools.
 *
 * @module
 */
import {
  ClosedError,
  DiskSpaceError,
  InvalidArgumentError,
  LockedError,
  MembershipChangeError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  StorageCorruptError,
  StorageFailedError,
  TimeoutError,
  BackupCorruptError,
  TlsError,
} from "../../errors.ts";
import { assert } from "../../raft/assert.ts";
import type { ForwardedRequest } from "../forwarded-request.ts";

/** An error as plain data: class name, message, and the class's own fields. */
export interface EncodedError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly fields: Readonly<Record<string, unknown>>;
}

const _CLASSES: Readonly<Record<string, { prototype: Error }>> = {
  RaftError,
  NotLeaderError,
  StorageCorruptError,
  StorageFailedError,
  BackupCorruptError,
  LockedError,
  ProposalDroppedError,
  MembershipChangeError,
  InvalidArgumentError,
  ClosedError,
  TimeoutError,
  DiskSpaceError,
  TlsError,
  Error,
  TypeError,
  RangeError,
};

/** The fields each class carries beyond `message` (see src/errors.ts). */
const _FIELDS: Readonly<Record<string, readonly string[]>> = {
  NotLeaderError: ["leaderId", "leaderUrl"],
  StorageCorruptError: ["file", "offset"],
  BackupCorruptError: ["file", "offset"],
  StorageFailedError: ["file"],
  LockedError: ["dir", "holderPid"],
  ProposalDroppedError: ["outcome"],
  TlsError: ["url", "reason"],
};

/** Turns any thrown value into plain data that survives `postMessage`. */
export function encodeError(err: unknown): EncodedError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err), stack: undefined, fields: {} };
  const fields: Record<string, unknown> = {};
  for (const f of _FIELDS[err.name] ?? []) fields[f] = (err as unknown as Record<string, unknown>)[f];
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

/**
 * Rebuilds an error as an instance of the same class from src/errors.ts
 * (`instanceof NotLeaderError` holds, `leaderUrl` is there). Other classes
 * (the user's own) come back as `Error` with the original name and message.
 */
export function decodeError(e: EncodedError): Error {
  const cls = _CLASSES[e.name] ?? Error;
  const err = Object.create(cls.prototype) as Error;
  Object.defineProperty(err, "message", { value: e.message, writable: true, configurable: true });
  Object.defineProperty(err, "name", { value: e.name, writable: true, configurable: true, enumerable: true });
  Object.defineProperty(err, "stack", { value: e.stack ?? `${e.name}: ${e.message}`, writable: true, configurable: true });
  for (const [k, v] of Object.entries(e.fields)) Object.defineProperty(err, k, { value: v, enumerable: true });
  return err;
}

/**
 * Packs byte strings into one buffer: `[count u32][pad u32][keys f64 x count]
 * [ends u32 x count, padded to 8][bytes]`. Item i is bytes[ends[i-1], ends[i])
 * and carries `keys[i]` (a log index, or 0). One copy in, zero copies out.
 */
export function packBatch(items: readonly Uint8Array[], keys: readonly number[] | null): ArrayBuffer {
  const n = items.length;
  let bytes = 0;
  for (const d of items) bytes += d.byteLength;
  const head = 8 + 8 * n + ((4 * n + 7) & ~7);
  assert(head + bytes <= 0xffff_ffff, "a packed batch fits u32 offsets");
  const buf = new ArrayBuffer(head + bytes);
  const dv = new DataView(buf);
  dv.setUint32(0, n, true);
  const keyArr = new Float64Array(buf, 8, n);
  const ends = new Uint32Array(buf, 8 + 8 * n, n);
  const out = new Uint8Array(buf, head);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const d = items[i]!;
    out.set(d, at);
    at += d.byteLength;
    ends[i] = at;
    keyArr[i] = keys === null ? 0 : keys[i]!;
  }
  return buf;
}

/** Views into a packed batch (see `packBatch`); the views share its buffer. */
export function unpackBatch(buf: ArrayBuffer): { keys: Float64Array; items: Uint8Array[] } {
  const n = new DataView(buf).getUint32(0, true);
  const head = 8 + 8 * n + ((4 * n + 7) & ~7);
  const keys = new Float64Array(buf, 8, n);
  const ends = new Uint32Array(buf, 8 + 8 * n, n);
  const items: Uint8Array[] = new Array(n);
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = ends[i]!;
    assert(end >= start && head + end <= buf.byteLength, "packed batch offsets increase and stay inside the buffer");
    items[i] = new Uint8Array(buf, head + start, end - start);
    start = end;
  }
  return { keys, items };
}

/** A call the handle forwards to the driver (proposals cross packed instead: see "calls"). */
export type CallOp = "readBarrier" | "addMember" | "removeMember" | "transferLeadership" | "beginSnapshot" | "endSnapshot" | "takeSnapshot" | "reloadTls" | "close";

/** One call, made after the first `after` proposals of its message's packed buffer. */
export interface WireCall {
  readonly id: number;
  readonly op: CallOp;
  readonly args: readonly unknown[];
  readonly after: number;
}

/** A call's outcome: [id, true, value] or [id, false, error]. */
export type Settled = readonly [number, true, unknown] | readonly [number, false, EncodedError];

/**
 * Apply batches the worker sends and the caller's thread has not yet
 * acknowledged, at most this many: the worker's apply chain does not wait a
 * thread round trip per batch, yet a blocked caller's thread holds it back
 * instead of letting batches queue without bound.
 */
export const APPLY_WINDOW = 32;

/**
 * The caller's thread acknowledges applied batches with the next calls it
 * sends, or on their own once this many wait: not one message per batch,
 * which would wake the worker once more for every batch (at 1 proposal in
 * flight, every entry) only to count it. Invariant: `APPLY_ACK_EVERY <=
 * APPLY_WINDOW`, so a worker that waits on a full window always gets an
 * acknowledgement (its window holds at least `APPLY_ACK_EVERY` unacknowledged
 * batches, which the caller's thread acknowledges as it applies them).
 */
export const APPLY_ACK_EVERY = 8;

/** Messages from the caller's thread to the worker. */
export type ToWorker =
  | { readonly t: "init"; readonly options: Readonly<Record<string, unknown>>; readonly lastApplied: number; readonly hasSnapshot: boolean; readonly hasRestore: boolean; readonly hasRoutes: boolean }
  /** `buf`: the proposals, packed (keys: their call ids), in the order they were made among `calls`. */
  /** `applied`: apply batches done since the last acknowledgement, acknowledged with these calls (see `APPLY_ACK_EVERY`). */
  | { readonly t: "calls"; readonly calls: readonly WireCall[]; readonly buf: ArrayBuffer | null; readonly applied: number }
  /** `count` more apply batches done (see `APPLY_ACK_EVERY`). */
  | { readonly t: "applied"; readonly count: number }
  | { readonly t: "sm-reply"; readonly id: number; readonly ok: boolean; readonly value: unknown }
  /** `stream`: the body is a live stream (an event stream) offered through `ChunkStreams`, not `body`. */
  | { readonly t: "http-reply"; readonly id: number; readonly status: number; readonly headers: readonly [string, string][]; readonly body: ArrayBuffer; readonly stream: number | null }
  | StreamMessage
  | { readonly t: "fault"; readonly kind: "throw" };

/** Messages from the worker to the caller's thread. */
export type FromWorker =
  | { readonly t: "identity"; readonly id: string; readonly url: string; readonly clusterId: string; readonly status: unknown; readonly metrics: unknown }
  | { readonly t: "started"; readonly status: unknown; readonly metrics: unknown }
  | { readonly t: "start-failed"; readonly error: EncodedError }
  | { readonly t: "settled"; readonly items: readonly Settled[]; readonly status: unknown; readonly metrics: unknown }
  | {
    readonly t: "apply";
    /** The batch's normal entries, packed (keys: their indexes). */
    readonly buf: ArrayBuffer;
    /** tags[i]: the call id of the proposal made on the caller's thread for item i, or 0: it settles that call with apply's result. */
    readonly tags: readonly number[];
    /** The batch's last index, internal entries included. */
    readonly lastIndex: number;
  }
  | { readonly t: "sm-call"; readonly id: number; readonly method: "lastApplied" | "snapshot" | "restore"; readonly args: readonly unknown[] }
  | ({ readonly t: "http"; readonly id: number } & ForwardedRequest)
  | { readonly t: "status"; readonly status: unknown; readonly metrics: unknown }
  | { readonly t: "event"; readonly event: unknown; readonly error: EncodedError | null; readonly status: unknown; readonly metrics: unknown }
  | { readonly t: "log"; readonly line: string }
  | StreamMessage;

/** Pull-based chunk streams, either direction: one chunk per pull, so a slow reader holds the writer back. */
export type StreamMessage =
  | { readonly t: "pull"; readonly stream: number }
  /** The reader stopped early: the source is ended (`return()`) and forgotten. */
  | { readonly t: "cancel"; readonly stream: number }
  | { readonly t: "chunk"; readonly stream: number; readonly chunk: ArrayBuffer | null; readonly error: EncodedError | null };

/** Largest chunk a stream sends at once (small source chunks are coalesced up to it). */
const _CHUNK_BYTES_MAX = 1024 * 1024;

/**
 * Both ends of chunk streams over one message port: `offer` registers a
 * local source that the other side pulls; `open` is the reading end of a
 * source the other side offered.
 */
export class ChunkStreams {
  readonly #post: (m: StreamMessage, transfer?: ArrayBuffer[]) => void;
  /** `live` sources send each chunk as soon as it is produced (no coalescing): event streams. */
  readonly #sources = new Map<number, { readonly it: AsyncIterator<Uint8Array>; readonly live: boolean }>();
  readonly #readers = new Map<number, (m: { chunk: ArrayBuffer | null; error: EncodedError | null }) => void>();
  #nextId = 1;

  constructor(post: (m: StreamMessage, transfer?: ArrayBuffer[]) => void) {
    this.#post = post;
  }

  /** Registers `chunks` for the other side to pull; returns its stream id. */
  offer(chunks: AsyncIterable<Uint8Array>, live = false): number {
    const id = this.#nextId++;
    this.#sources.set(id, { it: chunks[Symbol.asyncIterator](), live });
    return id;
  }

  /** The reading end of stream `id` offered by the other side. */
  open(id: number): AsyncIterable<Uint8Array> {
    const pull = () =>
      new Promise<{ chunk: ArrayBuffer | null; error: EncodedError | null }>((resolve) => {
        this.#readers.set(id, resolve);
        this.#post({ t: "pull", stream: id });
      });
    let ended = false;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const { chunk, error } = await pull();
          if (error !== null) throw decodeError(error);
          if (chunk === null) {
            ended = true;
            return { done: true, value: undefined };
          }
          return { done: false, value: new Uint8Array(chunk) };
        },
        return: (): Promise<IteratorResult<Uint8Array>> => {
          if (!ended) this.#post({ t: "cancel", stream: id });
          ended = true;
          return Promise.resolve({ done: true, value: undefined });
        },
      }),
    };
  }

  /** Handles a stream message; false if `m` is not one. */
  handle(m: { t: string }): boolean {
    if (m.t === "pull") {
      void this.#serve((m as unknown as { stream: number }).stream);
      return true;
    }
    if (m.t === "cancel") {
      const id = (m as unknown as { stream: number }).stream;
      const s = this.#sources.get(id);
      this.#sources.delete(id);
      void s?.it.return?.().catch(() => {});
      return true;
    }
    if (m.t === "chunk") {
      const c = m as unknown as { stream: number; chunk: ArrayBuffer | null; error: EncodedError | null };
      const r = this.#readers.get(c.stream);
      this.#readers.delete(c.stream);
      r?.({ chunk: c.chunk, error: c.error });
      return true;
    }
    return false;
  }

  /** Drops a source this side offered, ending it (`return()`); true if the other side had not read it to the end. */
  close(id: number): boolean {
    const s = this.#sources.get(id);
    if (s === undefined) return false;
    this.#sources.delete(id);
    void s.it.return?.()?.catch?.(() => {});
    return true;
  }

  /** Ends every stream being read with `err` (the other side is gone). */
  failAll(err: Error): void {
    for (const r of this.#readers.values()) r({ chunk: null, error: encodeError(err) });
    this.#readers.clear();
  }

  async #serve(id: number): Promise<void> {
    const source = this.#sources.get(id);
    if (source === undefined) {
      this.#post({ t: "chunk", stream: id, chunk: null, error: encodeError(new RaftError(`Unknown stream ${id}`)) });
      return;
    }
    const it = source.it;
    try {
      const parts: Uint8Array[] = [];
      let bytes = 0;
      let done = false;
      while (bytes < _CHUNK_BYTES_MAX && (!source.live || parts.length === 0)) {
        const r = await it.next();
        if (r.done === true) {
          done = true;
          break;
        }
        parts.push(r.value);
        bytes += r.value.byteLength;
      }
      if (parts.length === 0 && done) {
        this.#sources.delete(id);
        this.#post({ t: "chunk", stream: id, chunk: null, error: null });
        return;
      }
      const out = new Uint8Array(bytes);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      this.#post({ t: "chunk", stream: id, chunk: out.buffer, error: null }, [out.buffer]);
    } catch (err) {
      this.#sources.delete(id);
      this.#post({ t: "chunk", stream: id, chunk: null, error: encodeError(err) });
    }
  }
}

/** The chunks of a response body, for `ChunkStreams.offer`; ending the iteration early cancels the body. */
export function bodyChunks(body: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = body.getReader();
  return {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<Uint8Array>> => {
        const r = await reader.read();
        return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
      },
      return: async (): Promise<IteratorResult<Uint8Array>> => {
        await reader.cancel().catch(() => {});
        return { done: true, value: undefined };
      },
    }),
  };
}

/** A response body that reads `chunks` as it is read; cancelling it ends the iteration (and so the source). */
export function chunksBody(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await it.next();
        if (r.done === true) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await it.return?.();
    },
  }, { highWaterMark: 0 });
}
