/**
 * Tests of the segmented log: appends and reads, truncation across segment
 * boundaries, compaction, snapshot install, torn last records at every byte
 * offset, flipped bits before the tail, and failure handling.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ClosedError, InvalidArgumentError, StorageCorruptError, StorageFailedError } from "../../src/errors.ts";
import { type FileLayer, nodeFileLayer } from "../../src/storage/file-layer.ts";
import { FaultInjectingFileLayer } from "../../src/storage/fault-injection.ts";
import { SegmentedLog } from "../../src/storage/segmented-log.ts";
import { RECORD_OVERHEAD_BYTES, SEGMENT_HEADER_BYTES } from "../../src/storage/segment-format.ts";
import { entries, entry, prng, removeDir, segmentFiles, summary, tempDir, freshDirs } from "./helpers.ts";

const members = [{ id: "n1", url: "http://127.0.0.1:7001", voter: true }];

describe("SegmentedLog", () => {
  const fresh = freshDirs();

  it("appends, reads back across segments and survives reopen", async () => {
    const dir = fresh("log-basic");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096, cacheBytesMax: 1000 });
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.term(0), 0);
    for (let i = 1; i <= 500; i += 25) await log.append(entries(i, i + 24, 1 + Math.floor(i / 100)));
    assert.ok(segmentFiles(dir).length > 5, "several segments");
    const all = log.entries(1, 501, Infinity);
    assert.equal(all.length, 500);
    await log.close();
    const again = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    assert.equal(again.lastIndex(), 500);
    assert.deepEqual(summary(again.entries(1, 501, Infinity)), summary(all));
    for (let i = 1; i <= 500; i++) assert.equal(again.term(i), 1 + Math.floor((Math.floor((i - 1) / 25) * 25 + 1) / 100), `term(${i})`);
    await again.close();
  });

  it("writeThrough: false opens the segments plainly and follows every append with an fdatasync; the default opens them write-through", async () => {
    const dir = fresh("log-write-through");
    const opens: { path: string; writeThrough: boolean }[] = [];
    const syncs: string[] = [];
    // nodeFileLayer's writeDurable calls this.fdatasync: through the copy, the count sees it.
    const counting: FileLayer = {
      ...nodeFileLayer,
      open(p, mode, opts) {
        opens.push({ path: p, writeThrough: opts?.writeThrough === true });
        return nodeFileLayer.open(p, mode, opts);
      },
      fdatasync(file) {
        syncs.push(file.path);
        return nodeFileLayer.fdatasync(file);
      },
    };
    const isSeg = (p: string) => p.endsWith(".seg");
    const plain = await SegmentedLog.open(dir, { fs: counting, writeThrough: false, segmentBytesMax: 4096 });
    const before = syncs.filter(isSeg).length;
    for (let i = 1; i <= 200; i += 10) await plain.append(entries(i, i + 9, 1));
    await plain.close();
    const segOpens = opens.filter((o) => isSeg(o.path));
    assert.ok(segOpens.length > 2, `several segments were created (${segOpens.length})`);
    assert.ok(segOpens.every((o) => !o.writeThrough), "none write-through");
    assert.ok(syncs.filter(isSeg).length - before >= 20, `an fdatasync per append at least (${syncs.filter(isSeg).length - before} for 20)`);
    opens.length = 0;
    syncs.length = 0;
    const wt = await SegmentedLog.open(dir, { fs: counting, segmentBytesMax: 4096 });
    assert.equal(wt.lastIndex(), 200, "what was appended without write-through is there");
    const reopened = opens.filter((o) => isSeg(o.path));
    assert.ok(reopened.every((o) => o.writeThrough), "recovery reopens the segments write-through by default");
    const syncsBefore = syncs.filter(isSeg).length;
    await wt.append(entries(201, 210, 1));
    assert.equal(opens.filter((o) => isSeg(o.path)).length, reopened.length, "the append fits the last segment (a new one's header would be fdatasynced)");
    assert.equal(syncs.filter(isSeg).length, syncsBefore, "an append to a write-through segment calls no fdatasync: its write is durable by itself");
    await wt.close();
    const again = await SegmentedLog.open(dir, { writeThrough: false });
    assert.deepEqual(summary(again.entries(1, 211, Infinity)), summary(entries(1, 210, 1)));
    await again.close();
  });

  it("entries() honours maxBytes but returns at least one entry", async () => {
    const log = await SegmentedLog.open(fresh("log-budget"), { segmentBytesMax: 4096, cacheBytesMax: 0 });
    await log.append(entries(1, 50, 1, 100));
    assert.equal(log.entries(1, 51, 0).length, 1);
    assert.equal(log.entries(1, 51, 250).length, 2);
    assert.equal(log.entries(1, 51, 300).length, 3);
    assert.equal(log.entries(10, 10, 0).length, 0);
    assert.throws(() => log.entries(0, 5, 100), InvalidArgumentError);
    assert.throws(() => log.entries(1, 52, 100), InvalidArgumentError);
    await log.close();
  });

  it("rejects gaps, decreasing terms and batches that are not consecutive, and stays usable", async () => {
    const log = await SegmentedLog.open(fresh("log-invalid"));
    await log.append(entries(1, 3, 2));
    await assert.rejects(log.append([entry(5, 2)]), InvalidArgumentError);
    await assert.rejects(log.append([entry(4, 1)]), InvalidArgumentError);
    await assert.rejects(log.append([entry(4, 2), entry(6, 2)]), InvalidArgumentError);
    await assert.rejects(log.append([entry(4, 3), entry(5, 2)]), InvalidArgumentError);
    await log.append([entry(4, 3)]);
    assert.equal(log.lastIndex(), 4);
    await log.close();
  });

  it("coalesces concurrent appends into one write and one fdatasync (group commit)", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, null, false);
    const log = await SegmentedLog.open(fresh("log-group"), { fs: layer });
    await log.append([entry(1, 1)]);
    layer.arm();
    const ps = [];
    for (let i = 2; i <= 41; i++) ps.push(log.append([entry(i, 1)]));
    await Promise.all(ps);
    const syncs = layer.steps.filter((s) => s.op === "fdatasync").length;
    const writes = layer.steps.filter((s) => s.op === "pwrite").length;
    assert.ok(syncs <= 2 && writes <= 2, `40 appends took ${writes} writes and ${syncs} fdatasyncs`);
    assert.equal(log.lastIndex(), 41);
    await log.close();
  });

  it("truncates a conflicting suffix across segment boundaries, durably", async () => {
    const dir = fresh("log-trunc");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096, cacheBytesMax: 0 });
    for (let i = 1; i <= 400; i += 20) await log.append(entries(i, i + 19, 1));
    const before = segmentFiles(dir).length;
    await log.append(entries(37, 40, 2));
    assert.equal(log.lastIndex(), 40);
    assert.equal(log.term(36), 1);
    assert.equal(log.term(37), 2);
    assert.ok(segmentFiles(dir).length < before);
    await log.append(entries(41, 60, 2));
    await log.close();
    const again = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    assert.equal(again.lastIndex(), 60);
    assert.deepEqual(summary(again.entries(1, 61, Infinity)), summary([...entries(1, 36, 1), ...entries(37, 60, 2)]));
    await again.close();
  });

  it("keeps config entries up to date through append, truncation, compaction and reopen", async () => {
    const dir = fresh("log-configs");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    const cfg = (i: number, t: number) => entry(i, t, 30, "config");
    await log.append([entry(1, 1), cfg(2, 1), entry(3, 1), cfg(4, 1), ...entries(5, 100, 1)]);
    await log.append([cfg(101, 1)]);
    assert.deepEqual(log.configs().map((c) => c.index), [2, 4, 101]);
    await log.append([entry(101, 2)]);
    assert.deepEqual(log.configs().map((c) => c.index), [2, 4]);
    await log.beginSnapshot();
    await log.endSnapshot(3, 1, members);
    assert.deepEqual(log.configs().map((c) => [c.index, c.term, c.data.length]), [[4, 1, 30]]);
    await log.close();
    const again = await SegmentedLog.open(dir);
    assert.deepEqual(again.configs().map((c) => c.index), [4]);
    assert.deepEqual([...again.configs()[0]!.data], [...entry(4, 1, 30, "config").data]);
    await again.close();
  });

  it("compacts: begin seals, end records the point first and deletes whole sealed segments", async () => {
    const dir = fresh("log-compact");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096, cacheBytesMax: 0 });
    for (let i = 1; i <= 300; i += 30) await log.append(entries(i, i + 29, 3));
    const marker = await log.beginSnapshot();
    assert.equal(marker, 300);
    await log.append(entries(301, 310, 4));
    await log.endSnapshot(250, 3, members);
    assert.equal(log.firstIndex(), 251);
    assert.equal(log.term(250), 3);
    assert.throws(() => log.term(249), InvalidArgumentError);
    assert.deepEqual(summary(log.entries(251, 311, Infinity)), summary([...entries(251, 300, 3), ...entries(301, 310, 4)]));
    await log.endSnapshot(249, 3, members); // below the compaction point (it moved meanwhile): nothing to do
    assert.equal(log.firstIndex(), 251);
    await assert.rejects(log.endSnapshot(260, 9, members), InvalidArgumentError);
    await assert.rejects(log.endSnapshot(311, 4, members), InvalidArgumentError);
    await assert.rejects(log.append([entry(250, 5)]), InvalidArgumentError);
    await log.close();
    const again = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    assert.deepEqual(again.snapshotMeta(), { index: 250, term: 3, membership: members });
    assert.equal(again.firstIndex(), 251);
    assert.equal(again.lastIndex(), 310);
    assert.deepEqual(summary(again.entries(251, 311, Infinity)), summary([...entries(251, 300, 3), ...entries(301, 310, 4)]));
    // Everything sealed at or below the marker is gone.
    await again.endSnapshot(300, 3, members);
    assert.equal(segmentFiles(dir).length, 1);
    await again.close();
  });

  it("installs a snapshot: the log becomes empty after it, durably", async () => {
    const dir = fresh("log-install");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    await log.append(entries(1, 120, 1));
    await log.installSnapshot({ index: 90, term: 5, membership: members });
    assert.equal(log.firstIndex(), 91);
    assert.equal(log.lastIndex(), 90);
    assert.equal(log.term(90), 5);
    await log.append(entries(91, 95, 6));
    await log.close();
    const again = await SegmentedLog.open(dir);
    assert.equal(again.firstIndex(), 91);
    assert.equal(again.lastIndex(), 95);
    assert.deepEqual(summary(again.entries(91, 96, Infinity)), summary(entries(91, 95, 6)));
    await again.installSnapshot({ index: 1000, term: 7, membership: [] });
    await again.close();
    const third = await SegmentedLog.open(dir);
    assert.equal(third.lastIndex(), 1000);
    assert.equal(third.term(1000), 7);
    await third.close();
  });

  it("cuts a torn last record at every byte offset (truncated or garbage) and keeps every record before it", async () => {
    const base = fresh("log-torn");
    const log = await SegmentedLog.open(base);
    for (let i = 1; i <= 5; i++) await log.append([entry(i, 1, 50)]);
    await log.close();
    const [segName] = segmentFiles(base);
    const segPath = path.join(base, segName!);
    const full = fs.readFileSync(segPath);
    const lastLen = RECORD_OVERHEAD_BYTES + 50;
    const lastStart = full.length - lastLen;
    const rand = prng(777);
    for (const mode of ["truncate", "garbage", "zeros"] as const) {
      for (let cut = 0; cut < lastLen; cut++) {
        const dir = fresh("log-torn-case");
        let bytes: Buffer = Buffer.from(full.subarray(0, lastStart + cut));
        if (mode !== "truncate") {
          const rest = Buffer.alloc(lastLen - cut);
          if (mode === "garbage") for (let i = 0; i < rest.length; i++) rest[i] = Math.floor(rand() * 256);
          bytes = Buffer.concat([bytes, rest]);
        }
        fs.writeFileSync(path.join(dir, segName!), bytes);
        const lines: string[] = [];
        const ctx = `mode ${mode}, last record torn at byte ${cut} of ${lastLen}, file ${path.join(dir, segName!)}`;
        const r = await SegmentedLog.open(dir, { logger: (l) => lines.push(l) });
        assert.equal(r.lastIndex(), 4, ctx);
        assert.deepEqual(summary(r.entries(1, 5, Infinity)), summary(Array.from({ length: 4 }, (_, k) => entry(k + 1, 1, 50))), ctx);
        const intact = mode === "truncate" && cut === 0;
        assert.equal(lines.length, intact ? 0 : 1, ctx);
        if (!intact) assert.match(lines[0]!, /torn/, ctx);
        assert.equal(fs.statSync(path.join(dir, segName!)).size, lastStart, ctx);
        await r.append([entry(5, 2, 10)]);
        await r.close();
        removeDir(dir);
      }
    }
  });

  it("refuses to open on a flipped bit in any byte of an earlier record, naming the file and offset", async () => {
    const base = fresh("log-flip");
    const log = await SegmentedLog.open(base);
    for (let i = 1; i <= 4; i++) await log.append([entry(i, 1, 20)]);
    await log.close();
    const [segName] = segmentFiles(base);
    const full = fs.readFileSync(path.join(base, segName!));
    const recLen = RECORD_OVERHEAD_BYTES + 20;
    const second = SEGMENT_HEADER_BYTES + recLen; // record of index 2
    const rand = prng(4242);
    const dir = fresh("log-flip-case");
    const p = path.join(dir, segName!);
    for (let b = 0; b < recLen; b++) {
      const bytes = Buffer.from(full);
      bytes[second + b] = bytes[second + b]! ^ (1 << Math.floor(rand() * 8));
      fs.writeFileSync(p, bytes);
      await assert.rejects(
        SegmentedLog.open(dir),
        (e: unknown) => e instanceof StorageCorruptError && e.file === p && e.offset === second && e.message.includes(p) && e.message.includes(String(second)),
        `bit flipped in byte ${b} of the record at ${second} in ${p}`,
      );
    }
  });

  it("detects a flipped bit in a sealed segment on read (and at open with verifyAll)", async () => {
    const dir = fresh("log-flip-sealed");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    await log.append(entries(1, 100, 1));
    await log.append(entries(101, 110, 1));
    await log.close();
    const [first] = segmentFiles(dir);
    const p = path.join(dir, first!);
    const bytes = fs.readFileSync(p);
    const at = SEGMENT_HEADER_BYTES + 3 * (RECORD_OVERHEAD_BYTES + 40) + 30; // inside the data of index 4
    bytes[at] = bytes[at]! ^ 0x10;
    fs.writeFileSync(p, bytes);
    await assert.rejects(SegmentedLog.open(dir, { verifyAll: true }), (e: unknown) => e instanceof StorageCorruptError && e.file === p);
    const r = await SegmentedLog.open(dir, { cacheBytesMax: 0 });
    assert.equal(r.entries(1, 3, Infinity).length, 2);
    assert.throws(() => r.entries(1, 10, Infinity), (e: unknown) => e instanceof StorageCorruptError && e.file === p);
    assert.throws(() => r.lastIndex(), StorageCorruptError, "the log stops after finding corruption");
    await r.close();
  });

  it("refuses to cut a torn tail below a known commit index", async () => {
    const dir = fresh("log-commit");
    const log = await SegmentedLog.open(dir);
    for (let i = 1; i <= 3; i++) await log.append([entry(i, 1)]);
    await log.close();
    const [segName] = segmentFiles(dir);
    const p = path.join(dir, segName!);
    fs.truncateSync(p, fs.statSync(p).size - 5);
    await assert.rejects(SegmentedLog.open(dir, { commitIndex: 3 }), StorageCorruptError);
    const r = await SegmentedLog.open(dir, { commitIndex: 2 });
    assert.equal(r.lastIndex(), 2);
    await r.close();
  });

  it("stops for good after an injected fdatasync failure; nothing is reported durable", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 2, mode: "error", ops: ["fdatasync"] }, false);
    const dir = fresh("log-fail");
    const log = await SegmentedLog.open(dir, { fs: layer });
    layer.arm();
    await log.append(entries(1, 10, 1)); // fdatasyncs #0 (new segment's header) and #1 (the batch)
    const a = log.append(entries(11, 20, 1));
    const b = log.append(entries(21, 30, 1));
    await assert.rejects(a, StorageFailedError);
    await assert.rejects(b, StorageFailedError);
    assert.throws(() => log.lastIndex(), StorageFailedError);
    assert.throws(() => log.entries(1, 2, 100), StorageFailedError);
    await assert.rejects(log.append(entries(11, 12, 1)), StorageFailedError);
    await assert.rejects(log.beginSnapshot(), StorageFailedError);
    await log.close();
    assert.throws(() => log.lastIndex(), StorageFailedError);
  });

  it("fails with ClosedError after close", async () => {
    const log = await SegmentedLog.open(fresh("log-closed"));
    await log.close();
    assert.throws(() => log.lastIndex(), ClosedError);
    await assert.rejects(log.append([entry(1, 1)]), ClosedError);
  });
});

describe("SegmentedLog index files and write failures", () => {
  const fresh = freshDirs();

  it("rebuilds a missing, stale or damaged index file from its segment", async () => {
    const dir = fresh("log-idx");
    const log = await SegmentedLog.open(dir, { segmentBytesMax: 4096 });
    for (let i = 1; i <= 300; i += 30) await log.append(entries(i, i + 29, 1));
    await log.close();
    const idx = fs.readdirSync(dir).filter((n) => n.endsWith(".idx")).sort();
    assert.ok(idx.length >= 3);
    fs.rmSync(path.join(dir, idx[0]!));
    const b = fs.readFileSync(path.join(dir, idx[1]!));
    b[b.length - 10] = b[b.length - 10]! ^ 1;
    fs.writeFileSync(path.join(dir, idx[1]!), b);
    fs.copyFileSync(path.join(dir, idx[1]!), path.join(dir, idx[2]!)); // an index of another segment
    const again = await SegmentedLog.open(dir, { segmentBytesMax: 4096, cacheBytesMax: 0 });
    assert.deepEqual(summary(again.entries(1, 301, Infinity)), summary(entries(1, 300, 1)));
    assert.ok(again.stats().indexBytes >= 300 * 4);
    await again.close();
    for (const n of idx) assert.ok(fs.existsSync(path.join(dir, n)), `${n} rewritten`);
  });

  it("stops after a failed write (disk full); reopening shows only what was acknowledged", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 0, mode: "error", ops: ["pwrite"], tornBytes: 0 }, false);
    const dir = fresh("log-enospc");
    const log = await SegmentedLog.open(dir, { fs: layer });
    await log.append(entries(1, 5, 1));
    layer.arm();
    await assert.rejects(log.append(entries(6, 9, 1)), StorageFailedError);
    await assert.rejects(log.append(entries(6, 9, 1)), StorageFailedError);
    await log.close();
    const again = await SegmentedLog.open(dir);
    assert.equal(again.lastIndex(), 5);
    await again.close();
  });
});
