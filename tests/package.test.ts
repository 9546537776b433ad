/**
 * The two manifests, `package.json` (npm, Node, Bun) and `deno.json` (Deno),
 * must not drift apart: same version, same export map, and every exported
 * file exists. Also checks that `npm install` linked our own `raft` bin (and
 * not the unrelated `raft` package from the registry).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./helpers/runtimes.ts";

const readJson = (name: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, name), "utf8")) as Record<string, unknown>;

describe("manifests", () => {
  const pkg = readJson("package.json");
  const deno = readJson("deno.json");

  it("package.json and deno.json have the same version", () => {
    assert.equal(deno.version, pkg.version);
  });

  it("package.json and deno.json have the same export map, and every export exists", () => {
    assert.deepEqual(deno.exports, pkg.exports);
    for (const target of Object.values(pkg.exports as Record<string, string>)) {
      assert.ok(fs.existsSync(path.join(REPO_ROOT, target)), `exported file ${target} is missing`);
    }
  });

  it("the raft bin in node_modules/.bin is this package's launcher", () => {
    assert.deepEqual(pkg.bin, { raft: "bin/raft" });
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
