/**
 * Contract tests of `nodeFileLayer` (positional writes, sizes, rename and
 * directory fsync, errors as `StorageFailedError`) and of the fault
 * injecting wrapper.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { StorageFailedError } from "../../src/errors.ts";
import { nodeFileLayer } from "../../src/storage/file-layer.ts";
import { FaultInjectingFileLayer } from "../../src/storage/fault-injection.ts";
import { atomicWriteFile } from "../../src/storage/atomic-file.ts";
import { removeDir, tempDir } from "./helpers.ts";

describe("nodeFileLayer", () => {
  let dir = "";
  before(() => {
    dir = tempDir("fl");
  });
  after(() => removeDir(dir));

  it("pwrite inside the file leaves its size unchanged", async () => {
    const f = await nodeFileLayer.open(path.join(dir, "a"), "create");
    await nodeFileLayer.pwrite(f, new Uint8Array(1024).fill(1), 0);
    await nodeFileLayer.fdatasync(f);
    assert.equal(nodeFileLayer.size(f), 1024);
    await nodeFileLayer.pwrite(f, new Uint8Array(100).fill(2), 512);
    await nodeFileLayer.fdatasync(f);
    assert.equal(nodeFileLayer.size(f), 1024);
    const back = new Uint8Array(1024);
    assert.equal(nodeFileLayer.pread(f, back, 0), 1024);
    assert.equal(back[511], 1);
    assert.equal(back[512], 2);
    assert.equal(back[611], 2);
    assert.equal(back[612], 1);
    await nodeFileLayer.close(f);
  });

  it("pwrite past the end extends; truncate shrinks; pread stops at the end", async () => {
    const f = await nodeFileLayer.open(path.join(dir, "b"), "create");
    await nodeFileLayer.pwrite(f, new Uint8Array(10).fill(7), 100);
    assert.equal(nodeFileLayer.size(f), 110);
    await nodeFileLayer.truncate(f, 50);
    await nodeFileLayer.fdatasync(f);
    assert.equal(nodeFileLayer.size(f), 50);
    assert.equal(nodeFileLayer.pread(f, new Uint8Array(100), 20), 30);
    await nodeFileLayer.close(f);
  });

  it("open(\"readwrite\") never appends: a write at offset 0 overwrites", async () => {
    const p = path.join(dir, "c");
    fs.writeFileSync(p, "hello world");
    const f = await nodeFileLayer.open(p, "readwrite");
    await nodeFileLayer.pwrite(f, new TextEncoder().encode("J"), 0);
    await nodeFileLayer.close(f);
    assert.equal(fs.readFileSync(p, "utf8"), "Jello world");
  });

  it("writeThrough opens with O_DSYNC (checked on Linux), keeps each mode's meaning, and writeDurable writes at its position", async () => {
    const flagsOf = (f: object): number | null => {
      if (process.platform !== "linux") return null;
      const m = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${(f as { fd: number }).fd}`, "utf8"));
      return m === null ? null : parseInt(m[1]!, 8);
    };
    const O_DSYNC = (fs.constants as { O_DSYNC?: number }).O_DSYNC ?? 0;
    const p = path.join(dir, "wt");
    const f = await nodeFileLayer.open(p, "create", { writeThrough: true });
    const plain = await nodeFileLayer.open(path.join(dir, "wt-plain"), "create");
    const flags = flagsOf(f);
    if (flags !== null) {
      assert.equal(flags & O_DSYNC, O_DSYNC, `O_DSYNC on the descriptor (flags ${flags.toString(8)})`);
      assert.equal((f as unknown as { writeThrough: boolean }).writeThrough, true);
      assert.equal(flagsOf(plain)! & O_DSYNC, 0, "and not on one opened without writeThrough");
    }
    await nodeFileLayer.writeDurable(f, new TextEncoder().encode("hello world"), 0);
    await nodeFileLayer.writeDurable(plain, new TextEncoder().encode("plain"), 3);
    await nodeFileLayer.close(f);
    await nodeFileLayer.close(plain);
    assert.equal(fs.readFileSync(path.join(dir, "wt-plain"), "latin1"), "\0\0\0plain");
    await assert.rejects(nodeFileLayer.open(p, "create", { writeThrough: true }), StorageFailedError, "create still refuses an existing file");
    const g = await nodeFileLayer.open(p, "readwrite", { writeThrough: true });
    await nodeFileLayer.writeDurable(g, new TextEncoder().encode("J"), 0);
    await nodeFileLayer.writeDurable(g, new TextEncoder().encode("!"), 11);
    assert.equal(nodeFileLayer.size(g), 12);
    await nodeFileLayer.close(g);
    assert.equal(fs.readFileSync(p, "utf8"), "Jello world!", "readwrite neither truncates nor appends");
  });

  it("rename replaces the target and a directory handle can be fsynced", async () => {
    fs.writeFileSync(path.join(dir, "new.tmp"), "new");
    fs.writeFileSync(path.join(dir, "target"), "old");
    const d = await nodeFileLayer.openDir(dir);
    await nodeFileLayer.rename(path.join(dir, "new.tmp"), path.join(dir, "target"));
    await nodeFileLayer.fsyncDir(d);
    await nodeFileLayer.close(d);
    assert.equal(fs.readFileSync(path.join(dir, "target"), "utf8"), "new");
    assert.ok(!(await nodeFileLayer.readdir(dir)).includes("new.tmp"));
  });

  it("atomicWriteFile leaves no temporary file behind", async () => {
    await atomicWriteFile(dir, "ATOMIC", new Uint8Array([1, 2, 3]));
    await atomicWriteFile(dir, "ATOMIC", new Uint8Array([4, 5]));
    assert.deepEqual([...fs.readFileSync(path.join(dir, "ATOMIC"))], [4, 5]);
    assert.ok(!fs.existsSync(path.join(dir, "ATOMIC.tmp")));
  });

  it("turns errors into StorageFailedError naming the file", async () => {
    const missing = path.join(dir, "missing", "x");
    await assert.rejects(nodeFileLayer.open(missing, "readwrite"), (e: unknown) => e instanceof StorageFailedError && e.file === missing);
    await assert.rejects(nodeFileLayer.open(path.join(dir, "a"), "create"), StorageFailedError);
    await assert.rejects(nodeFileLayer.unlink(missing), StorageFailedError);
  });
});

describe("FaultInjectingFileLayer", () => {
  let dir = "";
  before(() => {
    dir = tempDir("fault");
  });
  after(() => removeDir(dir));

  it("fails exactly the chosen step in \"error\" mode, then works again", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 2, mode: "error" });
    const f = await layer.open(path.join(dir, "e"), "create"); // step 0
    await layer.pwrite(f, new Uint8Array(4), 0); // step 1
    await assert.rejects(layer.fdatasync(f), StorageFailedError); // step 2
    await layer.fdatasync(f); // step 3
    assert.deepEqual(layer.steps.map((s) => s.op), ["open", "pwrite", "fdatasync", "fdatasync"]);
    await layer.close(f);
  });

  it("writes only the torn prefix of a crashing pwrite, then refuses everything", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 1, mode: "crash", tornBytes: 3 });
    const p = path.join(dir, "t");
    const f = await layer.open(p, "create");
    await assert.rejects(layer.pwrite(f, new Uint8Array([1, 2, 3, 4, 5]), 0), StorageFailedError);
    assert.ok(layer.crashed);
    assert.throws(() => layer.size(f), StorageFailedError);
    await layer.releaseAll();
    assert.deepEqual([...fs.readFileSync(p)], [1, 2, 3]);
  });
});

describe("nodeFileLayer.mkdir", () => {
  let dir = "";
  before(() => {
    dir = tempDir("mkdir");
  });
  after(() => removeDir(dir));

  it("creates missing parents and is a no-op for an existing directory", async () => {
    const deep = path.join(dir, "a", "b", "c");
    await nodeFileLayer.mkdir(deep);
    assert.ok(fs.statSync(deep).isDirectory());
    await nodeFileLayer.mkdir(deep);
    assert.deepEqual(await nodeFileLayer.readdir(path.join(dir, "a", "b")), ["c"]);
  });
});
