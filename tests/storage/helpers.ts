/**
 * Shared helpers for the storage tests: temporary directories, entries,
 * a seeded PRNG, directory copies. Not a test file itself.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import type { Entry, EntryType } from "../../src/raft/types.ts";

/** A fresh temporary directory; remove it with `removeDir`. */
export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `raft-storage-${label}-`));
}

/** Removes a directory tree. */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Call inside a `describe`: returns a function making fresh temp dirs, all
 * removed after the suite.
 */
export function freshDirs(): (label: string) => string {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  return (label) => {
    const d = tempDir(label);
    dirs.push(d);
    return d;
  };
}

/** Copies the files of `from` (flat) into a new temporary directory. */
export function copyDir(from: string, label: string): string {
  const to = tempDir(label);
  for (const name of fs.readdirSync(from)) fs.copyFileSync(path.join(from, name), path.join(to, name));
  return to;
}

/** Deterministic data for entry `index` of `term`, `size` bytes. */
export function entryData(index: number, term: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  let x = (index * 2654435761 + term * 40503) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    d[i] = x >>> 24;
  }
  return d;
}

/** An entry with deterministic data. */
export function entry(index: number, term: number, size = 40, type: EntryType = "normal"): Entry {
  return { index, term, type, data: entryData(index, term, size) };
}

/** Consecutive entries [from, to] all of `term`. */
export function entries(from: number, to: number, term: number, size = 40): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

export { prng } from "../helpers/prng.ts";

/** The segment files in `dir`, in sequence order. */
export function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith(".seg")).sort((a, b) => a.slice(25).localeCompare(b.slice(25)));
}

/** Compact comparable form of entries. */
export function summary(es: readonly Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.type}/${Array.from(e.data.subarray(0, 8)).join(".")}:${e.data.length}`);
}
