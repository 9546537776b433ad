/**
 * Tests of the two-slot state file: torn writes at every byte offset of a
 * slot, corruption of both slots, Raft's rules on term and vote, lazy commit
 * index, and failure handling.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ClosedError, InvalidArgumentError, StorageCorruptError, StorageFailedError } from "../../src/errors.ts";
import type { HardState } from "../../src/raft/types.ts";
import { nodeFileLayer } from "../../src/storage/file-layer.ts";
import { FaultInjectingFileLayer } from "../../src/storage/fault-injection.ts";
import { encodeStateSlot, STATE_FILE_NAME, STATE_SLOT_BYTES, StateFile } from "../../src/storage/state-file.ts";
import { copyDir, prng, removeDir, tempDir } from "./helpers.ts";

describe("StateFile", () => {
  const dirs: string[] = [];
  const fresh = (label: string): string => {
    const d = tempDir(label);
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach(removeDir));

  it("starts at term 0 with no vote in a fresh directory, and keeps its size at 1024 bytes", async () => {
    const dir = fresh("sf-new");
    const sf = await StateFile.open(dir);
    assert.deepEqual(sf.read(), { term: 0, votedFor: null, commitIndex: 0 });
    await sf.write({ term: 1, votedFor: "n1", commitIndex: 0 });
    await sf.write({ term: 2, votedFor: null, commitIndex: 3 });
    await sf.close();
    assert.equal(fs.statSync(path.join(dir, STATE_FILE_NAME)).size, 1024);
    const again = await StateFile.open(dir);
    assert.deepEqual(again.read(), { term: 2, votedFor: null, commitIndex: 3 });
    await again.close();
  });

  it("enforces Raft's rules: term never goes back, one vote per term, commit never goes back", async () => {
    const sf = await StateFile.open(fresh("sf-rules"));
    await sf.write({ term: 5, votedFor: "a", commitIndex: 2 });
    await assert.rejects(sf.write({ term: 4, votedFor: null, commitIndex: 2 }), InvalidArgumentError);
    await assert.rejects(sf.write({ term: 5, votedFor: "b", commitIndex: 2 }), InvalidArgumentError);
    await assert.rejects(sf.write({ term: 5, votedFor: null, commitIndex: 2 }), InvalidArgumentError);
    await assert.rejects(sf.write({ term: 5, votedFor: "a", commitIndex: 1 }), InvalidArgumentError);
    await assert.rejects(sf.write({ term: 6, votedFor: "x".repeat(256), commitIndex: 2 }), InvalidArgumentError);
    // A new term resets the vote in the same write.
    await sf.write({ term: 6, votedFor: null, commitIndex: 2 });
    assert.deepEqual(sf.read(), { term: 6, votedFor: null, commitIndex: 2 });
    await sf.write({ term: 6, votedFor: "é".repeat(127), commitIndex: 2 });
    await sf.close();
  });

  it("writes a commit-index-only change without fdatasync, and a term change with one", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 1_000_000, mode: "error", ops: ["fdatasync"] }, false);
    const dir = fresh("sf-lazy");
    const sf = await StateFile.open(dir, layer);
    layer.arm();
    await sf.write({ term: 1, votedFor: null, commitIndex: 1 });
    await sf.write({ term: 1, votedFor: null, commitIndex: 2 });
    await sf.write({ term: 1, votedFor: null, commitIndex: 3 });
    assert.equal(layer.steps.length, 1, "only the term change synced");
    await sf.write({ term: 1, votedFor: "n2", commitIndex: 3 });
    assert.equal(layer.steps.length, 2);
    await sf.close();
    const again = await StateFile.open(dir);
    assert.deepEqual(again.read(), { term: 1, votedFor: "n2", commitIndex: 3 });
    await again.close();
  });

  it("a lazy write never overwrites the only durable slot", async () => {
    // After lazy writes, a crash must still find the last durable state:
    // lazy writes go to the slot that does not hold it.
    const dir = fresh("sf-lazy-slot");
    const sf = await StateFile.open(dir);
    await sf.write({ term: 3, votedFor: "a", commitIndex: 0 });
    for (let c = 1; c < 10; c++) await sf.write({ term: 3, votedFor: "a", commitIndex: c });
    // Before any flush, the durable record (seq 2) must still be intact in one slot.
    const bytes = fs.readFileSync(path.join(dir, STATE_FILE_NAME));
    const durable = Buffer.from(encodeStateSlot(2, { term: 3, votedFor: "a", commitIndex: 0 }));
    const intact = [0, 1].filter((s) => Buffer.compare(bytes.subarray(s * STATE_SLOT_BYTES, (s + 1) * STATE_SLOT_BYTES), durable) === 0);
    assert.equal(intact.length, 1, "the last durable record survives nine lazy writes");
    await sf.close();
    for (const s of [0, 1]) {
      // Either slot lost: the vote of term 3 survives.
      const copy = copyDir(dir, "sf-lazy-copy");
      dirs.push(copy);
      const b = fs.readFileSync(path.join(copy, STATE_FILE_NAME));
      b.fill(0, s * STATE_SLOT_BYTES, (s + 1) * STATE_SLOT_BYTES);
      fs.writeFileSync(path.join(copy, STATE_FILE_NAME), b);
      const r = await StateFile.open(copy);
      assert.equal(r.read().term, 3, `slot ${s} zeroed: the vote survives`);
      assert.equal(r.read().votedFor, "a");
      await r.close();
    }
  });

  it("survives a torn write at every byte offset of a slot (prefix kept, rest old or garbage)", async () => {
    const base = fresh("sf-torn");
    const older: HardState = { term: 7, votedFor: "node-seven", commitIndex: 40 };
    const newer: HardState = { term: 8, votedFor: null, commitIndex: 41 };
    const sf = await StateFile.open(base);
    await sf.write(older);
    await sf.close();
    const file = fs.readFileSync(path.join(base, STATE_FILE_NAME));
    // Which slot holds `older` (seq 2)? The next write goes to the other one.
    const olderSlot = Buffer.compare(file.subarray(0, STATE_SLOT_BYTES), Buffer.from(encodeStateSlot(2, older))) === 0 ? 0 : 1;
    const target = 1 - olderSlot;
    const newSlot = encodeStateSlot(3, newer);
    const rand = prng(12345);
    for (const mode of ["old-rest", "garbage-rest"] as const) {
      for (let cut = 0; cut <= STATE_SLOT_BYTES; cut++) {
        const torn = Buffer.from(file);
        torn.set(newSlot.subarray(0, cut), target * STATE_SLOT_BYTES);
        if (mode === "garbage-rest") {
          for (let i = cut; i < STATE_SLOT_BYTES; i++) torn[target * STATE_SLOT_BYTES + i] = Math.floor(rand() * 256);
        }
        const p = path.join(base, STATE_FILE_NAME);
        fs.writeFileSync(p, torn);
        const r = await StateFile.open(base);
        const got = r.read();
        await r.close();
        const ctx = `mode ${mode}, cut at byte ${cut} of slot ${target} in ${p}`;
        if (cut === STATE_SLOT_BYTES) assert.deepEqual(got, newer, ctx);
        else assert.ok(JSON.stringify(got) === JSON.stringify(older) || JSON.stringify(got) === JSON.stringify(newer), ctx);
      }
    }
  });

  it("refuses to open when neither slot is valid, naming the file", async () => {
    const dir = fresh("sf-bad");
    const sf = await StateFile.open(dir);
    await sf.write({ term: 2, votedFor: "b", commitIndex: 0 });
    await sf.close();
    const p = path.join(dir, STATE_FILE_NAME);
    const b = fs.readFileSync(p);
    b[10] = b[10]! ^ 1;
    b[STATE_SLOT_BYTES + 10] = b[STATE_SLOT_BYTES + 10]! ^ 1;
    fs.writeFileSync(p, b);
    await assert.rejects(StateFile.open(dir), (e: unknown) => e instanceof StorageCorruptError && e.file === p && /neither/.test(e.message));
    fs.writeFileSync(p, b.subarray(0, 1000));
    await assert.rejects(StateFile.open(dir), (e: unknown) => e instanceof StorageCorruptError && /1000 bytes/.test(e.message));
  });

  it("stops for good after a failed fdatasync; the failed state is never reported", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 0, mode: "error", ops: ["fdatasync"] }, false);
    const sf = await StateFile.open(fresh("sf-fail"), layer);
    layer.arm();
    await assert.rejects(sf.write({ term: 9, votedFor: "z", commitIndex: 0 }), StorageFailedError);
    assert.throws(() => sf.read(), StorageFailedError);
    await assert.rejects(sf.write({ term: 10, votedFor: null, commitIndex: 0 }), StorageFailedError);
    await sf.close();
    assert.throws(() => sf.read(), StorageFailedError);
  });

  it("fails with ClosedError after close", async () => {
    const sf = await StateFile.open(fresh("sf-closed"));
    await sf.close();
    assert.throws(() => sf.read(), ClosedError);
  });
});
