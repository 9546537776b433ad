/**
 * Tests of the CRC32C implementation against published check values.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { crc32c } from "../../src/storage/crc32c.ts";

describe("crc32c()", () => {
  it("matches the standard check value of \"123456789\"", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  });
  it("matches RFC 3720 test vectors (32 zero bytes, 32 0xff bytes)", () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    const inc = new Uint8Array(32).map((_, i) => i);
    assert.equal(crc32c(inc), 0x46dd794e);
  });
  it("continues across split points exactly like one call", () => {
    const b = new Uint8Array(1000).map((_, i) => (i * 7 + 3) & 0xff);
    const whole = crc32c(b);
    for (const cut of [0, 1, 15, 16, 17, 500, 999, 1000]) {
      assert.equal(crc32c(b, cut, b.length, crc32c(b, 0, cut)), whole, `split at ${cut}`);
    }
  });
});
