/**
 * Links this checkout's own `raft` launcher as `node_modules/.bin/raft`, so
 * that `npx raft …` and `npx bunx raft …` run this checkout's CLI without
 * fetching anything (the registry's package called `raft` is unrelated).
 * Runs from the `prepare` script, that is on `npm install` and `npm ci` in a
 * checkout, never for a user who installs the package: their package
 * manager links the bin itself. (It replaces a dependency of the package on
 * itself, `"raft-ts": "file:."`, which would have shipped.)
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const binDir = path.join(root, "node_modules", ".bin");
const link = path.join(binDir, "raft");
const target = path.relative(binDir, path.join(root, "bin", "raft"));

fs.mkdirSync(binDir, { recursive: true });
let current: string | null = null;
try {
  current = fs.readlinkSync(link);
} catch {
  // missing, or not a link
}
if (current !== target) {
  fs.rmSync(link, { force: true });
  fs.symlinkSync(target, link);
}
