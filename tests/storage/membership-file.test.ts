/**
 * Tests of the atomically replaced membership file.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { InvalidArgumentError, StorageCorruptError, StorageFailedError } from "../../src/errors.ts";
import { nodeFileLayer } from "../../src/storage/file-layer.ts";
import { FaultInjectingFileLayer } from "../../src/storage/fault-injection.ts";
import { MEMBERSHIP_FILE_NAME, MembershipFile } from "../../src/storage/membership-file.ts";
import { removeDir, tempDir, freshDirs } from "./helpers.ts";

const c1 = { index: 0, members: [{ id: "n1", url: "http://127.0.0.1:7001", voter: true }] };
const c2 = { index: 12, members: [...c1.members, { id: "n2", url: "http://127.0.0.1:7002", voter: false }] };

describe("MembershipFile", () => {
  const fresh = freshDirs();

  it("reads null until written, then the last write, across reopen", async () => {
    const dir = fresh("mf");
    const mf = await MembershipFile.open(dir);
    assert.equal(mf.read(), null);
    await mf.write(c1);
    await mf.write(c2);
    assert.deepEqual(mf.read(), c2);
    await mf.close();
    const again = await MembershipFile.open(dir);
    assert.deepEqual(again.read(), c2);
    await again.close();
  });

  it("deletes a leftover MEMBERSHIP.tmp and keeps the old file", async () => {
    const dir = fresh("mf-tmp");
    const mf = await MembershipFile.open(dir);
    await mf.write(c1);
    await mf.close();
    fs.writeFileSync(path.join(dir, MEMBERSHIP_FILE_NAME + ".tmp"), "half written");
    const again = await MembershipFile.open(dir);
    assert.deepEqual(again.read(), c1);
    assert.ok(!fs.existsSync(path.join(dir, MEMBERSHIP_FILE_NAME + ".tmp")));
    await again.close();
  });

  it("refuses a damaged file, naming it", async () => {
    const dir = fresh("mf-bad");
    const mf = await MembershipFile.open(dir);
    await mf.write(c2);
    await mf.close();
    const p = path.join(dir, MEMBERSHIP_FILE_NAME);
    const b = fs.readFileSync(p);
    b[20] = b[20]! ^ 4;
    fs.writeFileSync(p, b);
    await assert.rejects(MembershipFile.open(dir), (e: unknown) => e instanceof StorageCorruptError && e.file === p);
  });

  it("rejects ids that are too long without stopping", async () => {
    const mf = await MembershipFile.open(fresh("mf-long"));
    await assert.rejects(mf.write({ index: 1, members: [{ id: "x".repeat(300), url: "", voter: true }] }), InvalidArgumentError);
    await mf.write(c1);
    await mf.close();
  });

  it("stops after a failed rename", async () => {
    const layer = new FaultInjectingFileLayer(nodeFileLayer, { failAtStep: 0, mode: "error", ops: ["rename"] }, false);
    const mf = await MembershipFile.open(fresh("mf-fail"), layer);
    layer.arm();
    await assert.rejects(mf.write(c1), StorageFailedError);
    assert.throws(() => mf.read(), StorageFailedError);
    await assert.rejects(mf.write(c2), StorageFailedError);
    await mf.close();
  });
});
