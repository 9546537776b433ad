/**
 * Limits on incoming InstallSnapshot transfers, in front of the
 * `SnapshotReceiver` that writes them (both implement `SnapshotSink`):
 *
 * - only from the member that leads the term the snapshot claims (`admit`,
 *   see `./peer-admission.ts`), checked at begin;
 * - one transfer at a time: a second sender gets 503 (retry) while the
 *   first is active, unless it leads a newer term (the old transfer is then
 *   dropped, as a new leader's snapshot supersedes it);
 * - the size is declared at begin, checked against the free space of the
 *   data directory's file system with `reserveBytes` to spare (507
 *   otherwise), and no chunk may go past it (413);
 * - a transfer that receives nothing for `idleTimeoutMs` is dropped, with
 *   its file, so a sender that stops midway holds neither a file handle nor
 *   disk space.
 *
 * @module
 */
import * as fs from "node:fs";
import { RefusedError } from "../errors.ts";
import type { MsgSnap, NodeId } from "../raft/types.ts";
import type { SnapshotSink } from "../transport/routes.ts";
import type { Refusal } from "./peer-admission.ts";

/** Default of `idleTimeoutMs`: twice the sender's per-chunk request timeout. */
export const SNAPSHOT_IDLE_TIMEOUT_MS_DEFAULT = 60_000;

/** What the guard needs. */
export interface SnapshotGuardOptions {
  /** The directory snapshots are written to (its file system's free space is checked). */
  readonly dir: string;
  /** Whether `from` may send the snapshot `msg` describes: null, or the refusal. */
  readonly admit: (from: NodeId, msg: MsgSnap) => Refusal | null;
  /** Free space to leave on the file system besides the snapshot. */
  readonly reserveBytes: number;
  /** Drop a transfer that received nothing for this long. */
  readonly idleTimeoutMs: number;
  readonly logger: (line: string) => void;
  /** Free bytes of `dir`'s file system (injected for tests). Default: statfs. */
  readonly freeBytes?: () => number | null;
}

interface _Active {
  readonly from: NodeId;
  readonly id: string;
  readonly term: number;
  readonly totalBytes: number;
  lastMs: number;
}

function _statfsFree(dir: string): number | null {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null; // statfs unavailable: no check
  }
}

/** The sink the guard stands in front of. */
export interface GuardedSink extends SnapshotSink {
  /** Drops every unfinished transfer (with its file); the sink stays open. */
  dropAll(): Promise<void>;
  /** Drops every unfinished transfer and refuses new ones. */
  close(): Promise<void>;
}

/** A `SnapshotSink` that enforces the limits above on another one. */
export class SnapshotGuard implements SnapshotSink {
  readonly #inner: GuardedSink;
  readonly #o: SnapshotGuardOptions;
  #active: _Active | null = null;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(inner: GuardedSink, opts: SnapshotGuardOptions) {
    this.#inner = inner;
    this.#o = opts;
    this.#timer = setInterval(() => void this.#sweep(), Math.max(100, Math.min(1000, opts.idleTimeoutMs / 4)));
  }

  async begin(from: NodeId, snapshotId: string, msg: MsgSnap, totalBytes: number): Promise<number> {
    const no = this.#o.admit(from, msg);
    if (no !== null) throw new RefusedError(no.status, no.reason);
    const a = this.#active;
    if (a !== null && a.from === from && a.id === snapshotId) {
      if (a.totalBytes !== totalBytes) throw new RefusedError(409, `transfer ${snapshotId} was begun with ${a.totalBytes} bytes, not ${totalBytes}`);
      a.lastMs = performance.now();
      return this.#inner.begin(from, snapshotId, msg, totalBytes);
    }
    if (a !== null) {
      if (msg.term <= a.term && !this.#idle(a)) {
        throw new RefusedError(503, `a snapshot transfer from ${a.from} is in progress; one at a time`);
      }
      this.#o.logger(`dropping the snapshot transfer from ${a.from} (term ${a.term}) for one from ${from} (term ${msg.term})`);
      this.#active = null;
      await this.#inner.dropAll();
    }
    const free = (this.#o.freeBytes ?? (() => _statfsFree(this.#o.dir)))();
    if (free !== null && totalBytes + this.#o.reserveBytes > free) {
      throw new RefusedError(507, `a snapshot of ${totalBytes} bytes does not fit: ${free} bytes free, ${this.#o.reserveBytes} to keep`);
    }
    const held = await this.#inner.begin(from, snapshotId, msg, totalBytes);
    this.#active = { from, id: snapshotId, term: msg.term, totalBytes, lastMs: performance.now() };
    return held;
  }

  receivedOffset(from: NodeId, snapshotId: string): number | null {
    return this.#match(from, snapshotId) === null ? null : this.#inner.receivedOffset(from, snapshotId);
  }

  async write(from: NodeId, snapshotId: string, offset: number, chunk: Uint8Array): Promise<void> {
    const a = this.#match(from, snapshotId);
    if (a === null) throw new RefusedError(404, `no snapshot transfer ${snapshotId} from ${from}`);
    if (offset + chunk.length > a.totalBytes) throw new RefusedError(413, `chunk [${offset}, ${offset + chunk.length}) goes past the declared ${a.totalBytes} bytes`);
    a.lastMs = performance.now();
    await this.#inner.write(from, snapshotId, offset, chunk);
    a.lastMs = performance.now();
  }

  async finish(from: NodeId, snapshotId: string, totalBytes: number): Promise<void> {
    const a = this.#match(from, snapshotId);
    if (a === null) throw new RefusedError(404, `no snapshot transfer ${snapshotId} from ${from}`);
    if (totalBytes !== a.totalBytes) throw new RefusedError(409, `transfer ${snapshotId} was declared ${a.totalBytes} bytes, finished at ${totalBytes}`);
    a.lastMs = performance.now();
    try {
      await this.#inner.finish(from, snapshotId, totalBytes);
    } finally {
      if (this.#active === a) this.#active = null;
    }
  }

  /** Stops the idle timer and drops partial transfers. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#active = null;
    await this.#inner.close();
  }

  #match(from: NodeId, snapshotId: string): _Active | null {
    const a = this.#active;
    return a !== null && a.from === from && a.id === snapshotId ? a : null;
  }

  #idle(a: _Active): boolean {
    return performance.now() - a.lastMs > this.#o.idleTimeoutMs;
  }

  async #sweep(): Promise<void> {
    const a = this.#active;
    if (a === null || !this.#idle(a)) return;
    this.#active = null;
    this.#o.logger(`dropped the snapshot transfer ${a.id} from ${a.from}: nothing received for ${this.#o.idleTimeoutMs} ms`);
    await this.#inner.dropAll().catch((err) => this.#o.logger(`dropping an idle snapshot transfer failed: ${(err as Error).message}`));
  }
}
