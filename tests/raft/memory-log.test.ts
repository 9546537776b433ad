/**
 * `MemoryLog`: append with truncation, compaction, reset, and the byte
 * limit of `entries()`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryLog } from "../../src/raft/memory-log.ts";
import type { Entry } from "../../src/raft/types.ts";

const ent = (index: number, term: number, bytes = 1): Entry => ({ index, term, type: "normal", data: new Uint8Array(bytes) });

describe("MemoryLog", () => {
  it("appends, replaces a suffix, and refuses gaps", () => {
    const log = new MemoryLog();
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.term(0), 0);
    log.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    log.append([ent(2, 2)]);
    assert.equal(log.lastIndex(), 2);
    assert.equal(log.term(2), 2);
    assert.throws(() => log.append([ent(5, 2)]), /no gap/);
    log.truncateFrom(2);
    assert.equal(log.lastIndex(), 1);
  });

  it("compacts and answers the snapshot's term at firstIndex - 1", () => {
    const log = new MemoryLog();
    log.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
    log.compact(2);
    assert.equal(log.firstIndex(), 3);
    assert.equal(log.term(2), 1);
    assert.throws(() => log.term(1), /index within/);
    assert.deepEqual(log.entries(3, 5, 100).map((e) => e.index), [3, 4]);
    assert.throws(() => log.entries(2, 4, 100), /range within the log/);
    assert.throws(() => log.compact(3, 9), /term matches/);
    log.reset({ index: 10, term: 3, membership: [] });
    assert.equal(log.firstIndex(), 11);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.term(10), 3);
  });

  it("entries() stops before maxBytes but returns at least one", () => {
    const log = new MemoryLog();
    log.append([ent(1, 1, 10), ent(2, 1, 10), ent(3, 1, 10)]);
    assert.equal(log.entries(1, 4, 5).length, 1);
    assert.equal(log.entries(1, 4, 20).length, 2);
    assert.equal(log.entries(1, 4, 1000).length, 3);
    assert.equal(log.entries(2, 2, 1000).length, 0);
  });
});
