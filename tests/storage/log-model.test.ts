/**
 * Property test: random seeded sequences of append (with and without
 * truncation, alone and concurrent), beginSnapshot, endSnapshot,
 * installSnapshot, close and reopen, checked after every step against a
 * plain in-memory model of the log. A failure prints its seed and step;
 * `STORAGE_SEED=<n>` replays one; `STORAGE_SEEDS=<count>` runs more.seed.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { Entry, EntryType } from "../../src/raft/types.ts";
import { SegmentedLog } from "../../src/storage/segmented-log.ts";
import { SimulatedDisk } from "../../src/storage/simulated-disk.ts";
import { entryData, prng, removeDir, summary, tempDir } from "./helpers.ts";

/** The deliberately naive second implementation. */
class Model {
  snapIndex = 0;
  snapTerm = 0;
  /** entries[k] has index snapIndex + 1 + k. */
  entries: Entry[] = [];
  get last(): number {
    return this.snapIndex + this.entries.length;
  }
  term(i: number): number {
    return i === this.snapIndex ? this.snapTerm : this.entries[i - this.snapIndex - 1]!.term;
  }
  append(es: readonly Entry[]): void {
    const start = es[0]!.index;
    this.entries.length = start - this.snapIndex - 1;
    this.entries.push(...es);
  }
  compact(marker: number, term: number): void {
    this.entries = this.entries.slice(marker - this.snapIndex);
    this.snapIndex = marker;
    this.snapTerm = term;
  }
  install(index: number, term: number): void {
    this.entries = [];
    this.snapIndex = index;
    this.snapTerm = term;
  }
}

const OPTS = { segmentBytesMax: 4096, cacheBytesMax: 3000 };

async function runSeed(seed: number, steps: number, onRealDisk: boolean): Promise<void> {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const disk = onRealDisk ? null : new SimulatedDisk();
  const dir = disk === null ? tempDir(`model-${seed}`) : `/model-${seed}`;
  const opts = disk === null ? OPTS : { ...OPTS, fs: disk };
  const model = new Model();
  let log = await SegmentedLog.open(dir, opts);
  let step = 0;
  const ctx = () => `seed ${seed} step ${step} on ${disk === null ? "the real disk" : "the simulated disk"} (replay with STORAGE_SEED=${seed}); dir ${dir}`;
  const makeBatch = (start: number, n: number): Entry[] => {
    let term = Math.max(model.term(start - 1), 1) + (rand() < 0.3 ? 1 : 0);
    const out: Entry[] = [];
    for (let i = start; i < start + n; i++) {
      if (rand() < 0.05) term++;
      const r = rand();
      const type: EntryType = r < 0.1 ? "config" : r < 0.15 ? "noop" : "normal";
      out.push({ index: i, term, type, data: entryData(i, term, int(0, 200)) });
    }
    return out;
  };
  const check = (full: boolean) => {
    assert.equal(log.firstIndex(), model.snapIndex + 1, ctx());
    assert.equal(log.lastIndex(), model.last, ctx());
    assert.equal(log.snapshotMeta().index, model.snapIndex, ctx());
    assert.equal(log.term(model.snapIndex), model.snapTerm, ctx());
    assert.deepEqual(log.configs().map((c) => c.index), model.entries.filter((e) => e.type === "config").map((e) => e.index), ctx());
    if (model.entries.length === 0) return;
    for (let k = 0; k < 5; k++) {
      const i = int(model.snapIndex + 1, model.last);
      assert.equal(log.term(i), model.term(i), `${ctx()} term(${i})`);
    }
    const lo = full ? model.snapIndex + 1 : int(model.snapIndex + 1, model.last);
    const hi = full ? model.last + 1 : int(lo, model.last + 1);
    const maxBytes = full ? Infinity : int(0, 3000);
    const got = log.entries(lo, hi, maxBytes);
    const want: Entry[] = [];
    let budget = maxBytes;
    for (let i = lo; i < hi; i++) {
      const e = model.entries[i - model.snapIndex - 1]!;
      if (e.data.length > budget && want.length > 0) break;
      budget -= e.data.length;
      want.push(e);
    }
    assert.deepEqual(summary(got), summary(want), `${ctx()} entries(${lo}, ${hi}, ${maxBytes})`);
  };
  try {
    for (step = 0; step < steps; step++) {
      const r = rand();
      if (r < 0.45) {
        const truncate = model.entries.length > 0 && rand() < 0.2;
        const start = truncate ? int(model.snapIndex + 1, model.last) : model.last + 1;
        const batch = makeBatch(start, int(1, 30));
        await log.append(batch);
        model.append(batch);
      } else if (r < 0.55) {
        // Concurrent appends: group commit must keep their order and content.
        const ps: Promise<void>[] = [];
        for (let k = int(2, 6); k > 0; k--) {
          const batch = makeBatch(model.last + 1, int(1, 10));
          ps.push(log.append(batch));
          model.append(batch);
        }
        await Promise.all(ps);
      } else if (r < 0.65) {
        const sealed = await log.beginSnapshot();
        assert.equal(sealed, model.last, ctx());
      } else if (r < 0.77) {
        const marker = int(model.snapIndex, model.last);
        await log.endSnapshot(marker, model.term(marker), []);
        model.compact(marker, model.term(marker));
      } else if (r < 0.8) {
        const index = int(model.snapIndex, model.last + 20);
        const term = Math.max(model.entries.length > 0 ? model.term(model.last) : 1, model.snapTerm, 1) + int(0, 2);
        await log.installSnapshot({ index, term, membership: [] });
        model.install(index, term);
      } else if (r < 0.9) {
        await log.close();
        log = await SegmentedLog.open(dir, opts);
        check(true);
        continue;
      }
      check(false);
    }
    check(true);
  } finally {
    await log.close();
    if (disk === null) removeDir(dir);
  }
}

describe("SegmentedLog against an in-memory model", () => {
  after(() => {});
  const only = process.env["STORAGE_SEED"];
  const count = Number(process.env["STORAGE_SEEDS"] ?? 40);
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, k) => 1000 + k);
  it(`agrees on ${seeds.length} random seeded runs`, async () => {
    for (const seed of seeds) {
      try {
        // Most seeds on the simulated disk (fast); every eighth on the real one.
        await runSeed(seed, 150, seed % 8 === 0);
      } catch (err) {
        if (err instanceof Error && !err.message.includes(`seed ${seed}`)) {
          err.message = `seed ${seed} (replay with STORAGE_SEED=${seed}): ${err.message}`;
        }
        throw err;
      }
    }
  });
});
