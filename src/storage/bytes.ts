/**
 * Little-endian u32/u64 helpers for the on-disk formats, and the invariant
 * assertion used throughout the storage layer.
 *
 * u64 values are JavaScript numbers that must be safe integers (< 2^53): they
 * are split into two u32 halves instead of going through BigInt (measured
 * several times slower on the append path). Reading checks the high half so a
 * value past 2^53 is reported, never silently rounded.
 *
 * @module
 */

const _TWO_POW_32 = 0x1_0000_0000;

/**
 * Asserts an invariant. Stays on in production (TigerBeetle style): a broken
 * invariant in the storage layer must stop the node, not corrupt data. On
 * hot paths write `if (!cond) assert(false, message)` so that a message
 * holding values is only built when the check fails.
 *
 * @throws Error naming the broken invariant
 */
export function assert(condition: boolean, invariant: string): asserts condition {
  if (!condition) throw new Error(`Storage invariant violated: ${invariant}`);
}

/** Writes `value` (a safe, non-negative integer) as a little-endian u64 at `offset`. */
export function writeU64(bytes: Uint8Array, offset: number, value: number): void {
  if (value >= 0 && value <= 0xffff_ffff && (value >>> 0) === value) {
    // Fast path: every index and term below 2^32.
    writeU32(bytes, offset, value);
    writeU32(bytes, offset + 4, 0);
    return;
  }
  if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, `u64 value ${value} is a non-negative safe integer`);
  const lo = value % _TWO_POW_32;
  const hi = (value - lo) / _TWO_POW_32;
  writeU32(bytes, offset, lo);
  writeU32(bytes, offset + 4, hi);
}

/**
 * Reads a little-endian u64 at `offset`.
 *
 * @returns the value, or -1 when it does not fit in a safe integer (the
 * caller turns that into a corruption error naming the file and offset)
 */
export function readU64(bytes: Uint8Array, offset: number): number {
  const lo = readU32(bytes, offset);
  const hi = readU32(bytes, offset + 4);
  if (hi >= 0x20_0000) return -1;
  return hi * _TWO_POW_32 + lo;
}

/** Writes a little-endian u32 at `offset`. */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
  bytes[offset + 2] = value >>> 16;
  bytes[offset + 3] = value >>> 24;
}

/** Reads a little-endian u32 at `offset` (unsigned). */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/** Writes a little-endian u16 at `offset`. */
export function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
}

/** Reads a little-endian u16 at `offset`. */
export function readU16(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8);
}

/** Shared UTF-8 encoder/decoder (stateless, safe to share). */
export const utf8Encoder: TextEncoder = new TextEncoder();
/** Fatal UTF-8 decoder: invalid bytes on disk are corruption, never replaced by U+FFFD. */
export const utf8Decoder: TextDecoder = new TextDecoder("utf-8", { fatal: true });
