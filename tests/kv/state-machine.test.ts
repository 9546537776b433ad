/**
 * Tests of `KvStateMachine`: apply, idempotent replay by id, CAS,
 * exactly-once by idempotency key with deterministic eviction, garbage
 * commands, and snapshot -> restore round trips (10 000 keys, writes racing
 * a snapshot stream, corruption detected).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeCommand } from "../../src/kv/command.ts";
import type { KvCommand } from "../../src/kv/command.ts";
import { KvStateMachine } from "../../src/kv/state-machine.ts";
import type { KvResult } from "../../src/kv/state-machine.ts";
import { InvalidArgumentError, StorageCorruptError } from "../../src/errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (b: Uint8Array | undefined | null): string | undefined | null => (b === undefined || b === null ? b : dec.decode(b));

const put = (key: string, value: string, idem: string | null = null): Uint8Array =>
  encodeCommand({ op: "put", key, value: bytes(value), idempotencyKey: idem });
const del = (key: string, idem: string | null = null): Uint8Array => encodeCommand({ op: "del", key, idempotencyKey: idem });
const cas = (key: string, expect: string | null, value: string, idem: string | null = null): Uint8Array =>
  encodeCommand({ op: "cas", key, expect: expect === null ? null : bytes(expect), value: bytes(value), idempotencyKey: idem } satisfies KvCommand);

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c.slice());
  return out;
}

async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

/** Every key and value, sorted, for comparing two machines. */
function dump(sm: KvStateMachine, keys: Iterable<string>): [string, string | undefined | null][] {
  return [...keys].sort().map((k) => [k, text(sm.get(k))]);
}

describe("KvStateMachine.apply()", () => {
  it("puts, overwrites, deletes, and counts keys", () => {
    const sm = new KvStateMachine();
    assert.deepEqual(sm.apply(1, put("a", "1")), { index: 1, ok: true, current: null, duplicate: false, error: null });
    sm.apply(2, put("b", "2"));
    sm.apply(3, put("a", "3"));
    assert.equal(text(sm.get("a")), "3");
    assert.equal(sm.size, 2);
    const r = sm.apply(4, del("a")) as KvResult;
    assert.equal(r.ok, true);
    assert.equal(text(r.current), "3");
    assert.equal(sm.get("a"), undefined);
    assert.equal(sm.size, 1);
    assert.equal((sm.apply(5, del("missing")) as KvResult).current, null);
    assert.equal(sm.size, 1);
    assert.equal(sm.lastApplied(), 5);
  });

  it("ignores ids at or below lastApplied (a restart replays them) and accepts gaps", () => {
    const sm = new KvStateMachine();
    sm.apply(3, put("a", "1"));
    assert.equal(sm.apply(3, put("a", "replayed")), null);
    assert.equal(sm.apply(2, put("a", "older")), null);
    assert.equal(text(sm.get("a")), "1");
    sm.apply(10, put("a", "2"));
    assert.equal(sm.lastApplied(), 10);
    assert.equal(text(sm.get("a")), "2");
  });

  it("rejects an id that is not a positive safe integer", () => {
    const sm = new KvStateMachine();
    assert.throws(() => sm.apply(0, put("a", "1")), InvalidArgumentError);
    assert.throws(() => sm.apply(1.5, put("a", "1")), InvalidArgumentError);
  });

  it("CAS succeeds when the current value equals expect, and reports the current value when not", () => {
    const sm = new KvStateMachine();
    assert.equal((sm.apply(1, cas("c", null, "v1")) as KvResult).ok, true, "expect null on an absent key");
    const conflict = sm.apply(2, cas("c", null, "v2")) as KvResult;
    assert.equal(conflict.ok, false);
    assert.equal(text(conflict.current), "v1");
    assert.equal((sm.apply(3, cas("c", "v1", "v3")) as KvResult).ok, true);
    const wrong = sm.apply(4, cas("c", "v1", "v4")) as KvResult;
    assert.deepEqual([wrong.ok, text(wrong.current), wrong.index], [false, "v3", 4]);
    const absent = sm.apply(5, cas("nope", "x", "y")) as KvResult;
    assert.deepEqual([absent.ok, absent.current], [false, null]);
    assert.equal(text(sm.get("c")), "v3");
    assert.equal(sm.get("nope"), undefined);
  });

  it("applies a command with a known idempotency key once, answering with the first result", () => {
    const sm = new KvStateMachine();
    sm.apply(1, put("a", "first", "req-1"));
    sm.apply(2, put("a", "other"));
    const again = sm.apply(3, put("a", "first", "req-1")) as KvResult;
    assert.deepEqual(again, { index: 1, ok: true, current: null, duplicate: true, error: null });
    assert.equal(text(sm.get("a")), "other", "the retry did not overwrite a later write");
    sm.apply(4, cas("a", "nope", "x", "cas-1"));
    sm.apply(5, put("a", "changed"));
    const casAgain = sm.apply(6, cas("a", "nope", "x", "cas-1")) as KvResult;
    assert.deepEqual([casAgain.ok, text(casAgain.current), casAgain.index, casAgain.duplicate], [false, "other", 4, true]);
  });

  it("bounds the idempotency table by count, evicting the oldest key first, the same way on every member", () => {
    const a = new KvStateMachine({ idempotencyKeysMax: 3 });
    const b = new KvStateMachine({ idempotencyKeysMax: 3 });
    for (const sm of [a, b]) for (let i = 1; i <= 5; i++) sm.apply(i, put("k", String(i), `r${i}`));
    assert.equal(a.idempotencyKeys, 3);
    // r1 and r2 were evicted: their retries apply again; r3..r5 do not.
    for (const sm of [a, b]) {
      assert.equal((sm.apply(6, put("k", "1", "r1")) as KvResult).duplicate, false);
      assert.equal((sm.apply(7, put("k", "5", "r5")) as KvResult).duplicate, true);
    }
    assert.equal(text(a.get("k")), "1");
    assert.equal(text(b.get("k")), "1");
  });

  it("bounds the idempotency table by bytes (remembered CAS values count)", () => {
    const sm = new KvStateMachine({ idempotencyBytesMax: 3000 });
    sm.apply(1, put("big", "x".repeat(1000)));
    for (let i = 0; i < 10; i++) sm.apply(2 + i, cas("big", "wrong", "y", `c${i}`));
    assert.ok(sm.idempotencyKeys >= 1 && sm.idempotencyKeys <= 2, `kept ${sm.idempotencyKeys} keys`);
    assert.equal((sm.apply(20, cas("big", "wrong", "y", "c9")) as KvResult).duplicate, true, "the newest survives");
  });

  it("rejects garbage commands without changing state, on every member alike", () => {
    const sm = new KvStateMachine();
    sm.apply(1, put("a", "1"));
    for (const [i, data] of [[2, new Uint8Array(0)], [3, new Uint8Array([0x09, 1, 0x61])], [4, new Uint8Array([0x01, 9])]] as const) {
      const r = sm.apply(i, data) as KvResult;
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /command/i);
      assert.equal(sm.lastApplied(), i);
    }
    assert.equal(text(sm.get("a")), "1");
    assert.equal(sm.size, 1);
  });
});

describe("KvStateMachine snapshot() -> restore()", () => {
  it("round-trips 10 000 keys and the idempotency table through ~64 KiB chunks", async () => {
    const sm = new KvStateMachine();
    const keys: string[] = [];
    let id = 0;
    for (let i = 0; i < 10_000; i++) {
      const key = `key-${i}-${"é".repeat(i % 7)}`;
      keys.push(key);
      sm.apply(++id, put(key, `value-${i}-${"v".repeat(i % 200)}`, i % 10 === 0 ? `idem-${i}` : null));
    }
    sm.apply(++id, cas("key-1-é", "wrong", "x", "cas-conflict"));
    sm.apply(++id, del("key-2-éé"));
    const src = sm.snapshot();
    assert.equal(src.index, id);
    const chunks = await collect(src.chunks);
    assert.ok(chunks.length > 10, `${chunks.length} chunks`);
    for (const c of chunks) assert.ok(c.length <= 64 * 1024, `chunk of ${c.length} bytes`);

    const copy = new KvStateMachine();
    copy.apply(1, put("stale", "gone after restore"));
    await copy.restore(src.index, replay(chunks));
    assert.equal(copy.lastApplied(), id);
    assert.equal(copy.size, sm.size);
    assert.equal(copy.get("stale"), undefined);
    assert.deepEqual(dump(copy, keys), dump(sm, keys));
    assert.equal(copy.idempotencyKeys, sm.idempotencyKeys);
    // The restored table still answers retries, with the remembered CAS value.
    assert.equal((copy.apply(id + 1, put("key-0-", "value-0-", "idem-0")) as KvResult).duplicate, true);
    const casRetry = copy.apply(id + 2, cas("key-1-é", "wrong", "x", "cas-conflict")) as KvResult;
    assert.deepEqual([casRetry.duplicate, text(casRetry.current)], [true, "value-1-v"]);
    // ... and still tells a key reused for another command (not applied: 422 in the API).
    const reused = copy.apply(id + 3, put("key-0-", "again", "idem-0")) as KvResult;
    assert.deepEqual([reused.duplicate, reused.keyReused, reused.ok], [false, true, false]);
    assert.equal(text(copy.get("key-0-")), "value-0-");
  });

  it("splits a 1 MiB value across chunks and restores it byte for byte", async () => {
    const sm = new KvStateMachine({ snapshotChunkBytes: 1000 });
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    sm.apply(1, encodeCommand({ op: "put", key: "big", value: big, idempotencyKey: null }));
    const src = sm.snapshot();
    const chunks = await collect(src.chunks);
    assert.ok(chunks.every((c) => c.length <= 1000));
    const copy = new KvStateMachine();
    await copy.restore(1, replay(chunks));
    assert.deepEqual(copy.get("big"), big);
  });

  it("is a consistent view: writes applied while the stream is read are not in it, and are kept afterwards", async () => {
    const sm = new KvStateMachine({ snapshotChunkBytes: 256 });
    for (let i = 1; i <= 200; i++) sm.apply(i, put(`k${i}`, `v${i}`));
    const src = sm.snapshot();
    const chunks: Uint8Array[] = [];
    let id = 200;
    for await (const c of src.chunks) {
      chunks.push(c.slice());
      // Interleave writes with the stream: overwrite, delete, add.
      id++;
      if (id % 3 === 0) sm.apply(id, put(`k${id - 200}`, "changed"));
      else if (id % 3 === 1) sm.apply(id, del(`k${id - 200}`));
      else sm.apply(id, put(`new${id}`, "added"));
    }
    assert.ok(id > 210, "the stream took several chunks");
    const copy = new KvStateMachine();
    await copy.restore(200, replay(chunks));
    assert.equal(copy.size, 200);
    for (let i = 1; i <= 200; i++) assert.equal(text(copy.get(`k${i}`)), `v${i}`);
    // The live machine folded the overlay back.
    assert.equal(text(sm.get("k1")), "changed");
    assert.equal(sm.get("k2"), undefined);
    assert.equal(text(sm.get(`new${203}`)), "added");
    const again = await collect(sm.snapshot().chunks);
    const copy2 = new KvStateMachine();
    await copy2.restore(id, replay(again));
    assert.equal(copy2.size, sm.size);
    assert.equal(text(copy2.get("k1")), "changed");
  });

  it("serves a second snapshot taken while one streams, and an abandoned stream unfreezes the map", async () => {
    const sm = new KvStateMachine({ snapshotChunkBytes: 64 });
    for (let i = 1; i <= 50; i++) sm.apply(i, put(`k${i}`, `v${i}`));
    const first = sm.snapshot();
    const it1 = first.chunks[Symbol.asyncIterator]();
    await it1.next();
    sm.apply(51, put("k1", "after-first"));
    const second = sm.snapshot();
    sm.apply(52, put("k2", "after-second"));
    const copy = new KvStateMachine();
    await copy.restore(51, replay(await collect(second.chunks)));
    assert.equal(text(copy.get("k1")), "after-first");
    assert.equal(text(copy.get("k2")), "v2");
    await it1.return?.(undefined);
    assert.equal(text(sm.get("k2")), "after-second");
    assert.equal(sm.size, 50);
  });

  it("detects a flipped byte, a truncated stream, trailing bytes and a wrong index, leaving the state unchanged", async () => {
    const sm = new KvStateMachine({ snapshotChunkBytes: 128 });
    for (let i = 1; i <= 100; i++) sm.apply(i, put(`k${i}`, `v${i}`, `r${i}`));
    const chunks = await collect(sm.snapshot().chunks);
    const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      whole.set(c, off);
      off += c.length;
    }
    const target = new KvStateMachine();
    target.apply(1, put("mine", "kept"));
    for (let pos = 0; pos < whole.length; pos += 97) {
      const bad = whole.slice();
      bad[pos] = bad[pos]! ^ 0x40;
      await assert.rejects(target.restore(100, replay([bad])), StorageCorruptError, `flipped byte at ${pos} went unnoticed`);
    }
    await assert.rejects(target.restore(100, replay([whole.subarray(0, whole.length - 1)])), StorageCorruptError);
    await assert.rejects(target.restore(100, replay([whole, new Uint8Array([0])])), StorageCorruptError);
    await assert.rejects(target.restore(99, replay([whole])), InvalidArgumentError);
    assert.equal(text(target.get("mine")), "kept");
    assert.equal(target.lastApplied(), 1);
    await target.restore(100, replay([whole]));
    assert.equal(text(target.get("k100")), "v100");
  });
});
