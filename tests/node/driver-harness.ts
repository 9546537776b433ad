/**
 * A production `RaftDriver` on hand-made seams, for tests that script one
 * exact situation: a manual clock (no timer ever fires by itself), a
 * transport that records what the driver sends, a recording state machine,
 * and storage on any `FileLayer` (usually a `SimulatedDisk`, so a test can
 * crash it at a chosen step). Not a test file itself.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { localApplier } from "../../src/node/applier.ts";
import type { Clock } from "../../src/node/clock.ts";
import { DRIVER_DEFAULTS, RaftDriver } from "../../src/node/driver.ts";
import { openNodeStorage } from "../../src/node/node-storage.ts";
import type { SnapshotChunks, Transport } from "../../src/node/transport.ts";
import type { StateMachine } from "../../src/node/types.ts";
import type { Message, MsgSnap } from "../../src/raft/types.ts";
import type { FileLayer } from "../../src/storage/file-layer.ts";

/** A clock whose timers never fire: the test drives the driver by messages alone. */
export const stillClock: Clock = { now: () => 0, setTimer: () => () => {}, randomU32: () => 7, wallMs: () => 0 };

/** Records every message the driver sends. */
export class RecordingTransport implements Transport {
  readonly sent: Message[] = [];
  readonly #urls = new Map<string, string>();
  send(msgs: readonly Message[]): void {
    this.sent.push(...msgs);
  }
  sendSnapshot(_msg: MsgSnap, _chunks: SnapshotChunks): Promise<void> {
    return Promise.reject(new Error("no snapshots sent in this test"));
  }
  setUrl(id: string, url: string): void {
    this.#urls.set(id, url);
  }
  url(id: string): string | undefined {
    return this.#urls.get(id);
  }
  close(): void {}
}

/** A state machine recording what it applied; persisted ones resume from `lastApplied`. */
export class RecordingSm implements StateMachine {
  applied: number[] = [];
  last = 0;
  restoredAt: number | null = null;
  apply(id: number): number {
    this.applied.push(id);
    this.last = id;
    return id;
  }
  lastApplied(): number {
    return this.last;
  }
  snapshot() {
    const at = this.last;
    return { index: at, chunks: (async function* () { yield new TextEncoder().encode(`state@${at}`); })() };
  }
  async restore(index: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const _ of chunks) { /* the content is the index */ }
    this.restoredAt = index;
    this.last = index;
  }
}

/** Starts a driver for member `id` on the storage in `dir`. */
export async function driverOn(fs: FileLayer, dir: string, id: string, sm: StateMachine, transport = new RecordingTransport()): Promise<{ driver: RaftDriver; transport: RecordingTransport }> {
  const storage = await openNodeStorage(dir, { fs, segmentBytesMax: 4096 });
  const driver = await RaftDriver.create({
    id,
    url: `http://${id}:1`,
    clusterId: "test",
    tunables: { ...DRIVER_DEFAULTS, diskFreeBytesMin: 0 },
    clock: stillClock,
    storage,
    transport: () => transport,
    applier: localApplier(sm),
    logger: () => {},
    runtimeName: "test",
  });
  return { driver, transport };
}

/** Lets the driver's promises run until `done()` holds (or gives up after many turns). */
export async function settle(done: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise<void>((r) => setImmediate(r));
}
