/**
 * Tests of the KV command codec: round trips, and garbage rejected with a
 * reason (never another kind of error).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeCommand, encodeCommand, IDEMPOTENCY_KEY_BYTES_MAX, KEY_BYTES_HARD_MAX } from "../../src/kv/command.ts";
import type { KvCommand } from "../../src/kv/command.ts";
import { InvalidArgumentError } from "../../src/errors.ts";
import { prng } from "../helpers/prng.ts";

const bytes = (s: string) => new TextEncoder().encode(s);


describe("encodeCommand() / decodeCommand()", () => {
  const cases: KvCommand[] = [
    { op: "put", key: "a", value: bytes("1"), idempotencyKey: null },
    { op: "put", key: "k€y/with spaces", value: new Uint8Array([0, 255, 1, 254]), idempotencyKey: "req-1" },
    { op: "put", key: "empty", value: new Uint8Array(0), idempotencyKey: null },
    { op: "put", key: "x".repeat(300), value: new Uint8Array(200_000).fill(7), idempotencyKey: "i".repeat(IDEMPOTENCY_KEY_BYTES_MAX) },
    { op: "del", key: "a", idempotencyKey: null },
    { op: "del", key: "a", idempotencyKey: "d" },
    { op: "cas", key: "c", expect: null, value: bytes("v"), idempotencyKey: null },
    { op: "cas", key: "c", expect: bytes("old"), value: bytes("new"), idempotencyKey: "cas-1" },
    { op: "cas", key: "c", expect: new Uint8Array(0), value: new Uint8Array(0), idempotencyKey: null },
  ];
  for (const cmd of cases) {
    it(`round-trips ${cmd.op} ${JSON.stringify(cmd.key.slice(0, 20))} idem=${cmd.idempotencyKey !== null}`, () => {
      assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
    });
  }

  it("is compact: a 100-byte put with a short key costs the value plus a few bytes", () => {
    const enc = encodeCommand({ op: "put", key: "bench", value: new Uint8Array(100), idempotencyKey: null });
    assert.equal(enc.length, 100 + 5 + 2);
  });

  it("decoded values do not alias the encoded buffer", () => {
    const enc = encodeCommand({ op: "put", key: "a", value: bytes("abc"), idempotencyKey: null });
    const dec = decodeCommand(enc);
    enc.fill(0);
    assert.deepEqual(dec.op === "put" ? dec.value : null, bytes("abc"));
  });

  it("refuses to encode an empty or oversized key or idempotency key", () => {
    assert.throws(() => encodeCommand({ op: "del", key: "", idempotencyKey: null }), InvalidArgumentError);
    assert.throws(() => encodeCommand({ op: "del", key: "k".repeat(KEY_BYTES_HARD_MAX + 1), idempotencyKey: null }), InvalidArgumentError);
    assert.throws(() => encodeCommand({ op: "del", key: "k", idempotencyKey: "" }), InvalidArgumentError);
    assert.throws(() => encodeCommand({ op: "del", key: "k", idempotencyKey: "i".repeat(IDEMPOTENCY_KEY_BYTES_MAX + 1) }), InvalidArgumentError);
  });

  const garbage: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["unknown op 0", new Uint8Array([0x00, 1, 0x61])],
    ["unknown op 4", new Uint8Array([0x04, 1, 0x61])],
    ["unknown flag", new Uint8Array([0x41, 1, 0x61])],
    ["expect flag on a put", new Uint8Array([0x21, 1, 0x61])],
    ["zero-length key", new Uint8Array([0x01, 0])],
    ["key runs past the end", new Uint8Array([0x01, 5, 0x61])],
    ["truncated varint", new Uint8Array([0x01, 0x80])],
    ["overlong varint", new Uint8Array([0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])],
    ["key not UTF-8", new Uint8Array([0x01, 2, 0xc3, 0x28])],
    ["trailing bytes after a del", new Uint8Array([0x02, 1, 0x61, 0x00])],
    ["empty idempotency key", new Uint8Array([0x11, 0, 1, 0x61])],
    ["expected value runs past the end", new Uint8Array([0x23, 1, 0x61, 9, 1])],
  ];
  for (const [name, data] of garbage) {
    it(`rejects garbage: ${name}`, () => {
      assert.throws(() => decodeCommand(data), InvalidArgumentError);
    });
  }

  it("never fails with anything but InvalidArgumentError on random bytes (seed 7, 20 000 cases)", () => {
    const seed = 7;
    const rnd = prng(seed);
    for (let i = 0; i < 20_000; i++) {
      const data = new Uint8Array(Math.floor(rnd() * 12));
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(rnd() * 256);
      try {
        decodeCommand(data);
      } catch (err) {
        assert.ok(err instanceof InvalidArgumentError, `seed ${seed} case ${i} bytes [${[...data]}]: ${String(err)}`);
      }
    }
  });
});
