/**
 * An in-memory `SnapshotSink` for the transport tests: keeps each transfer's
 * received chunks and records what it was asked to do.
 *
 * @module
 */
import type { MsgSnap, NodeId } from "../../src/raft/types.ts";
import type { SnapshotSink } from "../../src/transport/routes.ts";

interface _Transfer {
  msg: MsgSnap;
  chunks: Uint8Array[];
  offset: number;
}

/** Holds transfers in memory; `finished` lists completed ones with their bytes. */
export class MemorySnapshotSink implements SnapshotSink {
  readonly transfers = new Map<string, _Transfer>();
  readonly finished: { from: NodeId; id: string; msg: MsgSnap; bytes: Uint8Array }[] = [];
  /** Sizes of the chunks written, in order. */
  readonly writes: number[] = [];

  begin(from: NodeId, snapshotId: string, msg: MsgSnap): Promise<number> {
    const key = `${from}/${snapshotId}`;
    const t = this.transfers.get(key);
    if (t !== undefined) return Promise.resolve(t.offset);
    this.transfers.set(key, { msg, chunks: [], offset: 0 });
    return Promise.resolve(0);
  }
  receivedOffset(from: NodeId, snapshotId: string): number | null {
    return this.transfers.get(`${from}/${snapshotId}`)?.offset ?? null;
  }
  write(from: NodeId, snapshotId: string, offset: number, chunk: Uint8Array): Promise<void> {
    const t = this.transfers.get(`${from}/${snapshotId}`);
    if (t === undefined || t.offset !== offset) throw new Error(`test sink: write at ${offset} out of order`);
    t.chunks.push(chunk.slice());
    t.offset += chunk.length;
    this.writes.push(chunk.length);
    return Promise.resolve();
  }
  finish(from: NodeId, snapshotId: string, totalBytes: number): Promise<void> {
    const key = `${from}/${snapshotId}`;
    const t = this.transfers.get(key);
    if (t === undefined || t.offset !== totalBytes) throw new Error("test sink: finish of an incomplete transfer");
    const bytes = new Uint8Array(totalBytes);
    let pos = 0;
    for (const c of t.chunks) {
      bytes.set(c, pos);
      pos += c.length;
    }
    this.transfers.delete(key);
    this.finished.push({ from, id: snapshotId, msg: t.msg, bytes });
    return Promise.resolve();
  }
}

/** `n` bytes of a recognisable pattern. */
export function patternBytes(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >>> 8)) & 0xff;
  return b;
}
