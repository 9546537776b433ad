/**
 * Storage benchmark: the raw write+fdatasync rate of this disk (the physical
 * limit), append throughput of `SegmentedLog` for 100-byte and 4 KiB
 * entries in batches of 1, 16 and 256 (one fdatasync per batch), and the
 * time and memory to open a large log (1 GiB by default).
 *
 * Run: `npx tsx bench/storage.ts` (also `deno run -A`, `bun`). Options
 * (environment): `STORAGE_BENCH_LOG_MB` (size of the log to open, default
 * 1024), `STORAGE_BENCH_SECONDS` (time per append case, default 0.8),
 * `STORAGE_BENCH_DIR` (parent directory, default the OS temp dir).
 * A bench runner can import `runStorageBench` instead.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import type { Entry } from "../src/raft/types.ts";
import { SegmentedLog } from "../src/storage/segmented-log.ts";

/** One append case's result. */
export interface AppendResult {
  readonly entryBytes: number;
  readonly batch: number;
  readonly entriesPerSec: number;
  readonly mbPerSec: number;
  /** Median time of one append (write + fdatasync), microseconds. */
  readonly batchLatencyUs: number;
  /** Mean time of one append, microseconds (entriesPerSec = batch / mean). */
  readonly batchMeanUs: number;
  /** Median time of a raw write of the same bytes + fdatasync on this disk (measured interleaved), microseconds. */
  readonly rawLatencyUs: number;
  /** Mean of the same raw write + fdatasync, microseconds (batch / rawMeanUs is the physical limit in entries/s). */
  readonly rawMeanUs: number;
}

/** The whole benchmark's result. */
export interface StorageBenchResult {
  readonly appends: readonly AppendResult[];
  readonly open: {
    readonly logBytes: number;
    readonly entries: number;
    readonly segments: number;
    readonly openMs: number;
    readonly openVerifyAllMs: number;
    /** Bytes the open log holds for its in-memory index (offsets, term runs): `SegmentedLog.stats()`. */
    readonly indexMb: number;
    /** Process-level growth across open (noisy: the garbage collector runs when it likes; exact with --expose-gc). */
    readonly heapPlusBuffersMb: number;
    readonly rssMb: number;
  };
}

/** Options of `runStorageBench`. */
export interface StorageBenchOptions {
  readonly logMb?: number;
  readonly secondsPerCase?: number;
  readonly dir?: string;
  readonly print?: (line: string) => void;
}

function _fsync(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
}
function _write(fd: number, b: Uint8Array, pos: number): Promise<void> {
  return new Promise((res, rej) => fs.write(fd, b, 0, b.length, pos, (e) => (e ? rej(e) : res())));
}

function _median(xs: number[]): number {
  const s = xs.slice().sort((x, y) => x - y);
  return s.length === 0 ? 0 : s[s.length >> 1]!;
}

/**
 * One append case. The disk's latency drifts a lot on shared machines, so
 * the raw write+fdatasync (same bytes, appended to a plain file, the
 * physical limit) and the log's appends are measured interleaved, in
 * rounds, and compared by their medians.
 */
async function appendCase(dir: string, entryBytes: number, batch: number, seconds: number): Promise<AppendResult> {
  const d = fs.mkdtempSync(path.join(dir, "append-"));
  const log = await SegmentedLog.open(d);
  const rawPath = path.join(dir, `raw-${entryBytes}-${batch}`);
  const rawFd = fs.openSync(rawPath, "w+");
  const rawBuf = new Uint8Array(batch * (entryBytes + 32)).fill(7);
  let rawPos = 0;
  const data = new Uint8Array(entryBytes).fill(42);
  let index = 1;
  const makeBatch = (): Entry[] => {
    const b: Entry[] = [];
    for (let k = 0; k < batch; k++) b.push({ index: index++, term: 1, type: "normal", data });
    return b;
  };
  for (let w = 0; w < 5; w++) await log.append(makeBatch()); // first segment, JIT
  const rounds = 8;
  const logLat: number[] = [];
  const rawLat: number[] = [];
  let logTimeMs = 0;
  for (let r = 0; r < rounds; r++) {
    const sliceMs = (seconds * 1000) / rounds / 2;
    let t0 = performance.now();
    while (performance.now() - t0 < sliceMs) {
      const t = performance.now();
      await _write(rawFd, rawBuf, rawPos);
      await _fsync(rawFd);
      rawPos += rawBuf.length;
      rawLat.push(performance.now() - t);
    }
    t0 = performance.now();
    while (performance.now() - t0 < sliceMs) {
      const b = makeBatch(); // the caller's cost, not the log's: outside the timed part
      const t = performance.now();
      await log.append(b);
      const dt = performance.now() - t;
      logLat.push(dt);
      logTimeMs += dt;
    }
  }
  fs.closeSync(rawFd);
  fs.rmSync(rawPath);
  await log.close();
  fs.rmSync(d, { recursive: true, force: true });
  const n = logLat.length * batch;
  const sec = logTimeMs / 1000;
  return {
    entryBytes,
    batch,
    entriesPerSec: n / sec,
    mbPerSec: (n * entryBytes) / sec / 1e6,
    batchLatencyUs: _median(logLat) * 1000,
    batchMeanUs: (logTimeMs * 1000) / logLat.length,
    rawLatencyUs: _median(rawLat) * 1000,
    rawMeanUs: (rawLat.reduce((x, y) => x + y, 0) * 1000) / rawLat.length,
  };
}

function _mem(): { heapPlusBuffers: number; rss: number } {
  const m = process.memoryUsage();
  return { heapPlusBuffers: m.heapUsed + (m.arrayBuffers ?? 0), rss: m.rss };
}

async function openCase(dir: string, logMb: number): Promise<StorageBenchResult["open"]> {
  const d = fs.mkdtempSync(path.join(dir, "open-"));
  const target = logMb * 1024 * 1024;
  let log = await SegmentedLog.open(d);
  const data = new Uint8Array(100).fill(1);
  let index = 1;
  let bytes = 0;
  while (bytes < target) {
    const b: Entry[] = [];
    for (let k = 0; k < 8192; k++) b.push({ index: index++, term: 1 + (index >> 20), type: "normal", data });
    await log.append(b);
    bytes += 8192 * 132;
  }
  await log.close();
  const segments = fs.readdirSync(d).filter((n) => n.endsWith(".seg")).length;
  const g = (globalThis as { gc?: () => void }).gc;
  g?.();
  const before = _mem();
  const t0 = performance.now();
  log = await SegmentedLog.open(d);
  const openMs = performance.now() - t0;
  g?.();
  const afterOpen = _mem();
  const entries = log.lastIndex();
  const indexMb = log.stats().indexBytes / 1e6;
  // Touch a random entry so the open log is really usable.
  log.entries(Math.max(1, entries >> 1), Math.max(1, entries >> 1) + 1, 1000);
  await log.close();
  const t1 = performance.now();
  log = await SegmentedLog.open(d, { verifyAll: true });
  const openVerifyAllMs = performance.now() - t1;
  await log.close();
  fs.rmSync(d, { recursive: true, force: true });
  return {
    logBytes: bytes,
    entries,
    segments,
    openMs,
    openVerifyAllMs,
    indexMb,
    heapPlusBuffersMb: (afterOpen.heapPlusBuffers - before.heapPlusBuffers) / 1e6,
    rssMb: (afterOpen.rss - before.rss) / 1e6,
  };
}

/**
 * Runs the benchmark.
 *
 * @returns the measured figures (also printed through `print`)
 */
export async function runStorageBench(opts: StorageBenchOptions = {}): Promise<StorageBenchResult> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const logMb = opts.logMb ?? Number(process.env["STORAGE_BENCH_LOG_MB"] ?? 1024);
  const seconds = opts.secondsPerCase ?? Number(process.env["STORAGE_BENCH_SECONDS"] ?? 0.8);
  const parent = opts.dir ?? process.env["STORAGE_BENCH_DIR"] ?? os.tmpdir();
  const dir = fs.mkdtempSync(path.join(parent, "raft-storage-bench-"));
  try {
    const appends: AppendResult[] = [];
    print("raw = a plain write of the same bytes + fdatasync, interleaved with the appends (the disk's physical limit)");
    print("entry B  batch   entries/s  raw limit/s      MB/s   mean us  raw mean us   p50 us  raw p50 us  p50 ratio");
    for (const entryBytes of [100, 4096]) {
      for (const batch of [1, 16, 256]) {
        const r = await appendCase(dir, entryBytes, batch, seconds);
        appends.push(r);
        print(
          [
            String(entryBytes).padStart(7),
            String(batch).padStart(5),
            r.entriesPerSec.toFixed(0).padStart(10),
            ((batch * 1e6) / r.rawMeanUs).toFixed(0).padStart(11),
            r.mbPerSec.toFixed(1).padStart(8),
            r.batchMeanUs.toFixed(0).padStart(8),
            r.rawMeanUs.toFixed(0).padStart(11),
            r.batchLatencyUs.toFixed(0).padStart(7),
            r.rawLatencyUs.toFixed(0).padStart(10),
            (r.batchLatencyUs / r.rawLatencyUs).toFixed(2).padStart(9),
          ].join("  "),
        );
      }
    }
    const open = await openCase(dir, logMb);
    print(
      `open: ${(open.logBytes / 1048576).toFixed(0)} MiB log, ${open.entries} entries in ${open.segments} segments: ${open.openMs.toFixed(0)} ms, ` +
        `index ${open.indexMb.toFixed(1)} MB, process +${open.heapPlusBuffersMb.toFixed(1)} MB heap+buffers, +${open.rssMb.toFixed(1)} MB rss; with verifyAll ${open.openVerifyAllMs.toFixed(0)} ms`,
    );
    return { appends, open };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runStorageBench();
}
