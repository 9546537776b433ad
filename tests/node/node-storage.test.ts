/**
 * `openNodeStorage` refuses a data directory whose parts disagree, naming
 * the file, instead of starting from a guess (issue "The production driver
 * under the simulator", defects 1, 2 and 6), and a member started on such a
 * directory stops with that error.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { StorageCorruptError } from "../../src/errors.ts";
import { bootstrapStorage, closeNodeStorage, openNodeStorage, restorableSnapshot } from "../../src/node/node-storage.ts";
import { bootstrapDataDir, RaftNode } from "../../src/node/raft-node.ts";
import type { Entry } from "../../src/raft/types.ts";
import { freshDirs } from "../storage/helpers.ts";

const members = [{ id: "n1", url: "http://127.0.0.1:1", voter: true }];
const ent = (index: number, term: number): Entry => ({ index, term, type: "normal", data: new Uint8Array([index]) });
const chunks = (bytes: Uint8Array) => (async function* () { yield bytes; })();

describe("openNodeStorage", () => {
  const fresh = freshDirs();

  async function member(dir: string): Promise<void> {
    const s = await openNodeStorage(dir);
    await bootstrapStorage(s, members);
    await s.log.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    await s.state.write({ term: 1, votedFor: "n1", commitIndex: 3 });
    await closeNodeStorage(s);
  }

  it("refuses a directory that holds a log but no state file, naming the file (defect 6)", async () => {
    const dir = fresh("no-state");
    await member(dir);
    fs.rmSync(path.join(dir, "STATE"));
    await assert.rejects(openNodeStorage(dir), (err: unknown) => {
      assert.ok(err instanceof StorageCorruptError, String(err));
      assert.equal(err.file, path.join(dir, "STATE"));
      assert.match(err.message, /state file is missing.*vote twice/);
      return true;
    });
  });

  it("a fresh directory gets a state file at once, so a bootstrapped one always has one", async () => {
    const dir = fresh("boot");
    await bootstrapDataDir(dir, { id: "n1", host: "127.0.0.1", port: 1, members });
    assert.ok(fs.existsSync(path.join(dir, "STATE")));
  });

  it("refuses a commit index beyond the log's last entry, naming the state file (defect 1)", async () => {
    const dir = fresh("commit-past");
    await member(dir);
    const s = await openNodeStorage(dir);
    await s.state.write({ term: 1, votedFor: "n1", commitIndex: 9 });
    await closeNodeStorage(s);
    await assert.rejects(openNodeStorage(dir), (err: unknown) => {
      assert.ok(err instanceof StorageCorruptError, String(err));
      assert.equal(err.file, path.join(dir, "STATE"));
      assert.match(err.message, /commit index 9 is beyond the last entry \(3\)/);
      return true;
    });
  });

  it("removes a stored snapshot the log does not hold (received, never installed) and restores only from one that agrees (defect 2)", async () => {
    const dir = fresh("snap-agree");
    await member(dir);
    const s = await openNodeStorage(dir);
    await s.snapshots.write({ index: 2, term: 1, membership: members }, chunks(new Uint8Array([2])));
    await s.snapshots.write({ index: 20, term: 3, membership: members }, chunks(new Uint8Array([20])));
    await s.snapshots.write({ index: 3, term: 2, membership: members }, chunks(new Uint8Array([3])));
    await closeNodeStorage(s);
    const again = await openNodeStorage(dir);
    assert.deepEqual(again.snapshots.list().map((x) => x.meta.index), [2], "20 (past the log) and 3 (another term) are gone");
    assert.equal(restorableSnapshot(again)?.meta.index, 2);
    await closeNodeStorage(again);
  });

  it("a member whose state file was deleted does not start (defect 6, through RaftNode.start)", async () => {
    const dir = fresh("node-no-state");
    let last = 0;
    const sm = { apply: (id: number) => (last = id), lastApplied: () => last };
    const node = await RaftNode.start({ id: "n1", dataDir: dir, host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, thread: "caller", logger: () => {} });
    await node.propose(new Uint8Array([1]));
    await node.close();
    fs.rmSync(path.join(dir, "STATE"));
    await assert.rejects(RaftNode.start({ dataDir: dir, stateMachine: sm, thread: "caller", logger: () => {} }), (err: unknown) => err instanceof StorageCorruptError && err.file === path.join(dir, "STATE"));
  });
});
