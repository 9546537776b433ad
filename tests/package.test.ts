/**
 * The two manifests, `package.json` (npm, Node, Bun) and `deno.json` (Deno),
 * must not drift apart: same version (and `src/version.ts`, which `raft
 * --version` prints), the same export map (the `.ts` sources for Deno, the
 * compiled `dist/` files with their declarations for npm), the same license
 * with a LICENSE file. What npm ships and what JSR publishes are the
 * library only. Also checks that `npm install` linked our own `raft` bin
 * (and not the unrelated `raft` package from the registry) without the
 * package depending on itself.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./helpers/runtimes.ts";
import { VERSION } from "../src/version.ts";

const readJson = (name: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, name), "utf8")) as Record<string, unknown>;

describe("manifests", () => {
  const pkg = readJson("package.json");
  const deno = readJson("deno.json");

  it("package.json, deno.json and src/version.ts have the same version", () => {
    assert.equal(deno.version, pkg.version);
    assert.equal(VERSION, pkg.version);
  });

  it("the npm export map points at the compiled form of each source the Deno export map names", () => {
    const npm = pkg.exports as Record<string, { types: string; default: string }>;
    const denoExports = deno.exports as Record<string, string>;
    assert.deepEqual(Object.keys(npm), Object.keys(denoExports));
    for (const [key, source] of Object.entries(denoExports)) {
      assert.ok(fs.existsSync(path.join(REPO_ROOT, source)), `exported file ${source} is missing`);
      const compiled = source.replace(/^\.\//, "./dist/");
      assert.deepEqual(npm[key], { types: compiled.replace(/\.ts$/, ".d.ts"), default: compiled.replace(/\.ts$/, ".js") }, `exports["${key}"]`);
      assert.deepEqual(Object.keys(npm[key]!), ["types", "default"], `exports["${key}"]: types must come first`);
    }
  });

  it("both manifests say MIT, and LICENSE is the MIT license", () => {
    assert.equal(pkg.license, "MIT");
    assert.equal(deno.license, "MIT");
    assert.match(fs.readFileSync(path.join(REPO_ROOT, "LICENSE"), "utf8"), /^MIT License\n/);
  });

  it("npm ships the build, the launcher, README and LICENSE; JSR the sources, README and LICENSE; neither tests, benchmarks, scripts or CI", () => {
    assert.deepEqual(pkg.files, ["dist/", "!dist/.build-stamp", "bin/raft", "README.md", "LICENSE"]);
    const publish = deno.publish as { include: string[]; exclude: string[] };
    assert.deepEqual(publish.include, ["mod.ts", "cli.ts", "src/", "adapters/", "README.md", "LICENSE"]);
    // The tsx bootstrap for TypeScript workers on Node: its import is dynamic, and JSR serves compiled JavaScript to Node.
    assert.deepEqual(publish.exclude, ["adapters/node/worker-bootstrap.mjs"]);
  });

  it("the package does not depend on itself, nor on a TypeScript loader at run time", () => {
    const deps = pkg.dependencies as Record<string, string>;
    assert.equal(deps["raft-ts"], undefined);
    assert.equal((pkg.devDependencies as Record<string, string>)["raft-ts"], undefined);
    assert.equal(deps.tsx, undefined);
    for (const [name, version] of Object.entries({ ...deps, ...(pkg.devDependencies as Record<string, string>) })) {
      assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is not pinned to an exact version`);
    }
  });

  it("the raft bin in node_modules/.bin is this package's launcher (linked by the prepare script)", () => {
    assert.deepEqual(pkg.bin, { raft: "bin/raft" });
    assert.match((pkg.scripts as Record<string, string>).prepare ?? "", /scripts\/link-bin\.ts/);
    const linked = fs.realpathSync(path.join(REPO_ROOT, "node_modules", ".bin", "raft"));
    assert.equal(linked, fs.realpathSync(path.join(REPO_ROOT, "bin", "raft")));
  });

  it("deno.json's tasks and package.json's scripts start and test the same way", () => {
    const tasks = deno.tasks as Record<string, string>;
    const scripts = pkg.scripts as Record<string, string>;
    assert.ok(scripts.start?.includes("cli.ts start"));
    assert.ok(tasks.start?.includes("cli.ts start"));
    assert.equal(tasks.test, scripts["test:deno"]?.replace(" --quiet", ""));
  });
});
