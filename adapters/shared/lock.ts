/**
 * The runtime-neutral half of the data-directory lock: create and check the
 * directory, then take the OS lock through a function the runtime adapter
 * hands in, and record our pid for the error message another taker sees.
 *
 * The lock itself is a real `flock(LOCK_EX | LOCK_NB)` on `DIR/LOCK`: the OS
 * drops it when the process dies (even by SIGKILL), unlike a pid file, and
 * all three runtimes' implementations interoperate because they all use the
 * same syscall on the same file.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, LockedError } from "../../src/errors.ts";
import type { DirLock } from "../types.ts";

/**
 * Tries to take an exclusive lock on the file at `lockPath` without waiting.
 * Returns a release function, or null when another process holds the lock.
 * Throws for any other failure.
 */
export type TryLockFile = (lockPath: string) => (() => void) | null;

/** The lock file's name inside the data directory. */
export const LOCK_FILE_NAME = "LOCK";

/**
 * Takes the lock on `dir` (created if missing) with `tryLock`.
 * @throws {InvalidArgumentError} when `dir` is a file or not writable
 * @throws {LockedError} when another process holds the lock
 */
export function acquireDirLock(dir: string, tryLock: TryLockFile): DirLock {
  const abs = path.resolve(dir);
  _prepareDir(abs);
  const lockPath = path.join(abs, LOCK_FILE_NAME);
  const release = tryLock(lockPath);
  if (release === null) throw new LockedError(abs, _readHolderPid(lockPath));
  // We hold the lock: nobody else writes the file now.
  fs.writeFileSync(lockPath, `${process.pid}\n`);
  let released = false;
  return {
    dir: abs,
    release() {
      if (released) return;
      released = true;
      release();
    },
  };
}

function _prepareDir(abs: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (stat === undefined) {
    fs.mkdirSync(abs, { recursive: true });
  } else if (!stat.isDirectory()) {
    throw new InvalidArgumentError(`Data directory ${abs} is not a directory; pass a directory path`);
  }
  try {
    fs.accessSync(abs, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new InvalidArgumentError(`Data directory ${abs} is not writable by this process; fix its permissions or use another directory`);
  }
}

function _readHolderPid(lockPath: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** flock(2) operation flags (Linux and the BSDs agree on these values). */
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
/** errno for "lock held by someone else" on Linux. */
export const EWOULDBLOCK = 11;

/**
 * Builds a `TryLockFile` from a raw `flock` binding. `flock` returns 0 or -1;
 * `errno` reads the calling thread's errno right after.
 */
export function flockTryLock(flock: (fd: number, op: number) => number, errno: () => number): TryLockFile {
  return (lockPath) => {
    const fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const code = errno();
      fs.closeSync(fd);
      if (code === EWOULDBLOCK) return null;
      throw new Error(`flock(${lockPath}) failed with errno ${code}`);
    }
    return () => {
      flock(fd, LOCK_UN);
      fs.closeSync(fd);
    };
  };
}
