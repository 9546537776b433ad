/**
 * The backup calls of `mod.ts` with a state machine of the user's own (not
 * the KV store), in this process, with the consensus loop on the caller's
 * thread and on a worker: `takeSnapshot()` compacts the log, `saveBackup`
 * from a running `RaftNode`, `backupStatus`, `restoreBackup` into a new
 * directory that `RaftNode.start` brings up with the saved state; a state
 * machine without `snapshot()` gets a clear refusal (HTTP 501); and
 * `forceNewCluster` on a member of a (dead) 3-member cluster.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backupStatus, bootstrapDataDir, clientTokenFor, RaftError, RaftNode, restoreBackup, saveBackup, takeSnapshotOf } from "../../mod.ts";
import type { SnapshotSource, StateMachine } from "../../mod.ts";
import { makeTestCerts } from "../helpers/certs.ts";
import { freePorts } from "../helpers/ports.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-backup-lib-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A state machine that keeps a list of strings in memory and snapshots it as one JSON document. */
function listMachine(): StateMachine & { items: string[] } {
  let last = 0;
  const m = {
    items: [] as string[],
    apply(id: number, data: Uint8Array) {
      if (id <= last) return undefined;
      last = id;
      m.items.push(new TextDecoder().decode(data));
      return m.items.length;
    },
    lastApplied: () => last,
    snapshot(): SnapshotSource {
      const bytes = new TextEncoder().encode(JSON.stringify(m.items));
      const at = last;
      return { index: at, chunks: (async function* () { yield bytes; })() };
    },
    async restore(index: number, chunks: AsyncIterable<Uint8Array>) {
      const parts: Uint8Array[] = [];
      for await (const c of chunks) parts.push(c.slice());
      m.items = JSON.parse(new TextDecoder().decode(Uint8Array.from(parts.flatMap((p) => [...p])))) as string[];
      last = index;
    },
  };
  return m;
}

const enc = (s: string) => new TextEncoder().encode(s);

describe("backups through mod.ts", () => {
  for (const thread of ["caller", "worker"] as const) {
    it(`takeSnapshot(), saveBackup(node), backupStatus() and restoreBackup() with the user's own state machine (thread: ${thread})`, async () => {
      const sm = listMachine();
      const node = await RaftNode.start({ id: "n1", dataDir: path.join(root, `src-${thread}`), host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, thread, logger: () => {} });
      let file = "";
      try {
        for (let i = 0; i < 30; i++) await node.propose(enc(`item ${i}`));
        const before = node.status().firstIndex;
        const taken = await node.takeSnapshot();
        assert.ok(taken.index >= 30 && taken.compactedThrough === taken.index, JSON.stringify(taken));
        for (let i = 0; i < 50 && node.status().firstIndex === before; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(node.status().firstIndex, taken.compactedThrough + 1, "the log starts after the snapshot");
        await node.propose(enc("last"));
        file = path.join(root, `${thread}.snap`);
        const progress: number[] = [];
        const saved = await saveBackup(node, file, { onProgress: (got) => progress.push(got) });
        assert.equal(saved.payloadBytes, new TextEncoder().encode(JSON.stringify(sm.items)).length);
        assert.ok(progress.at(-1) === saved.fileBytes, "progress reaches the whole file");
        const info = backupStatus(file);
        assert.equal(info.index, sm.lastApplied());
        assert.equal(info.sha256, saved.sha256);
      } finally {
        await node.close();
      }
      const [port] = await freePorts(1);
      const dataDir = path.join(root, `restored-${thread}`);
      const r = await restoreBackup(file, { dataDir, id: "r1", members: [{ id: "r1", url: `http://127.0.0.1:${port}` }] });
      assert.notEqual(r.clusterId, node.clusterId, "a new cluster");
      const fresh = listMachine();
      const restored = await RaftNode.start({ dataDir, stateMachine: fresh, thread, logger: () => {} });
      try {
        assert.deepEqual(fresh.items, [...sm.items], "the restored member holds the saved state");
        assert.equal(restored.status().members.length, 1);
        await restored.propose(enc("after"));
        assert.equal(fresh.items.at(-1), "after");
      } finally {
        await restored.close();
      }
    });
  }

  it("over TLS with client certificates required and a cluster secret: saveBackup and takeSnapshotOf need the token and a client certificate", async () => {
    const certs = makeTestCerts();
    const secret = enc("a-cluster-secret-of-enough-length");
    const sm = listMachine();
    const node = await RaftNode.start({
      id: "s1", dataDir: path.join(root, "tls"), host: "127.0.0.1", port: 0, bootstrap: true, stateMachine: sm, thread: "caller", logger: () => {}, secret,
      tls: { cert: certs.member.cert, key: certs.member.key, ca: certs.ca.cert, requireClientCert: true },
    });
    try {
      for (let i = 0; i < 5; i++) await node.propose(enc(`s${i}`));
      const tls = { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key };
      const file = path.join(root, "tls.snap");
      await assert.rejects(saveBackup(node, file, { tls }), /HTTP 401/);
      await assert.rejects(saveBackup(node, file, { tls: { ca: certs.ca.cert }, secret }), /HTTP 403|client certificate/);
      const info = await saveBackup(node, file, { tls, secret });
      assert.equal(info.index, sm.lastApplied());
      const t = await takeSnapshotOf(node, { tls, token: clientTokenFor(secret) });
      assert.equal(t.index, sm.lastApplied());
    } finally {
      await node.close();
      certs.remove();
    }
  });

  it("a state machine without snapshot() cannot be backed up or snapshotted: 501 saying so", async () => {
    let last = 0;
    const node = await RaftNode.start({
      id: "p1", dataDir: path.join(root, "plain"), host: "127.0.0.1", port: 0, bootstrap: true, thread: "caller", logger: () => {},
      stateMachine: { apply: (id: number) => (last = id), lastApplied: () => last },
    });
    try {
      await assert.rejects(saveBackup(node, path.join(root, "plain.snap")), (err: unknown) => err instanceof RaftError && /HTTP 501: .*no snapshot\(\)/.test(err.message));
      assert.ok(!fs.existsSync(path.join(root, "plain.snap.part")), "no partial file is left");
      await assert.rejects(takeSnapshotOf(node), /HTTP 501/);
      await assert.rejects(node.takeSnapshot(), /no snapshot\(\)/);
    } finally {
      await node.close();
    }
  });

  it("forceNewCluster: a member of a 3-member cluster whose others are gone starts alone with its committed entries", async () => {
    const ports = await freePorts(3);
    const members = ports.map((p, i) => ({ id: `f${i + 1}`, url: `http://127.0.0.1:${p}`, voter: true }));
    const dataDir = path.join(root, "forced");
    await bootstrapDataDir(dataDir, { id: "f1", host: "127.0.0.1", port: ports[0]!, members });
    const lines: string[] = [];
    const sm = listMachine();
    const node = await RaftNode.start({ dataDir, stateMachine: sm, thread: "caller", forceNewCluster: true, logger: (l) => lines.push(l) });
    try {
      assert.ok(lines.some((l) => /WARNING --force-new-cluster: making f1 the only voter.*REMOVED members f2 .*f3 /.test(l)), lines.join("\n"));
      assert.deepEqual(node.status().members.map((m) => m.id), ["f1"]);
      await node.propose(enc("alone"));
      assert.deepEqual(sm.items, ["alone"]);
    } finally {
      await node.close();
    }
  });
});
