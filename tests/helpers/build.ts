/**
 * Whether `dist/` (the compiled package, `npm run build`) is current, and
 * building it when it is not. `npm test` builds before the suites, so the
 * tests that use the build find it current; a single test file run after an
 * edit rebuilds (the install round trip) or falls back to the sources (the
 * CLI tests on Node).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./runtimes.ts";

/** Written last by `npm run build` (scripts/build.ts). */
const BUILD_STAMP = path.join(REPO_ROOT, "dist", ".build-stamp");
/** What the build compiles. */
const SOURCES = ["mod.ts", "cli.ts", "src", "adapters", "tsconfig.json", "tsconfig.build.json"];

function _newestMs(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a removed file changes its directory's mtime
  for (const e of fs.readdirSync(p)) newest = Math.max(newest, _newestMs(path.join(p, e)));
  return newest;
}

/** Whether dist/ holds a complete build at least as new as every source file. */
export function buildIsCurrent(): boolean {
  if (!fs.existsSync(BUILD_STAMP)) return false;
  const built = fs.statSync(BUILD_STAMP).mtimeMs;
  return SOURCES.every((s) => _newestMs(path.join(REPO_ROOT, s)) <= built);
}

/** Runs `npm run build` unless dist/ is current (`npm test` builds before the suites, so usually a no-op). */
export function ensureBuilt(): void {
  if (buildIsCurrent()) return;
  const r = spawnSync("npm", ["run", "--silent", "build"], { cwd: REPO_ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}
