/**
 * The backup file format (`src/storage/backup-file.ts`): what is written
 * reads back byte for byte, and a file that is truncated anywhere, has a
 * bit flipped anywhere, has bytes appended, or is not a backup at all is
 * refused with `BackupCorruptError` naming the file and an offset at or
 * before the damage.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BackupCorruptError } from "../../src/errors.ts";
import { backupFileBytes, encodeBackup, encodeBackupHead, readBackupInfo, readBackupPayload } from "../../src/storage/backup-file.ts";
import { prng } from "../helpers/prng.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "raft-backup-file-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const header = (payloadBytes: number) => ({
  index: 42,
  term: 3,
  members: [{ id: "n1", url: "http://127.0.0.1:7001", voter: true }, { id: "n2", url: "http://127.0.0.1:7002", voter: false }],
  clusterId: "0123456789abcdef",
  memberId: "n1",
  payloadBytes,
  createdAt: "2026-01-01T00:00:00.000Z",
});

async function* chunked(data: Uint8Array, sizes: readonly number[]): AsyncIterable<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, data.length - at);
    yield data.slice(at, at + n);
    at += n;
  }
}

async function encode(payload: Uint8Array, blockBytes: number, sizes: readonly number[] = [7, 1000, 3]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of encodeBackup(header(payload.length), chunked(payload, sizes), blockBytes)) parts.push(p.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function payloadOf(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

let fileNo = 0;
function write(bytes: Uint8Array): string {
  const f = path.join(tmp, `b${fileNo++}.snap`);
  fs.writeFileSync(f, bytes);
  return f;
}

async function readAll(file: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of readBackupPayload(file)) parts.push(p.slice());
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

function refused(file: string, maxOffset: number): BackupCorruptError {
  let caught: unknown = null;
  try {
    readBackupInfo(file);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof BackupCorruptError, `expected a BackupCorruptError for ${file}, got ${String(caught)}`);
  assert.equal(caught.file, file);
  assert.ok(caught.offset <= maxOffset, `offset ${caught.offset} is at or before the damage at ${maxOffset}: ${caught.message}`);
  assert.match(caught.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is unusable at byte offset ${caught.offset}`));
  return caught;
}

describe("backup file format", () => {
  it("readBackupInfo() and readBackupPayload() give back what encodeBackup() wrote, across block boundaries, and its size is backupFileBytes()", async () => {
    for (const [n, block] of [[0, 16], [1, 16], [16, 16], [17, 16], [1000, 64], [5000, 1024 * 1024]] as const) {
      const payload = payloadOf(n, n + 1);
      const bytes = await encode(payload, block);
      const headBytes = encodeBackupHead({ ...header(n), blockBytes: block }).length - 20;
      assert.equal(bytes.length, backupFileBytes(headBytes, n, block), `size for ${n} bytes in blocks of ${block}`);
      const f = write(bytes);
      const info = readBackupInfo(f);
      assert.equal(info.index, 42);
      assert.equal(info.term, 3);
      assert.equal(info.payloadBytes, n);
      assert.equal(info.fileBytes, bytes.length);
      assert.deepEqual(info.members, header(n).members);
      assert.match(info.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(await readAll(f), payload, `payload of ${n} bytes`);
    }
  });

  it("encodeBackup() fails when the payload is not the length it declared", async () => {
    await assert.rejects(async () => {
      for await (const _ of encodeBackup(header(10), chunked(new Uint8Array(9), [4]), 4));
    }, /9 bytes, not the 10/);
    await assert.rejects(async () => {
      for await (const _ of encodeBackup(header(10), chunked(new Uint8Array(11), [4]), 4));
    }, /longer than the 10/);
  });

  it("a file truncated at any length is refused, naming the offset where it ends", async () => {
    const bytes = await encode(payloadOf(100, 7), 32);
    for (let len = 0; len < bytes.length; len++) {
      const f = write(bytes.subarray(0, len));
      refused(f, len);
      fs.rmSync(f);
    }
  });

  it("a bit flipped anywhere is refused, naming an offset at or before the flipped byte", async () => {
    const bytes = await encode(payloadOf(100, 9), 32);
    for (let at = 0; at < bytes.length; at++) {
      const copy = bytes.slice();
      copy[at]! ^= 1 << (at % 8);
      const f = write(copy);
      const err = refused(f, at);
      // Damage in the payload names the block that holds it.
      if (at >= 20 + (bytes.length - 20 - 100 - 4 * 4 - 44) && at < bytes.length - 44) assert.match(err.message, /block|checksum/);
      fs.rmSync(f);
    }
  });

  it("appended bytes, a foreign file and a missing file are refused", async () => {
    const bytes = await encode(payloadOf(10, 3), 32);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.match(refused(write(longer), bytes.length).message, /unexpected bytes from offset/);
    assert.match(refused(write(new TextEncoder().encode("hello, this is not a backup at all")), 0).message, /not a raft snapshot file/);
    assert.match(refused(path.join(tmp, "missing.snap"), 0).message, /does not exist/);
  });

  it("readBackupPayload() stops at a damaged block before yielding it", async () => {
    const payload = payloadOf(100, 11);
    const bytes = await encode(payload, 32);
    const copy = bytes.slice();
    copy[bytes.length - 44 - 6]! ^= 0xff; // in the last block (4 bytes of data, then its CRC)
    const f = write(copy);
    const got: Uint8Array[] = [];
    await assert.rejects(async () => {
      for await (const p of readBackupPayload(f)) got.push(p.slice());
    }, (err: unknown) => err instanceof BackupCorruptError && /block/.test(err.message));
    assert.equal(got.reduce((n, p) => n + p.length, 0), 96, "the three good blocks came through, the damaged one did not");
  });
});
