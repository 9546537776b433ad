/**
 * The free-space watermark (src/node/disk-space.ts) on the simulated disk
 * the simulator uses: before an append it reads statfs only once the bytes
 * counted since the last reading could have used a quarter of the headroom,
 * yet the member's own appends are met exactly as a reading before every
 * batch met them: the first batch after the one that took the disk below
 * the minimum sees it low.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DiskSpace } from "../../src/node/disk-space.ts";
import { SimulatedDisk } from "../../src/storage/simulated-disk.ts";

/** A simulated disk that counts its statfs readings. */
class CountingDisk extends SimulatedDisk {
  readings = 0;
  override freeBytes(p: string): number {
    this.readings++;
    return super.freeBytes(p);
  }
}

const MIN = 64 * 1024;

async function setUp(capacity: number): Promise<{ disk: CountingDisk; space: DiskSpace; write: (bytes: number) => Promise<void> }> {
  const disk = new CountingDisk();
  disk.capacityBytes = capacity;
  await disk.mkdir("/d");
  const file = await disk.open("/d/log", "create");
  let at = 0;
  const write = async (bytes: number) => {
    await disk.writeDurable(file, new Uint8Array(bytes), at);
    at += bytes;
  };
  const space = new DiskSpace(disk, "/d", MIN, () => {});
  space.check();
  return { disk, space, write };
}

describe("DiskSpace before appends", () => {
  it("reads rarely while the headroom is large, and sees the disk low at the batch after the crossing one", async () => {
    const { disk, space, write } = await setUp(MIN + 512 * 1024);
    const batch = 700;
    let batches = 0;
    let crossedAt = -1;
    while (!space.low) {
      assert.ok(batches < 10_000, "the watermark trips before the disk is full");
      space.beforeAppend(batch);
      if (space.low) break;
      await write(batch);
      batches++;
      if (crossedAt < 0 && disk.freeBytes("/d") < MIN) crossedAt = batches;
      disk.readings--; // that reading was the test's own
    }
    assert.ok(crossedAt > 0, "the appends took the disk below the minimum");
    assert.equal(batches, crossedAt, `low seen at the batch after the one that crossed (crossed at ${crossedAt}, seen after ${batches})`);
    // A reading per batch would be `batches` readings; the headroom shrinks by a quarter per reading.
    assert.ok(disk.readings < batches / 10, `${disk.readings} readings for ${batches} batches`);
  });

  it("reads before every batch while low, so room made again is seen at once", async () => {
    const { disk, space, write } = await setUp(MIN + 10_000);
    await write(20_000); // another writer: the reading every second meets it
    space.beforeAppend(100);
    assert.equal(space.low, false, "not counted, so not read before this batch");
    space.check();
    assert.equal(space.low, true);
    const before = disk.readings;
    space.beforeAppend(100);
    space.beforeAppend(100);
    assert.equal(disk.readings, before + 2);
    disk.capacityBytes = Infinity;
    space.beforeAppend(100);
    assert.equal(space.low, false);
  });

  it("a batch that alone reaches a quarter of the headroom is read before", async () => {
    const { disk, space } = await setUp(MIN + 400_000);
    const before = disk.readings;
    space.beforeAppend(99_000);
    assert.equal(disk.readings, before, "99,000 bytes are under a quarter of 400,000");
    space.beforeAppend(1_000);
    assert.equal(disk.readings, before + 1, "100,000 counted bytes reach the quarter");
  });
});
