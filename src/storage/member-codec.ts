/**
 * Binary encoding of a member list, used inside the storage layer's own
 * files (the compaction point and the membership file). Not JSON: these
 * files are read on every start and written on every membership change, and
 * a binary layout with explicit lengths has no parsing ambiguity.
 *
 * Layout: `[count u32]` then per member `[idLen u16][id utf-8][urlLen u16][url utf-8][voter u8]`.
 *
 * @module
 */
import { InvalidArgumentError, StorageCorruptError } from "../errors.ts";
import type { Member } from "../raft/types.ts";
import { readU16, readU32, utf8Decoder, utf8Encoder, writeU16, writeU32 } from "./bytes.ts";

/** The longest member id accepted, in UTF-8 bytes (ids also go into the state file's 512-byte slot). */
export const MEMBER_ID_BYTES_MAX = 255;
/** The longest member URL accepted, in UTF-8 bytes. */
export const MEMBER_URL_BYTES_MAX = 2048;

/**
 * Encodes `members`.
 *
 * @throws InvalidArgumentError if an id or URL is too long
 */
export function encodeMembers(members: readonly Member[]): Uint8Array {
  const parts: { id: Uint8Array; url: Uint8Array; voter: boolean }[] = [];
  let size = 4;
  for (const m of members) {
    const id = utf8Encoder.encode(m.id);
    const url = utf8Encoder.encode(m.url);
    if (id.length === 0 || id.length > MEMBER_ID_BYTES_MAX) {
      throw new InvalidArgumentError(`Member id "${m.id}" must be 1 to ${MEMBER_ID_BYTES_MAX} bytes of UTF-8`);
    }
    if (url.length > MEMBER_URL_BYTES_MAX) {
      throw new InvalidArgumentError(`Member URL of ${m.id} is longer than ${MEMBER_URL_BYTES_MAX} bytes`);
    }
    parts.push({ id, url, voter: m.voter });
    size += 2 + id.length + 2 + url.length + 1;
  }
  const out = new Uint8Array(size);
  writeU32(out, 0, parts.length);
  let at = 4;
  for (const p of parts) {
    writeU16(out, at, p.id.length);
    out.set(p.id, at + 2);
    at += 2 + p.id.length;
    writeU16(out, at, p.url.length);
    out.set(p.url, at + 2);
    at += 2 + p.url.length;
    out[at++] = p.voter ? 1 : 0;
  }
  return out;
}

/**
 * Decodes a member list starting at `offset`.
 *
 * @param file named in the error if the bytes are malformed
 * @param fileOffset the file offset of `bytes[0]`, so errors name a file offset
 * @returns the members and the offset just past them
 * @throws StorageCorruptError if the bytes are malformed
 */
export function decodeMembers(
  bytes: Uint8Array,
  offset: number,
  file: string,
  fileOffset: number,
): { members: Member[]; end: number } {
  const bad = (at: number, what: string): never => {
    throw new StorageCorruptError(file, fileOffset + at, `malformed member list: ${what}`);
  };
  if (offset + 4 > bytes.length) bad(offset, "truncated count");
  const count = readU32(bytes, offset);
  let at = offset + 4;
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > bytes.length) bad(at, "truncated id length");
    const idLen = readU16(bytes, at);
    if (idLen === 0 || idLen > MEMBER_ID_BYTES_MAX || at + 2 + idLen + 2 > bytes.length) bad(at, "bad id length");
    const id = _decodeUtf8(bytes, at + 2, at + 2 + idLen) ?? bad(at + 2, "id is not UTF-8");
    at += 2 + idLen;
    const urlLen = readU16(bytes, at);
    if (urlLen > MEMBER_URL_BYTES_MAX || at + 2 + urlLen + 1 > bytes.length) bad(at, "bad URL length");
    const url = _decodeUtf8(bytes, at + 2, at + 2 + urlLen) ?? bad(at + 2, "URL is not UTF-8");
    at += 2 + urlLen;
    const voter = bytes[at]!;
    if (voter > 1) bad(at, "voter flag is neither 0 nor 1");
    at += 1;
    members.push({ id, url, voter: voter === 1 });
  }
  return { members, end: at };
}

function _decodeUtf8(bytes: Uint8Array, start: number, end: number): string | null {
  try {
    return utf8Decoder.decode(bytes.subarray(start, end));
  } catch {
    return null;
  }
}
