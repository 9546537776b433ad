/**
 * Whole-file atomic replacement, for small files that must be either
 * entirely old or entirely new after a crash (the membership file, the
 * compaction point, a node's identity).
 *
 * The steps, as the seed describes them: write `NAME.tmp`, fdatasync it,
 * rename it over `NAME`, fsync the directory. One deliberate difference: the
 * seed deletes the original before renaming; we do not, because POSIX
 * `rename` replaces the target atomically, and deleting first would open a
 * window in which neither file exists.
 *
 * @module
 */
import path from "node:path";
import { StorageCorruptError } from "../errors.ts";
import { crc32c } from "./crc32c.ts";
import { readU32, writeU32 } from "./bytes.ts";
import { nodeFileLayer } from "./file-layer.ts";
import type { FileHandle, FileLayer } from "./file-layer.ts";

/** Suffix of the temporary file written before the rename. */
export const TMP_SUFFIX = ".tmp";

/**
 * Atomically replaces `dir/name` with `bytes`: after a crash at any point
 * the file holds either its whole old content or the whole new one (or is
 * absent if it never existed). Durable when the promise resolves.
 *
 * @param dir the directory holding the file
 * @param name the file name inside `dir`
 * @param bytes the complete new content
 * @param fs the file layer (default `nodeFileLayer`)
 * @param dirHandle an open handle on `dir` to fsync (kept open by the caller); opened and closed here if omitted
 * @throws StorageFailedError if any step fails; the caller must stop
 */
export async function atomicWriteFile(
  dir: string,
  name: string,
  bytes: Uint8Array,
  fs: FileLayer = nodeFileLayer,
  dirHandle?: FileHandle,
): Promise<void> {
  const target = path.join(dir, name);
  const tmp = target + TMP_SUFFIX;
  const file = await fs.open(tmp, "replace");
  try {
    await fs.pwrite(file, bytes, 0);
    await fs.fdatasync(file);
  } finally {
    await fs.close(file);
  }
  await fs.rename(tmp, target);
  if (dirHandle !== undefined) {
    await fs.fsyncDir(dirHandle);
  } else {
    const d = await fs.openDir(dir);
    try {
      await fs.fsyncDir(d);
    } finally {
      await fs.close(d);
    }
  }
}

/**
 * Reads a whole small file, or returns null if it does not exist.
 *
 * @throws StorageFailedError if it exists but cannot be read
 */
export async function readSmallFile(dir: string, name: string, fs: FileLayer = nodeFileLayer): Promise<Uint8Array | null> {
  const names = await fs.readdir(dir);
  if (!names.includes(name)) return null;
  const file = await fs.open(path.join(dir, name), "read");
  try {
    const size = fs.size(file);
    const bytes = new Uint8Array(size);
    const n = fs.pread(file, bytes, 0);
    return bytes.subarray(0, n);
  } finally {
    await fs.close(file);
  }
}

/**
 * Frames a small file's content as `[magic u32][length u32][payload][crc32c u32]`
 * (the seed's [length][data][checksum], with a magic number so a file of the
 * wrong kind is recognised).
 */
export function frameSmallFile(magic: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + payload.length);
  writeU32(out, 0, magic);
  writeU32(out, 4, payload.length);
  out.set(payload, 8);
  writeU32(out, 8 + payload.length, crc32c(out, 0, 8 + payload.length));
  return out;
}

/**
 * Checks and unwraps `frameSmallFile`'s framing.
 *
 * @throws StorageCorruptError naming `file` and the offset of the first bad field
 */
export function unframeSmallFile(magic: number, bytes: Uint8Array, file: string): Uint8Array {
  if (bytes.length < 12) throw new StorageCorruptError(file, 0, `file is ${bytes.length} bytes, shorter than its 12-byte framing`);
  if (readU32(bytes, 0) !== magic) throw new StorageCorruptError(file, 0, "wrong magic number (not a file of this kind)");
  const len = readU32(bytes, 4);
  if (8 + len + 4 !== bytes.length) {
    throw new StorageCorruptError(file, 4, `length field says ${len} bytes of payload but the file holds ${bytes.length - 12}`);
  }
  if (crc32c(bytes, 0, 8 + len) !== readU32(bytes, 8 + len)) {
    throw new StorageCorruptError(file, 8 + len, "checksum mismatch");
  }
  return bytes.subarray(8, 8 + len);
}
