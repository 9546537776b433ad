/**
 * Binary encoding of a membership (the data of a "config" entry and of the
 * membership file): the full member list, so any one entry says everything.
 *
 * Layout (big-endian):
 *   u8  version (1)
 *   u16 member count
 *   per member: u8 flags (bit 0 = voter), u16 id length, id (UTF-8),
 *               u16 url length, url (UTF-8)
 *
 * Decoding validates everything (lengths, flags, UTF-8, duplicate ids,
 * trailing bytes) and throws `InvalidArgumentError` on garbage: the bytes
 * come from disk and from peers.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Member } from "./types.ts";

const VERSION = 1;
/** Limits: a membership is small; anything bigger is garbage. */
const MEMBERS_MAX = 1024;
const ID_BYTES_MAX = 256;
const URL_BYTES_MAX = 2048;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a member list.
 * @throws InvalidArgumentError for an empty id, duplicate ids or values past the limits
 */
export function encodeMembership(members: readonly Member[]): Uint8Array {
  if (members.length > MEMBERS_MAX) throw new InvalidArgumentError(`A membership holds at most ${MEMBERS_MAX} members, got ${members.length}`);
  const seen = new Set<string>();
  const parts: { id: Uint8Array; url: Uint8Array; voter: boolean }[] = [];
  let size = 3;
  for (const m of members) {
    if (m.id.length === 0) throw new InvalidArgumentError("A member id must not be empty");
    if (seen.has(m.id)) throw new InvalidArgumentError(`Member id ${m.id} appears twice in the membership`);
    seen.add(m.id);
    const id = encoder.encode(m.id);
    const url = encoder.encode(m.url);
    if (id.length > ID_BYTES_MAX) throw new InvalidArgumentError(`Member id ${m.id} is longer than ${ID_BYTES_MAX} bytes`);
    if (url.length > URL_BYTES_MAX) throw new InvalidArgumentError(`URL of member ${m.id} is longer than ${URL_BYTES_MAX} bytes`);
    parts.push({ id, url, voter: m.voter });
    size += 5 + id.length + url.length;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  view.setUint16(1, parts.length);
  let at = 3;
  for (const p of parts) {
    out[at] = p.voter ? 1 : 0;
    view.setUint16(at + 1, p.id.length);
    out.set(p.id, at + 3);
    at += 3 + p.id.length;
    view.setUint16(at, p.url.length);
    out.set(p.url, at + 2);
    at += 2 + p.url.length;
  }
  return out;
}

/**
 * Decodes and validates a member list.
 * @throws InvalidArgumentError when `data` is not a valid encoding
 */
export function decodeMembership(data: Uint8Array): Member[] {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`Invalid membership encoding (${data.length} bytes): ${why}`);
  };
  if (data.length < 3) fail("too short for the header");
  if (data[0] !== VERSION) fail(`unknown version ${data[0]}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint16(1);
  if (count > MEMBERS_MAX) fail(`${count} members is past the limit of ${MEMBERS_MAX}`);
  const members: Member[] = [];
  const seen = new Set<string>();
  let at = 3;
  const text = (len: number, what: string): string => {
    if (at + len > data.length) fail(`${what} runs past the end`);
    try {
      const s = decoder.decode(data.subarray(at, at + len));
      at += len;
      return s;
    } catch {
      return fail(`${what} is not valid UTF-8`);
    }
  };
  for (let i = 0; i < count; i++) {
    if (at + 3 > data.length) fail(`member ${i} runs past the end`);
    const flags = data[at] as number;
    if ((flags & ~1) !== 0) fail(`member ${i} has unknown flags ${flags}`);
    const idLen = view.getUint16(at + 1);
    at += 3;
    if (idLen === 0 || idLen > ID_BYTES_MAX) fail(`member ${i} has an id of ${idLen} bytes`);
    const id = text(idLen, `id of member ${i}`);
    if (at + 2 > data.length) fail(`member ${i} runs past the end`);
    const urlLen = view.getUint16(at);
    at += 2;
    if (urlLen > URL_BYTES_MAX) fail(`member ${i} has a URL of ${urlLen} bytes`);
    const url = text(urlLen, `URL of member ${i}`);
    if (seen.has(id)) fail(`member id ${id} appears twice`);
    seen.add(id);
    members.push({ id, url, voter: (flags & 1) === 1 });
  }
  if (at !== data.length) fail(`${data.length - at} trailing bytes`);
  return members;
}
