/**
 * Flow control of AppendEntries to one follower in replicate state (etcd's
 * tracker/inflights.go): a bounded ring of the messages sent but not yet
 * acknowledged, each remembered by its last index and its payload bytes.
 * "Put a limit on everything": both the count and the bytes are capped.
 *
 * @module
 */
import { assert } from "./assert.ts";

/** Messages in flight to one follower, oldest first. */
export class Inflights {
  /** Last entry index of each message in flight, ascending; ring of `capacity` slots. */
  private readonly _index: number[];
  /** Payload bytes of each message in flight, same slots as `_index`. */
  private readonly _bytes: number[];
  /** Slot of the oldest message. */
  private _start = 0;
  /** Messages in flight. Invariant: 0 <= count <= capacity. */
  private _count = 0;
  /** Sum of `_bytes` over the messages in flight. */
  private _totalBytes = 0;

  /**
   * @param capacity at most this many messages in flight (maxInflightMsgs, >= 1)
   * @param bytesMax at most this many payload bytes in flight (maxInflightBytes; 0 = no limit)
   */
  constructor(readonly capacity: number, readonly bytesMax: number) {
    assert(capacity >= 1, "inflights capacity >= 1");
    this._index = new Array<number>(capacity).fill(0);
    this._bytes = new Array<number>(capacity).fill(0);
  }

  /** Messages in flight. */
  get count(): number {
    return this._count;
  }

  /** Payload bytes in flight. */
  get bytes(): number {
    return this._totalBytes;
  }

  /** True when no further message may be sent until an acknowledgement frees a slot. */
  full(): boolean {
    return this._count === this.capacity || (this.bytesMax > 0 && this._totalBytes >= this.bytesMax);
  }

  /** Records a message whose last entry is `index`. Indexes must ascend. */
  add(index: number, bytes: number): void {
    assert(!this.full(), "inflights: add only when not full");
    if (this._count > 0) {
      const last = this._index[(this._start + this._count - 1) % this.capacity] as number;
      assert(index > last, "inflights indexes ascend", `${index} after ${last}`);
    }
    const slot = (this._start + this._count) % this.capacity;
    this._index[slot] = index;
    this._bytes[slot] = bytes;
    this._count++;
    this._totalBytes += bytes;
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this._count > 0 && (this._index[this._start] as number) <= index) {
      this._totalBytes -= this._bytes[this._start] as number;
      this._start = (this._start + 1) % this.capacity;
      this._count--;
    }
    if (this._count === 0) this._start = 0;
  }

  /** Forgets everything in flight (the follower left replicate state). */
  reset(): void {
    this._start = 0;
    this._count = 0;
    this._totalBytes = 0;
  }
}
