/**
 * The npm package as a user gets it: built (`npm run build`), packed with
 * `npm pack`, and installed into an empty project outside this checkout, so
 * that nothing resolves from the checkout's own node_modules (a dependency
 * missing from package.json would otherwise go unnoticed).
 *
 * Prepared once per package content and shared by the Node, Deno and Bun
 * runs of the suite: the project lives in the temp directory under the
 * tarball's shasum, and a later run finds it ready. Installing takes the
 * dependencies from npm's cache when it has them (`--prefer-offline`), so
 * the registry is asked only when the cache lacks something.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { ensureBuilt } from "./build.ts";
import { REPO_ROOT } from "./runtimes.ts";

/** The README's module example, exactly as the README shows it (the first ```ts block under "Use it as a module"). */
export function readmeModuleExample(): string {
  const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  const at = readme.indexOf("## Use it as a module");
  if (at < 0) throw new Error('README.md has no "## Use it as a module" section');
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (m === null) throw new Error('README.md has no ```ts block under "## Use it as a module"');
  return m[1]!;
}

/** The packed and installed package. */
export interface InstalledPackage {
  /** The tarball `npm pack` made. */
  readonly tarball: string;
  /** The files in it, relative to the package root. */
  readonly files: readonly string[];
  /** The empty project it is installed into (`npm install TARBALL`), outside this checkout. */
  readonly app: string;
}

/** Why the round trip cannot run here (the registry is unreachable), or null. */
export type Skip = { readonly skip: string };

interface _PackInfo {
  readonly filename: string;
  readonly shasum: string;
  readonly files: readonly { readonly path: string }[];
}

function _npm(args: readonly string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("npm", args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function _packInfo(out: string): _PackInfo {
  const list = JSON.parse(out.slice(out.indexOf("["))) as _PackInfo[];
  if (list.length !== 1) throw new Error(`npm pack --json listed ${list.length} packages`);
  return list[0]!;
}

/** The registry could not be reached (npm's own error codes for that). */
const _OFFLINE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b|network request .* failed/;

/**
 * Builds if needed, packs, and installs the tarball into an empty project,
 * or finds that project from an earlier run of the same package content.
 * Returns a `Skip` only when npm cannot reach the registry for a dependency
 * that its cache lacks; any other failure throws.
 */
export function installedPackage(): InstalledPackage | Skip {
  ensureBuilt();
  // The shasum of the tarball `npm pack` would write (its entries have fixed dates, so equal content, equal sum).
  const dry = _npm(["pack", "--dry-run", "--json", "--ignore-scripts"], REPO_ROOT);
  if (dry.status !== 0) throw new Error(`npm pack --dry-run failed:\n${dry.stderr}`);
  const info = _packInfo(dry.stdout);
  const checkout = createHash("sha256").update(REPO_ROOT).digest("hex").slice(0, 8);
  const prefix = `raft-ts-installed-${checkout}-`;
  const dir = path.join(os.tmpdir(), `${prefix}${info.shasum.slice(0, 16)}`);
  const result: InstalledPackage = { tarball: path.join(dir, info.filename), files: info.files.map((f) => f.path).sort(), app: path.join(dir, "app") };
  if (fs.existsSync(path.join(dir, "ready"))) return result;

  // Older builds of this checkout are stale now.
  for (const e of fs.readdirSync(os.tmpdir())) if (e.startsWith(prefix)) fs.rmSync(path.join(os.tmpdir(), e), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "app"), { recursive: true });
  const pack = _npm(["pack", "--json", "--ignore-scripts", "--pack-destination", dir], REPO_ROOT);
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  const packed = _packInfo(pack.stdout);
  if (packed.shasum !== info.shasum) throw new Error(`npm pack wrote ${packed.shasum}, the dry run said ${info.shasum}: did dist/ change meanwhile?`);
  fs.writeFileSync(path.join(dir, "app", "package.json"), JSON.stringify({ name: "raft-ts-user", private: true, type: "module" }, null, 2) + "\n");
  // @types/node for the strict TypeScript consumer: the version this checkout pins.
  const typesNode = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@types/node"];
  const install = _npm(["install", "--prefer-offline", "--no-package-lock", result.tarball, `@types/node@${typesNode}`], result.app);
  if (install.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    if (_OFFLINE.test(install.stderr)) return { skip: `the npm registry is unreachable and npm's cache lacks a dependency, so the tarball cannot be installed: ${install.stderr.trim().split("\n").slice(-3).join(" ")}` };
    throw new Error(`npm install ${result.tarball} failed (exit ${install.status}):\n${install.stderr}`);
  }
  fs.writeFileSync(path.join(dir, "ready"), `${new Date().toISOString()}\n`);
  return result;
}
