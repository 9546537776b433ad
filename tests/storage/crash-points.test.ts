/**
 * "Kill the process at every step": each multi-step operation runs once to
 * count its disk-changing steps, then once per step with a crash injected
 * there (a crashing write also runs torn, half written). The directory is
 * reopened with the real file layer and checked: it opens, nothing above the
 * compaction marker and nothing acknowledged is lost, and the result is the
 * old or the new state, never a mix. Operations: beginSnapshot,
 * endSnapshot, installSnapshot, a suffix truncation across segments, an
 * append that starts a segment, the membership file replace and the state
 * file write.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { StorageFailedError } from "../../src/errors.ts";
import type { Entry } from "../../src/raft/types.ts";
import { nodeFileLayer } from "../../src/storage/file-layer.ts";
import type { FileLayer } from "../../src/storage/file-layer.ts";
import { FaultInjectingFileLayer } from "../../src/storage/fault-injection.ts";
import { MembershipFile } from "../../src/storage/membership-file.ts";
import { SegmentedLog } from "../../src/storage/segmented-log.ts";
import { StateFile } from "../../src/storage/state-file.ts";
import { copyDir, entries, entry, removeDir, summary, tempDir } from "./helpers.ts";

const members = [{ id: "n1", url: "http://a", voter: true }];
const SEG = { segmentBytesMax: 4096, cacheBytesMax: 0 };

/**
 * Runs `op` against a copy of `base` once per step with a crash there, then
 * calls `check` on the reopened directory.
 */
async function everyCrashPoint(
  base: string,
  op: (dir: string, fs: FileLayer) => Promise<void>,
  check: (dir: string, ctx: string) => Promise<void>,
): Promise<number> {
  const counting = new FaultInjectingFileLayer(nodeFileLayer, null, false);
  const countDir = copyDir(base, "count");
  await op(countDir, counting);
  removeDir(countDir);
  const steps = counting.steps;
  assert.ok(steps.length > 0);
  let cases = 0;
  for (let k = 0; k < steps.length; k++) {
    for (const tornBytes of steps[k]!.op === "pwrite" ? [0, 45] : [0]) {
      const dir = copyDir(base, "crash");
      const ctx = `crash at step ${k} (${steps[k]!.op} ${steps[k]!.path}, torn ${tornBytes}) of ${steps.map((s) => s.op).join(",")}; dir ${dir}`;
      const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: k, mode: "crash", tornBytes }, false);
      await assert.rejects(op(dir, layer), StorageFailedError, ctx);
      await layer.releaseAll();
      await check(dir, ctx);
      removeDir(dir);
      cases++;
    }
  }
  return cases;
}

/** Opens a log with `fs`, arms the fault layer, runs `body`. */
async function withLog(dir: string, fs: FileLayer, body: (log: SegmentedLog) => Promise<void>): Promise<void> {
  const log = await SegmentedLog.open(dir, { ...SEG, fs });
  if (fs instanceof FaultInjectingFileLayer) fs.arm();
  await body(log);
  await log.close();
}

/** Asserts the reopened log still works: append one entry, reopen, read it back. */
async function assertUsable(dir: string, ctx: string): Promise<void> {
  const log = await SegmentedLog.open(dir, SEG);
  const next = log.lastIndex() + 1;
  const e = entry(next, Math.max(log.term(next - 1), 1) + 100);
  await log.append([e]);
  await log.close();
  const again = await SegmentedLog.open(dir, SEG);
  assert.deepEqual(summary(again.entries(next, next + 1, Infinity)), summary([e]), ctx);
  await again.close();
}

function oldOrNew(got: readonly Entry[], old: readonly Entry[], neu: readonly Entry[], ctx: string): void {
  const g = summary(got);
  const isPrefixOf = (whole: readonly Entry[]) => {
    const w = summary(whole);
    return g.every((x, k) => x === w[k]);
  };
  assert.ok(isPrefixOf(old) || isPrefixOf(neu), ctx);
}

describe("crash at every step", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  /** A base log: 1..200 over several sealed segments plus an active one. */
  async function baseLog(): Promise<{ dir: string; all: Entry[] }> {
    const dir = tempDir("crash-base");
    dirs.push(dir);
    const log = await SegmentedLog.open(dir, SEG);
    const all: Entry[] = [];
    for (let i = 1; i <= 200; i += 20) {
      const batch = entries(i, i + 19, 1 + Math.floor(i / 60));
      await log.append(batch);
      all.push(...batch);
    }
    await log.close();
    return { dir, all };
  }

  it("beginSnapshot: nothing is lost", async () => {
    const { dir, all } = await baseLog();
    await everyCrashPoint(dir, (d, fs) => withLog(d, fs, async (log) => {
      await log.beginSnapshot();
    }), async (d, ctx) => {
      const log = await SegmentedLog.open(d, SEG);
      assert.equal(log.lastIndex(), 200, ctx);
      assert.deepEqual(summary(log.entries(1, 201, Infinity)), summary(all), ctx);
      await log.close();
      await assertUsable(d, ctx);
    });
  });

  it("endSnapshot: nothing above the marker is lost", async () => {
    const { dir, all } = await baseLog();
    const log = await SegmentedLog.open(dir, SEG);
    await log.beginSnapshot();
    await log.close();
    const marker = 150;
    await everyCrashPoint(dir, (d, fs) => withLog(d, fs, async (l) => {
      await l.endSnapshot(marker, all[marker - 1]!.term, members);
    }), async (d, ctx) => {
      const l = await SegmentedLog.open(d, SEG);
      const first = l.firstIndex();
      assert.ok(first === 1 || first === marker + 1, `${ctx}: firstIndex ${first}`);
      assert.equal(l.snapshotMeta().index, first - 1, ctx);
      assert.equal(l.lastIndex(), 200, ctx);
      assert.deepEqual(summary(l.entries(first, 201, Infinity)), summary(all.slice(first - 1)), ctx);
      await l.close();
      await assertUsable(d, ctx);
    });
  });

  it("installSnapshot: the old log or the new empty one, nothing in between", async () => {
    const { dir, all } = await baseLog();
    const meta = { index: 170, term: 9, membership: members };
    await everyCrashPoint(dir, (d, fs) => withLog(d, fs, async (l) => {
      await l.installSnapshot(meta);
    }), async (d, ctx) => {
      const l = await SegmentedLog.open(d, SEG);
      if (l.snapshotMeta().index === 0) {
        assert.equal(l.lastIndex(), 200, ctx);
        assert.deepEqual(summary(l.entries(1, 201, Infinity)), summary(all), ctx);
      } else {
        assert.deepEqual(l.snapshotMeta(), meta, ctx);
        assert.equal(l.firstIndex(), 171, ctx);
        assert.equal(l.lastIndex(), 170, ctx);
        assert.equal(l.term(170), 9, ctx);
      }
      await l.close();
      await assertUsable(d, ctx);
    });
  });

  it("suffix truncation across segments: every entry below the cut survives; the rest is old or new", async () => {
    const { dir, all } = await baseLog();
    const cut = 45; // in an early sealed segment
    const neu = entries(cut, cut + 9, 7);
    await everyCrashPoint(dir, (d, fs) => withLog(d, fs, async (l) => {
      await l.append(neu);
    }), async (d, ctx) => {
      const l = await SegmentedLog.open(d, SEG);
      assert.ok(l.lastIndex() >= cut - 1, ctx);
      assert.deepEqual(summary(l.entries(1, cut, Infinity)), summary(all.slice(0, cut - 1)), ctx);
      if (l.lastIndex() >= cut) oldOrNew(l.entries(cut, l.lastIndex() + 1, Infinity), all.slice(cut - 1), neu, ctx);
      await l.close();
      await assertUsable(d, ctx);
    });
  });

  it("an append that starts a new segment: acknowledged entries survive, new ones are a prefix", async () => {
    const { dir, all } = await baseLog();
    const neu = entries(201, 300, 5);
    await everyCrashPoint(dir, (d, fs) => withLog(d, fs, async (l) => {
      await l.append(neu);
    }), async (d, ctx) => {
      const l = await SegmentedLog.open(d, SEG);
      assert.ok(l.lastIndex() >= 200, ctx);
      assert.deepEqual(summary(l.entries(1, 201, Infinity)), summary(all), ctx);
      if (l.lastIndex() > 200) oldOrNew(l.entries(201, l.lastIndex() + 1, Infinity), [], neu, ctx);
      await l.close();
      await assertUsable(d, ctx);
    });
  });

  it("membership file replace: the whole old or the whole new file", async () => {
    const dir = tempDir("crash-mf");
    dirs.push(dir);
    const oldC = { index: 5, members };
    const newC = { index: 9, members: [...members, { id: "n2", url: "http://b", voter: false }] };
    const mf = await MembershipFile.open(dir);
    await mf.write(oldC);
    await mf.close();
    await everyCrashPoint(dir, async (d, fs) => {
      const m = await MembershipFile.open(d, fs);
      if (fs instanceof FaultInjectingFileLayer) fs.arm();
      await m.write(newC);
      await m.close();
    }, async (d, ctx) => {
      const m = await MembershipFile.open(d);
      const got = JSON.stringify(m.read());
      assert.ok(got === JSON.stringify(oldC) || got === JSON.stringify(newC), `${ctx}: ${got}`);
      await m.close();
    });
  });

  it("state file write: the old or the new state", async () => {
    const dir = tempDir("crash-sf");
    dirs.push(dir);
    const oldS = { term: 4, votedFor: "n1", commitIndex: 3 };
    const newS = { term: 5, votedFor: "n2", commitIndex: 3 };
    const sf = await StateFile.open(dir);
    await sf.write(oldS);
    await sf.close();
    await everyCrashPoint(dir, async (d, fs) => {
      const s = await StateFile.open(d, fs);
      if (fs instanceof FaultInjectingFileLayer) fs.arm();
      await s.write(newS);
      await s.close();
    }, async (d, ctx) => {
      const s = await StateFile.open(d);
      const got = JSON.stringify(s.read());
      assert.ok(got === JSON.stringify(oldS) || got === JSON.stringify(newS), `${ctx}: ${got}`);
      await s.close();
    });
  });
});
