/**
 * The worker protocol's data: packed entry batches (one buffer, views out),
 * errors rebuilt as the same classes with their fields, and chunk streams
 * that coalesce small chunks and carry a source's error to the reader.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClosedError, LockedError, NotLeaderError, ProposalDroppedError, StorageCorruptError } from "../../src/errors.ts";
import { ChunkStreams, decodeError, encodeError, packBatch, type StreamMessage, unpackBatch } from "../../src/node/worker/protocol.ts";

describe("worker-protocol", () => {
  it("packBatch() and unpackBatch() round-trip items and keys, empty items and an empty batch included", () => {
    const items = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new TextEncoder().encode("hello"), new Uint8Array(1000).fill(7)];
    const keys = [5, 6, 9, 2 ** 40];
    const buf = packBatch(items, keys);
    const out = unpackBatch(buf);
    assert.deepEqual([...out.keys], keys);
    assert.equal(out.items.length, items.length);
    for (let i = 0; i < items.length; i++) {
      assert.deepEqual([...out.items[i]!], [...items[i]!], `item ${i}`);
      assert.equal(out.items[i]!.buffer, buf, "views share the one buffer");
    }
    const empty = unpackBatch(packBatch([], null));
    assert.equal(empty.items.length, 0);
  });

  it("decodeError() rebuilds the same class with its fields", () => {
    const cases: [Error, (e: Error) => boolean][] = [
      [new NotLeaderError("n2", "http://h:1"), (e) => e instanceof NotLeaderError && e.leaderId === "n2" && e.leaderUrl === "http://h:1"],
      [new ProposalDroppedError("gone", "unknown"), (e) => e instanceof ProposalDroppedError && e.outcome === "unknown"],
      [new StorageCorruptError("/d/f", 12, "bad"), (e) => e instanceof StorageCorruptError && e.file === "/d/f" && e.offset === 12],
      [new LockedError("/d", 42), (e) => e instanceof LockedError && e.holderPid === 42],
      [new ClosedError("closed"), (e) => e instanceof ClosedError],
      [new TypeError("t"), (e) => e instanceof TypeError],
    ];
    for (const [err, check] of cases) {
      const back = decodeError(structuredClone(encodeError(err)));
      assert.ok(check(back), `${err.name} rebuilt as ${back.constructor.name}`);
      assert.equal(back.message, err.message);
      assert.equal(back.name, err.name);
    }
    const plain = decodeError(encodeError("just a string"));
    assert.equal(plain.message, "just a string");
  });

  it("ChunkStreams coalesce small chunks, end, and carry a source's error to the reader", async () => {
    // Two ends wired back to back, messages delivered asynchronously as a port would.
    let a: ChunkStreams;
    let b: ChunkStreams;
    const deliver = (to: () => ChunkStreams) => (m: StreamMessage) => void Promise.resolve().then(() => to().handle(structuredClone(m)));
    a = new ChunkStreams(deliver(() => b));
    b = new ChunkStreams(deliver(() => a));
    const id = a.offer((async function* () {
      for (let i = 0; i < 100; i++) yield new Uint8Array(10).fill(i);
    })());
    const got: Uint8Array[] = [];
    for await (const c of b.open(id)) got.push(c);
    assert.equal(got.length, 1, "100 small chunks arrive as one");
    assert.equal(got[0]!.byteLength, 1000);
    assert.equal(got[0]![999], 99);

    const bad = a.offer((async function* () {
      yield new Uint8Array(1);
      throw new NotLeaderError(null, null);
    })());
    await assert.rejects(async () => {
      for await (const _ of b.open(bad)) void _;
    }, NotLeaderError);
  });
});
