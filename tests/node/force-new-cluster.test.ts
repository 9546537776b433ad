/**
 * `forceNewCluster` (`src/node/force-new-cluster.ts`) on real storage
 * files: what it keeps (through the highest index known committed), what it
 * drops (the tail after it), what it writes durably (one config entry
 * naming the member alone, the commit index on it, the membership file,
 * REMOVED), that a second run changes nothing, that a member already alone
 * keeps every entry, and that a member outside its own configuration is
 * refused.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { InvalidArgumentError } from "../../src/errors.ts";
import { forceNewCluster } from "../../src/node/force-new-cluster.ts";
import { bootstrapStorage, closeNodeStorage, type NodeStorage, openNodeStorage } from "../../src/node/node-storage.ts";
import { decodeMembership } from "../../src/raft/membership-codec.ts";
import type { Entry, Member } from "../../src/raft/types.ts";
import { readRemovedMembers } from "../../src/storage/removed-members-file.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-force-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const three: Member[] = ["n1", "n2", "n3"].map((id, i) => ({ id, url: `http://127.0.0.1:${7001 + i}`, voter: true }));
const n1 = { id: "n1", url: "http://127.0.0.1:7001" };
const normal = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: "normal" as const, data: new Uint8Array([from + i]) }));

async function fresh(name: string, lastIndex: number, commitIndex: number): Promise<NodeStorage> {
  const s = await openNodeStorage(path.join(root, name));
  await bootstrapStorage(s, three);
  await s.log.append(normal(1, lastIndex, 1));
  await s.state.write({ term: 2, votedFor: "n1", commitIndex });
  return s;
}

const newestConfig = (s: NodeStorage) => {
  const c = s.log.configs();
  return decodeMembership(c[c.length - 1]!.data).map((m) => `${m.id}:${m.voter}`);
};

describe("forceNewCluster()", () => {
  it("keeps the log through the durable commit index, drops the tail, and makes the member the only voter, durably", async () => {
    const lines: string[] = [];
    let s = await fresh("drop", 10, 6);
    const r = await forceNewCluster(s, n1, 0, (l) => lines.push(l));
    assert.deepEqual({ kept: r.keptThrough, dropped: r.dropped, range: r.droppedRange, config: r.configIndex }, { kept: 6, dropped: 4, range: [7, 10], config: 7 });
    assert.deepEqual(r.removed.map((m) => m.id), ["n2", "n3"]);
    assert.match(lines.join("\n"), /DROPPED 4 entries 7\.\.10 .*REMOVED members n2 \(http:\/\/127\.0\.0\.1:7002\), n3 \(http:\/\/127\.0\.0\.1:7003\)/);
    await closeNodeStorage(s);
    s = await openNodeStorage(path.join(root, "drop"));
    try {
      assert.equal(s.log.lastIndex(), 7);
      assert.equal(s.log.term(7), 2, "the config entry is at the current term");
      assert.equal(s.state.read().commitIndex, 7);
      assert.deepEqual(newestConfig(s), ["n1:true"]);
      assert.deepEqual(s.membership.read()?.members.map((m) => m.id), ["n1"]);
      assert.deepEqual([...(await readRemovedMembers(s.dir)).keys()].sort(), ["n2", "n3"]);
      const again = await forceNewCluster(s, n1, 0, () => {});
      assert.equal(again.configIndex, null, "a second run changes nothing");
      assert.equal(s.log.lastIndex(), 7);
    } finally {
      await closeNodeStorage(s);
    }
  });

  it("keeps what the state machine applied or a stored snapshot covers, even past the durable commit index", async () => {
    const s = await fresh("applied", 10, 3);
    try {
      const r = await forceNewCluster(s, n1, 8, () => {});
      assert.equal(r.keptThrough, 8);
      assert.deepEqual(r.droppedRange, [9, 10]);
    } finally {
      await closeNodeStorage(s);
    }
  });

  it("a member that already is its only voter keeps every entry (a sole voter commits what it made durable)", async () => {
    const s = await fresh("alone", 5, 5);
    try {
      await forceNewCluster(s, n1, 0, () => {});
      await s.log.append(normal(7, 9, 2)); // written alone; the lazily saved commit index still says 6
      const r = await forceNewCluster(s, n1, 0, () => {});
      assert.deepEqual({ kept: r.keptThrough, dropped: r.dropped, config: r.configIndex }, { kept: 9, dropped: 0, config: null });
      assert.equal(s.log.lastIndex(), 9);
    } finally {
      await closeNodeStorage(s);
    }
  });

  it("refuses a member that is not in its own configuration", async () => {
    const s = await fresh("stranger", 2, 2);
    try {
      await assert.rejects(forceNewCluster(s, { id: "n9", url: "http://127.0.0.1:7009" }, 0, () => {}), (err: unknown) => err instanceof InvalidArgumentError && /n9 is not in its own configuration/.test(err.message));
      assert.equal(s.log.lastIndex(), 2, "nothing changed");
    } finally {
      await closeNodeStorage(s);
    }
  });
});
