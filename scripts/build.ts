/**
 * `npm run build`: compiles the library and the CLI to ES modules with
 * declarations in `dist/` (what the npm package ships; see `files` in
 * package.json). Plain `tsc` with `tsconfig.build.json`: its
 * `rewriteRelativeImportExtensions` turns the sources' `./x.ts` imports into
 * `./x.js`.
 *
 * Three steps around tsc:
 * - Non-TypeScript files the modules read at run time (the dashboard's
 *   `.css` and `.js`) are copied beside the compiled modules.
 * - tsc keeps `.ts` in the specifiers of the declarations it emits
 *   (microsoft/TypeScript#61037); TypeScript 5+ resolves them, but older
 *   checkers and editors do not, so they are rewritten to `.js` here.
 * - The output is built beside `dist/` and renamed into place, then
 *   `dist/.build-stamp` is written last: `bin/raft` runs `dist/cli.js` in a
 *   checkout only while no source file is newer than that stamp, so a
 *   half-written or stale build is never run.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
const next = path.join(root, `dist.building-${process.pid}`);

/** The stamp `bin/raft` compares the sources against (and the tests too). */
const BUILD_STAMP = ".build-stamp";

/** Relative `.ts` specifiers in declarations: `from "./x.ts"`, `import("../y.ts")`. */
const _TS_SPECIFIER = /((?:\bfrom\s*|\bimport\s*\(\s*)["'])(\.{1,2}\/[^"']*?)\.ts(["'])/g;

function _walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) _walk(p, out);
    else out.push(p);
  }
  return out;
}

fs.rmSync(next, { recursive: true, force: true });
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
const r = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json"), "--outDir", next], { stdio: "inherit" });
if (r.status !== 0) {
  fs.rmSync(next, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}
// Files the modules read at run time (the dashboard's stylesheet and script) go beside them.
for (const file of _walk(path.join(root, "src"))) {
  if (!/\.(css|js)$/.test(file)) continue;
  const to = path.join(next, path.relative(root, file));
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(file, to);
}
const left: string[] = [];
for (const file of _walk(next)) {
  if (file.endsWith(".d.ts")) {
    const text = fs.readFileSync(file, "utf8");
    const fixed = text.replace(_TS_SPECIFIER, "$1$2.js$3");
    if (fixed !== text) fs.writeFileSync(file, fixed);
  }
  // What tsc left: a relative import of a `.ts` file would fail once installed.
  const text = fs.readFileSync(file, "utf8");
  for (const m of text.matchAll(_TS_SPECIFIER)) left.push(`${path.relative(next, file)}: ${m[0]}`);
}
if (left.length > 0) {
  fs.rmSync(next, { recursive: true, force: true });
  process.stderr.write(`build: relative .ts imports left in the output:\n  ${left.join("\n  ")}\n`);
  process.exit(1);
}
fs.rmSync(dist, { recursive: true, force: true });
fs.renameSync(next, dist);
fs.writeFileSync(path.join(dist, BUILD_STAMP), `${new Date().toISOString()}\n`);
