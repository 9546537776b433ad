/**
 * The applier a simulated member's driver is handed: the hash-chain state
 * machine of `./state-machine.ts` behind the production `Applier` seam, so
 * the driver's apply path, its snapshots (taken through `snapshot()` into
 * the real snapshot store) and its restores (from the store, through
 * `restore()`) all run for real.
 *
 * Two kinds, drawn per seed: an in-memory machine that starts empty after
 * every crash (the driver restores it from the stored snapshot and replays
 * the log), and a persisted one that keeps what it last flushed (lazily,
 * every few applies) and must then be handed entries it already applied
 * again after a restart, which it ignores (the seed's contract).
 *
 * It checks, for the checker: entries arrive exactly once per restart in
 * log order, each durable locally before it is applied, and a restore never
 * moves the machine backwards past what it persisted.
 *
 * @module
 */
import type { Applier } from "../../src/node/applier.ts";
import type { Entry } from "../../src/raft/types.ts";
import type { Checker, HostView } from "./checks.ts";
import type { Prng } from "./prng.ts";
import { applyEntry, emptySm, type SmState } from "./state-machine.ts";

/** Encodes a state for a snapshot: 4 u32 words and a u64 index as two halves. */
export function encodeSm(s: SmState): Uint8Array {
  const out = new Uint8Array(24);
  const v = new DataView(out.buffer);
  v.setUint32(0, s.index % 0x1_0000_0000, true);
  v.setUint32(4, Math.floor(s.index / 0x1_0000_0000), true);
  v.setUint32(8, s.term, true);
  v.setUint32(12, s.hash, true);
  v.setUint32(16, s.writes, true);
  v.setUint32(20, 0x534d5631, true); // "SMV1"
  return out;
}

/** Decodes `encodeSm`'s bytes; throws on anything else. */
export function decodeSm(bytes: Uint8Array): SmState {
  if (bytes.length !== 24) throw new Error(`simulated state machine snapshot is ${bytes.length} bytes, not 24`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(20, true) !== 0x534d5631) throw new Error("not a simulated state machine snapshot");
  return { index: v.getUint32(0, true) + v.getUint32(4, true) * 0x1_0000_0000, term: v.getUint32(8, true), hash: v.getUint32(12, true), writes: v.getUint32(16, true) };
}

/** One member's state machine, across its incarnations. */
export class SimStateMachineApplier {
  /** The state as of the last applied index (what a read is served from). */
  current: SmState = emptySm;
  /** What a persisted machine has flushed: where it resumes after a crash. */
  flushed: SmState = emptySm;
  readonly persisted: boolean;
  readonly #host: HostView;
  readonly #checker: Checker;
  readonly #rng: Prng;

  constructor(host: HostView, checker: Checker, rng: Prng, persisted: boolean) {
    this.#host = host;
    this.#checker = checker;
    this.#rng = rng;
    this.persisted = persisted;
  }

  /** The process died: an in-memory machine loses everything, a persisted one keeps what it flushed. */
  crash(): void {
    this.current = this.persisted ? this.flushed : emptySm;
  }

  /** The production seam for one incarnation (`dead()`: it crashed, and a dead process applies nothing). */
  applier(dead: () => boolean): Applier {
    return {
      apply: (entries: readonly Entry[], waiting, settle) => {
        if (dead()) return new Promise<void>(() => {});
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i]!;
          const cur = this.current;
          if (e.index <= cur.index) {
            if (!this.persisted) this.#checker.fail(this.#host.id, `applier handed entry ${e.index} again (applied ${cur.index}) with an in-memory state machine`);
            // A persisted machine ignores what it applied before a restart (it must be the same entry).
            this.#checker.onReapplySkipped(this.#host, e);
            continue;
          }
          if (e.index !== cur.index + 1) this.#checker.fail(this.#host.id, `applied entry ${e.index} right after ${cur.index} (must be exactly once, in order)`);
          this.#checker.checkApplyDurable(this.#host, e);
          const after = applyEntry(cur, e);
          this.current = after;
          this.#checker.onApply(this.#host, e, after);
          const p = waiting[i];
          if (p !== null && p !== undefined) settle(p, e.index, null);
        }
        if (this.persisted && this.#rng.chance(0.3)) this.flushed = this.current;
      },
      lastApplied: () => this.current.index,
      snapshot: async () => {
        const s = this.current;
        return { index: s.index, chunks: (async function* () { yield encodeSm(s); })() };
      },
      restore: async (index, chunks) => {
        if (dead()) return new Promise<void>(() => {});
        const parts: Uint8Array[] = [];
        for await (const c of chunks) parts.push(c.slice());
        const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          bytes.set(p, at);
          at += p.length;
        }
        const s = decodeSm(bytes);
        if (s.index !== index) this.#checker.fail(this.#host.id, `restore(${index}) got a snapshot of the state at ${s.index}`);
        if (this.persisted && s.index < this.flushed.index) {
          this.#checker.fail(this.#host.id, `restored snapshot ${s.index}, behind the ${this.flushed.index} the persisted state machine had applied`);
        }
        this.#checker.checkSmState(this.#host.id, s, "restored snapshot");
        this.current = s;
        if (this.persisted) this.flushed = s;
      },
    };
  }
}
