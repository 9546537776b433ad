/**
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table-driven and
 * incremental: the KV snapshot checksums its stream chunk by chunk.
 *
 * @module
 */

const _TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The running value before any byte (pass it to the first `crc32Update`). */
export const CRC32_INIT = 0xffffffff;

/** Folds `bytes` into a running CRC (start from `CRC32_INIT`; finish with `crc32Final`). */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  let c = crc;
  for (let i = 0; i < bytes.length; i++) c = _TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** The checksum of everything folded in so far. */
export function crc32Final(crc: number): number {
  return (crc ^ 0xffffffff) >>> 0;
}

/** The CRC-32 of one buffer. */
export function crc32(bytes: Uint8Array): number {
  return crc32Final(crc32Update(CRC32_INIT, bytes));
}
