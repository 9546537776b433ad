/**
 * The package works for a user outside this checkout: `npm pack`, install
 * the tarball into an empty project (`tests/helpers/installed-package.ts`,
 * prepared once and shared by the three runtimes' runs), then, on the
 * runtime this suite runs on, run the README's module example exactly as the
 * README shows it (`import { RaftNode } from "raft-ts"`) with the plain
 * runtime, 20 times in a row with no pause, and the installed `raft`
 * command. Once per suite (the run `ONCE_PER_SUITE` names): a strict `nodenext` TypeScript consumer,
 * publint, arethetypeswrong (`--profile esm-only`) and `deno publish
 * --dry-run`.
 *
 * Skipped, saying why, only where the npm registry cannot be reached for a
 * dependency that npm's cache lacks; the 20 runs then use this checkout's
 * mod.ts instead. The example binds port 7000 as written: nothing else in
 * the suite listens there.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { installedPackage, readmeModuleExample } from "./helpers/installed-package.ts";
import { ONCE_PER_SUITE, REPO_ROOT, runCommand } from "./helpers/runtimes.ts";
import type { RuntimeName } from "./helpers/runtimes.ts";
import { RUNTIME } from "./cli/run-cli.ts";

const RUNS = 20;
const pkg = installedPackage();
const skip = "skip" in pkg ? pkg.skip : false;
const installed = "skip" in pkg ? null : pkg;
/** The checks that do not depend on the runtime run once per suite (same tarball). */
const onceOnly = RUNTIME === ONCE_PER_SUITE ? skip : `runs once per suite, on the ${ONCE_PER_SUITE} run (same tarball)`;

const EXAMPLE = readmeModuleExample();
const BIN = path.join(REPO_ROOT, "node_modules", ".bin");

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly cmd: string;
}

/** Runs a command to completion (SIGKILLed after `timeoutMs`). */
function run(cmd: string, args: readonly string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", ...opts.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, cmd: `(cd ${opts.cwd} && ${cmd} ${args.join(" ")})` });
    });
  });
}

const why = (r: Run) => `${r.cmd}\nexit ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-4000)}`;

/**
 * A directory holding just `bun` and `deno`, for PATH: what a user who
 * installed them has (the launcher execs `bun` by name under bunx).
 */
function runtimesOnPath(dir: string): Record<string, string> {
  const bin = path.join(dir, "runtime-bin");
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin, { recursive: true });
    for (const name of ["bun", "deno"]) fs.symlinkSync(fs.realpathSync(path.join(BIN, name)), path.join(bin, name));
  }
  return { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` };
}

/** The plain runtime running `file`, as a user types it. */
function plain(rt: RuntimeName, file: string, args: readonly string[] = []): [string, string[]] {
  switch (rt) {
    case "node":
      return ["node", [file, ...args]];
    case "bun":
      return ["bun", [file, ...args]];
    case "deno":
      return ["deno", ["run", "-A", file, ...args]];
  }
}

describe(`the npm package, packed and installed into an empty project, on ${RUNTIME}`, () => {
  it("ships the compiled modules with their declarations, bin/raft, README and LICENSE, and nothing of the checkout", { skip }, () => {
    const p = installed!;
    const allowed = /^(dist\/.+\.(js|d\.ts|css)|bin\/raft|README\.md|LICENSE|package\.json)$/;
    assert.deepEqual(p.files.filter((f) => !allowed.test(f)), [], "files outside dist/*.js|*.d.ts, bin/raft, README.md, LICENSE");
    for (const f of ["dist/mod.js", "dist/mod.d.ts", "dist/cli.js", "dist/src/node/worker/worker-main.js", "dist/src/api/ui/dashboard.css", "dist/src/api/ui/dashboard.js", "bin/raft", "LICENSE", "README.md"]) {
      assert.ok(p.files.includes(f), `${f} is not in the tarball`);
    }
    const root = path.join(p.app, "node_modules", "raft-ts");
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as Record<string, Record<string, string> | string>;
    const deps = { ...(manifest.dependencies as Record<string, string>), ...(manifest.devDependencies as Record<string, string> | undefined) };
    assert.equal(deps["raft-ts"], undefined, "the package depends on itself");
    for (const loader of ["tsx", "typescript"]) assert.equal((manifest.dependencies as Record<string, string>)[loader], undefined, `${loader} is a run-time dependency`);
    assert.equal(fs.existsSync(path.join(p.app, "node_modules", "tsx")), false, "tsx was installed: the package should not need a TypeScript loader");
    assert.equal(manifest.license, "MIT");
    assert.match(fs.readFileSync(path.join(root, "LICENSE"), "utf8"), /^MIT License\n/);
  });

  it(`plain ${RUNTIME} runs the README's module example from the installed package`, { skip }, async () => {
    const p = installed!;
    fs.writeFileSync(path.join(p.app, "example.mjs"), EXAMPLE);
    fs.rmSync(path.join(p.app, "data"), { recursive: true, force: true });
    const [cmd, args] = plain(RUNTIME, "example.mjs");
    const r = await run(cmd, args, { cwd: p.app, env: runtimesOnPath(path.dirname(p.app)) });
    assert.equal(r.code, 0, why(r));
    assert.ok(fs.existsSync(path.join(p.app, "data", "LOCK")), `no data directory was made\n${why(r)}`);
  });

  it(`the README's module example, exactly as written, succeeds ${RUNS} times in a row on ${RUNTIME} (no sleep, no poll)${skip ? ", from this checkout's mod.ts" : ""}`, async () => {
    const dir = fs.mkdtempSync(path.join(installed?.app ?? os.tmpdir(), "repeat-"));
    try {
      // Installed: the example verbatim. Without the registry: the same code on this checkout's mod.ts.
      const text = installed !== null ? EXAMPLE : EXAMPLE.replace(/from "raft-ts"/, `from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, "mod.ts")).href)}`);
      assert.match(EXAMPLE, /from "raft-ts"/);
      for (let i = 1; i <= RUNS; i++) fs.writeFileSync(path.join(dir, `example-${i}.mjs`), text);
      const runner = path.join(REPO_ROOT, "tests", "fixtures", "repeat-example.mjs");
      const [cmd, args] = installed !== null ? plain(RUNTIME, runner, [dir, String(RUNS)]) : runCommand(RUNTIME, runner, [dir, String(RUNS)]);
      const r = await run(cmd, args, { cwd: installed?.app ?? REPO_ROOT, env: runtimesOnPath(path.dirname(dir)), timeoutMs: 300_000 });
      assert.equal(r.code, 0, why(r));
      assert.equal(r.stdout.match(/^run \d+ ok/gm)?.length, RUNS, why(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`the installed raft command runs on ${RUNTIME} (compiled, no TypeScript loader)`, { skip }, async () => {
    const p = installed!;
    const env = runtimesOnPath(path.dirname(p.app));
    // node_modules/.bin/raft on Node, bunx raft on Bun, the npm: specifier on Deno.
    const [cmd, args]: [string, string[]] = RUNTIME === "node"
      ? [path.join(p.app, "node_modules", ".bin", "raft"), []]
      : RUNTIME === "bun"
      ? [path.join(BIN, "bunx"), ["raft"]]
      : ["deno", ["run", "-A", "npm:raft-ts/cli"]];
    const version = await run(cmd, [...args, "--version"], { cwd: p.app, env });
    assert.equal(version.code, 0, why(version));
    const pkgVersion = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
    assert.equal(version.stdout, `raft ${pkgVersion}\n`, why(version));
    const help = await run(cmd, [...args, "--help"], { cwd: p.app, env });
    assert.equal(help.code, 0, why(help));
    assert.match(help.stdout, /^usage: raft COMMAND/, why(help));
  });

  it("a strict nodenext TypeScript consumer type-checks the README example against the installed declarations (no Bun types, no .ts imports)", { skip: onceOnly }, async () => {
    const p = installed!;
    assert.equal(fs.existsSync(path.join(p.app, "node_modules", "@types", "bun")) || fs.existsSync(path.join(p.app, "node_modules", "bun-types")), false);
    fs.writeFileSync(path.join(p.app, "example.ts"), EXAMPLE);
    fs.writeFileSync(path.join(p.app, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        lib: ["es2022"],
        types: ["node"],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        verbatimModuleSyntax: true,
        skipLibCheck: false,
        noEmit: true,
      },
      files: ["example.ts"],
    }, null, 2));
    const r = await run("node", [path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: p.app });
    assert.equal(r.code, 0, why(r));
  });

  it("publint and arethetypeswrong (--profile esm-only) find no problem in the tarball", { skip: onceOnly }, async () => {
    const p = installed!;
    const lint = await run(path.join(BIN, "publint"), [path.join(p.app, "node_modules", "raft-ts"), "--pack", "false", "--strict"], { cwd: p.app });
    assert.equal(lint.code, 0, why(lint));
    assert.match(lint.stdout, /All good!/, why(lint));
    // attw exits 1 on any problem in the resolutions the profile keeps (node16 from ESM, bundler).
    const attw = await run(path.join(BIN, "attw"), [p.tarball, "--profile", "esm-only", "--format", "ascii"], { cwd: p.app });
    assert.equal(attw.code, 0, why(attw));
  });

  it("deno publish --dry-run is clean: a license, only the library's files, no unanalyzable import", { skip: RUNTIME === ONCE_PER_SUITE ? false : onceOnly }, async () => {
    // --no-check: the Deno run of the suite type-checks these sources already; the slow-types check still runs.
    const r = await run(path.join(BIN, "deno"), ["publish", "--dry-run", "--allow-dirty", "--no-check"], { cwd: REPO_ROOT });
    assert.equal(r.code, 0, why(r));
    const out = r.stdout + r.stderr;
    assert.doesNotMatch(out, /\b(warning|error)(\[[a-z-]+\])?:/, why(r));
    const files = [...out.matchAll(/file:\/\/\S+/g)].map((m) => path.relative(REPO_ROOT, new URL(m[0]).pathname));
    assert.ok(files.includes("mod.ts") && files.includes("LICENSE") && files.includes("src/node/worker/worker-main.ts"), why(r));
    assert.deepEqual(files.filter((f) => /^(tests|bench|scripts|\.ci|dist|node_modules)\//.test(f)), [], why(r));
  });
});
