/**
 * A `FileLayer` wrapper that fails on purpose, for tests and the simulator:
 * it numbers every step that changes the disk and, at a chosen step, either
 * raises an I/O error (the store must stop) or "crashes" (that step and every
 * later call fail, as if the process had died; a crashing write may first
 * write only a prefix of its bytes, a torn write).
 *
 * Run an operation once with no fault to learn how many steps it takes
 * (`steps`), then once per step with a crash there, and reopen the directory
 * with the plain layer each time: this is "kill the process at every step".
 *
 * @module
 */
import { StorageFailedError } from "../errors.ts";
import type { FileHandle, FileLayer, FileOp, OpenMode, OpenOptions } from "./file-layer.ts";

/** The operations that change what is on disk: these are the numbered steps. */
export const MUTATING_OPS: ReadonlySet<FileOp> = new Set<FileOp>([
  "open",
  "mkdir",
  "pwrite",
  "fdatasync",
  "fsyncDir",
  "truncate",
  "rename",
  "unlink",
]);

/** Where and how to fail. */
export interface FaultPlan {
  /** The 0-based number of the mutating step that fails; steps before it run normally. */
  readonly failAtStep: number;
  /** "error": only that step fails (like EIO or ENOSPC). "crash": that step and every later call fail. */
  readonly mode: "error" | "crash";
  /** Only steps of these operations are counted (default: all mutating operations). */
  readonly ops?: readonly FileOp[];
  /** For a crashing `pwrite`: how many of its bytes reach the file before the crash (default 0). */
  readonly tornBytes?: number;
}

/** One recorded step: the operation and the file it touched. */
export interface FaultStep {
  readonly op: FileOp;
  readonly path: string;
}

/** Wraps a `FileLayer`, counting mutating steps and failing as `plan` says. */
export class FaultInjectingFileLayer implements FileLayer {
  /** Every counted step so far, in order. */
  readonly steps: FaultStep[] = [];
  /** True once a "crash" fault fired: every call fails from then on. */
  crashed = false;
  readonly #inner: FileLayer;
  readonly #plan: FaultPlan | null;
  readonly #open = new Set<FileHandle>();
  /** Steps are counted (and faults fire) only while armed. */
  #armed: boolean;

  /**
   * @param inner the real layer
   * @param plan the fault to inject, or null to only count steps
   * @param armed false to start counting only once `arm()` is called (e.g. after an `open` whose steps should not count)
   */
  constructor(inner: FileLayer, plan: FaultPlan | null = null, armed = true) {
    this.#inner = inner;
    this.#plan = plan;
    this.#armed = armed;
  }

  /** Starts counting steps from 0 (and lets the planned fault fire). */
  arm(): void {
    this.steps.length = 0;
    this.#armed = true;
  }

  /** Closes every handle still open through this layer (what the OS does when a process dies). */
  async releaseAll(): Promise<void> {
    for (const h of this.#open) await this.#inner.close(h);
    this.#open.clear();
  }

  #checkAlive(op: FileOp, path: string): void {
    if (this.crashed) throw new StorageFailedError(path, op, new Error("simulated crash: the process is dead"));
  }

  /** Counts a step and reports whether it must fail. */
  #step(op: FileOp, path: string): boolean {
    this.#checkAlive(op, path);
    if (!this.#armed) return false;
    const plan = this.#plan;
    const counted = plan?.ops === undefined ? MUTATING_OPS.has(op) : plan.ops.includes(op);
    if (!counted) return false;
    const n = this.steps.length;
    this.steps.push({ op, path });
    if (plan === null || n !== plan.failAtStep) return false;
    if (plan.mode === "crash") this.crashed = true;
    return true;
  }

  #fail(op: FileOp, path: string): never {
    throw new StorageFailedError(path, op, new Error(`injected fault at step ${this.steps.length - 1}`));
  }

  async open(path: string, mode: OpenMode, opts?: OpenOptions): Promise<FileHandle> {
    if (this.#step("open", path)) this.#fail("open", path);
    const h = await this.#inner.open(path, mode, opts);
    this.#open.add(h);
    return h;
  }
  async openDir(path: string): Promise<FileHandle> {
    this.#checkAlive("openDir", path);
    const h = await this.#inner.openDir(path);
    this.#open.add(h);
    return h;
  }
  async mkdir(path: string): Promise<void> {
    if (this.#step("mkdir", path)) this.#fail("mkdir", path);
    await this.#inner.mkdir(path);
  }
  async pwrite(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
    if (this.#step("pwrite", file.path)) {
      const torn = Math.min(this.#plan?.tornBytes ?? 0, data.length);
      if (torn > 0) await this.#inner.pwrite(file, data.subarray(0, torn), position);
      this.#fail("pwrite", file.path);
    }
    await this.#inner.pwrite(file, data, position);
  }
  pread(file: FileHandle, into: Uint8Array, position: number): number {
    if (this.#step("pread", file.path)) this.#fail("pread", file.path);
    return this.#inner.pread(file, into, position);
  }
  async fdatasync(file: FileHandle): Promise<void> {
    if (this.#step("fdatasync", file.path)) this.#fail("fdatasync", file.path);
    await this.#inner.fdatasync(file);
  }
  /** Two steps, "pwrite" then "fdatasync", so a plan can fail or crash between them: a write-through file's write is durable at once, so this is the stricter model. */
  async writeDurable(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
    await this.pwrite(file, data, position);
    await this.fdatasync(file);
  }
  async fsyncDir(dir: FileHandle): Promise<void> {
    if (this.#step("fsyncDir", dir.path)) this.#fail("fsyncDir", dir.path);
    await this.#inner.fsyncDir(dir);
  }
  async truncate(file: FileHandle, length: number): Promise<void> {
    if (this.#step("truncate", file.path)) this.#fail("truncate", file.path);
    await this.#inner.truncate(file, length);
  }
  size(file: FileHandle): number {
    this.#checkAlive("size", file.path);
    return this.#inner.size(file);
  }
  async close(file: FileHandle): Promise<void> {
    this.#checkAlive("close", file.path);
    this.#open.delete(file);
    await this.#inner.close(file);
  }
  async rename(from: string, to: string): Promise<void> {
    if (this.#step("rename", to)) this.#fail("rename", to);
    await this.#inner.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    if (this.#step("unlink", path)) this.#fail("unlink", path);
    await this.#inner.unlink(path);
  }
  async readdir(dir: string): Promise<string[]> {
    this.#checkAlive("readdir", dir);
    return await this.#inner.readdir(dir);
  }
  freeBytes(path: string): number {
    this.#checkAlive("freeBytes", path);
    return this.#inner.freeBytes(path);
  }
}
