/**
 * The README's example of `mod.ts`, from this checkout: a single-member
 * cluster in this process that leads as soon as `start` resolves (no polling
 * for a leader), proposals resolving with `apply`'s result, a read barrier,
 * and a restart from the data directory alone that replays nothing twice.
 * (tests/install.test.ts runs the example verbatim from the packed package.)
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DiskSpaceError, InvalidArgumentError, LockedError, NotLeaderError, RaftNode } from "../mod.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-mod-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("mod.ts", () => {
  it("RaftNode.start() bootstraps a single member whose proposals resolve with apply's result", async () => {
    const dataDir = path.join(root, "data");
    const seen: number[] = [];
    let last = 0;
    const sm = {
      apply(id: number, data: Uint8Array) {
        seen.push(id);
        last = id;
        return data.length;
      },
      lastApplied: () => last,
    };
    const node = await RaftNode.start({ id: "n1", dataDir, host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, logger: () => {} });
    try {
      await assert.rejects(RaftNode.start({ id: "n1", dataDir, host: "127.0.0.1", port: 0, stateMachine: sm }), LockedError);
      // No waiting for an election: a single member leads once start() resolves.
      assert.equal(node.status().role, "leader");
      const results = await Promise.all(["hello", "a", "bc"].map((s) => node.propose(new TextEncoder().encode(s))));
      assert.deepEqual(results, [5, 1, 2]);
      await node.readBarrier();
      assert.equal(node.status().lastApplied >= 3, true);
    } finally {
      await node.close();
    }
    // Restart from the data directory alone: the persisted "state machine" (seen/last) is ahead; nothing is applied twice.
    const before = seen.length;
    const again = await RaftNode.start({ dataDir, stateMachine: sm, logger: () => {} });
    try {
      assert.equal(again.status().role, "leader", "a restarted single member leads once start() resolves");
      assert.equal(seen.length, before, "no id was applied twice");
      assert.equal(await again.propose(new Uint8Array(7)), 7);
      assert.equal(again.status().id, "n1");
    } finally {
      await again.close();
    }
  });

  it("RaftNode.start() refuses a non-loopback host (or client listener) without a secret, unless insecure, and a proposal no peer request could carry", async () => {
    const sm = { apply: () => undefined, lastApplied: () => 0 };
    for (const thread of ["caller", "worker"] as const) {
      await assert.rejects(RaftNode.start({ id: "x1", dataDir: path.join(root, `open-${thread}`), host: "0.0.0.0", port: 0, bootstrap: true, stateMachine: sm, thread, logger: () => {} }), /without TLS or a secret/);
    }
    await assert.rejects(RaftNode.start({
      id: "x1", dataDir: path.join(root, "open-client"), host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, logger: () => {},
      listenClient: { host: "0.0.0.0", port: 0 }, routes: () => {},
    }), /without TLS or a secret/);
    let last = 0;
    const node = await RaftNode.start({
      id: "x2", dataDir: path.join(root, "small-rpc"), host: "127.0.0.1", port: 0, bootstrap: true, thread: "caller", maxRpcBytes: 128 * 1024,
      stateMachine: { apply: (id: number) => (last = id), lastApplied: () => last }, logger: () => {},
    });
    try {
      for (let i = 0; i < 50 && node.status().role !== "leader"; i++) await new Promise((r) => setTimeout(r, 20));
      await assert.rejects(node.propose(new Uint8Array(128 * 1024)), InvalidArgumentError);
      assert.ok(typeof await node.propose(new Uint8Array(1024)) === "number");
    } finally {
      await node.close();
    }
  });

  it("below the free-space minimum, propose() is refused with DiskSpaceError before the disk fills", async () => {
    let last = 0;
    const node = await RaftNode.start({
      id: "d1",
      dataDir: path.join(root, "disk"),
      host: "127.0.0.1",
      port: 0,
      bootstrap: true,
      tickMs: 10,
      diskFreeBytesMin: Number.MAX_SAFE_INTEGER, // no disk has this much free: the watermark trips at the first check
      stateMachine: { apply: (id: number) => (last = id), lastApplied: () => last },
      logger: () => {},
    });
    try {
      let refused: unknown = null;
      for (let i = 0; i < 500 && refused === null; i++) {
        // NotLeaderError until the single member has elected itself; then the watermark speaks.
        await node.propose(new Uint8Array(1)).catch((err) => (refused = err instanceof NotLeaderError ? null : err));
        if (refused === null) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(refused instanceof DiskSpaceError, `expected DiskSpaceError, got ${String(refused)}`);
    } finally {
      await node.close();
    }
  });
});
