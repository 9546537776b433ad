/**
 * PeerClient against a real HTTP server on this runtime (the adapter's
 * `serve` and `httpClient`): 10,000 messages in batches with several
 * requests in flight, a snapshot streamed in chunks, and a server that
 * never answers (onUnreachable after the timeout).
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import type { HttpClient, HttpServer } from "../../adapters/types.ts";
import type { Message, MsgSnap } from "../../src/raft/types.ts";
import { PeerClient } from "../../src/transport/peer-client.ts";
import { MESSAGES_PATH, peerRoutes } from "../../src/transport/routes.ts";
import { waitFor } from "../helpers/wait.ts";
import { MemorySnapshotSink, patternBytes } from "./_sink.ts";

const SECRET = new TextEncoder().encode("server test secret");

function app(msgs: Message[], sink: MemorySnapshotSink): Hono {
  return peerRoutes({
    clusterId: "c1", nodeId: "n2", secret: SECRET, maxBodyBytes: 1 << 20, maxSnapshotChunkBytes: 256 * 1024,
    onMessages: (_from, batch) => {
      for (const m of batch) msgs.push(m);
    },
    snapshotSink: sink,
  });
}

describe(`PeerClient over a real server (${runtime.name})`, () => {
  let server: HttpServer;
  let http: HttpClient;
  const received: Message[] = [];
  const sink = new MemorySnapshotSink();
  const unreachable: string[] = [];

  before(async () => {
    server = await runtime.serve(app(received, sink), "127.0.0.1", 0);
    http = runtime.httpClient();
  });
  after(async () => {
    http.close();
    await server.close();
  });

  const client = (over: { maxInflightRequests?: number; maxBatchBytes?: number } = {}): PeerClient =>
    new PeerClient({
      peerId: "n2", peerUrl: `http://127.0.0.1:${server.port}`, clusterId: "c1", nodeId: "n1", secret: SECRET, http,
      requestTimeoutMs: 10_000, maxQueuedMessages: 20_000, snapshotChunkBytes: 256 * 1024, snapshotRetryDelayMs: 10,
      onUnreachable: (id, reason) => unreachable.push(`${id}: ${reason}`),
      ...over,
    });

  it("delivers 10,000 messages in batches with several requests in flight", async () => {
    const c = client({ maxInflightRequests: 4, maxBatchBytes: 16 * 1024 });
    let next = 0;
    const data = patternBytes(64);
    for (let round = 0; round < 20; round++) {
      const batch: Message[] = [];
      for (let i = 0; i < 500; i++, next++) {
        batch.push({
          type: "MsgApp", from: "n1", to: "n2", term: 2, prevLogIndex: next, prevLogTerm: 2, leaderCommit: next,
          entries: [{ index: next + 1, term: 2, type: "normal", data }],
        });
      }
      c.send(batch);
      // Let this round's requests start (and some finish) before the next round.
      await new Promise<void>((r) => setTimeout(r, 0));
    }
    // The server hands a batch over before it answers: wait for the answers too.
    await waitFor(() => `${received.length} received, stats ${JSON.stringify(c.stats())}`, () => (received.length >= 10_000 && c.stats().inflight === 0) || unreachable.length > 0, 30_000);
    assert.deepStrictEqual(unreachable, []);
    assert.equal(received.length, 10_000);
    const seen = new Set(received.map((m) => (m.type === "MsgApp" ? m.prevLogIndex : -1)));
    assert.equal(seen.size, 10_000);
    for (const m of received) {
      assert.ok(m.type === "MsgApp" && m.entries.length === 1);
      assert.deepStrictEqual(m.entries[0]!.data, data);
    }
    const s = c.stats();
    assert.equal(s.messagesSent, 10_000);
    assert.equal(s.inflightPeak, 4);
    assert.ok(s.requestsSent < 10_000 / 50, `expected batching, got ${s.requestsSent} requests`);
    assert.equal(s.messagesDropped, 0);
    c.close();
  });

  it("streams a 3 MB snapshot in 256 KiB chunks", async () => {
    const bytes = patternBytes(3 * 1024 * 1024 + 17, 3);
    const snap: MsgSnap = { type: "MsgSnap", from: "n1", to: "n2", term: 5, snapshot: { index: 9000, term: 5, membership: [{ id: "n1", url: "http://a", voter: true }] } };
    async function* source(offset: number): AsyncIterable<Uint8Array> {
      for (let p = offset; p < bytes.length; p += 100_000) yield bytes.subarray(p, Math.min(bytes.length, p + 100_000));
    }
    const progress: number[] = [];
    await client().sendSnapshot(snap, source, { totalBytes: bytes.length, onProgress: (n) => progress.push(n) });
    assert.equal(sink.finished.length, 1);
    assert.deepStrictEqual(sink.finished[0]!.bytes, bytes);
    assert.deepStrictEqual(sink.finished[0]!.msg, snap);
    assert.equal(progress.at(-1), bytes.length);
    assert.equal(Math.max(...sink.writes), 256 * 1024);
  });

  it("reports a peer that never answers as unreachable once the request times out", async () => {
    const hanging = new Hono();
    const release: (() => void)[] = [];
    let arrived = 0;
    hanging.post(MESSAGES_PATH, () =>
      new Promise<Response>((resolve) => {
        arrived++;
        release.push(() => resolve(new Response(null, { status: 204 })));
      }));
    const silent = await runtime.serve(hanging, "127.0.0.1", 0);
    const silentHttp = runtime.httpClient();
    const reasons: string[] = [];
    try {
      const c = new PeerClient({
        peerId: "n3", peerUrl: `http://127.0.0.1:${silent.port}`, clusterId: "c1", nodeId: "n1", secret: SECRET,
        http: silentHttp, requestTimeoutMs: 300,
        onUnreachable: (id, reason) => reasons.push(`${id}: ${reason}`),
      });
      c.send([{ type: "MsgHeartbeat", from: "n1", to: "n3", term: 1, leaderCommit: 0, readContext: 0 }]);
      await waitFor(() => `no onUnreachable; ${arrived} requests arrived; stats ${JSON.stringify(c.stats())}`, () => reasons.length > 0, 30_000);
      assert.equal(arrived, 1);
      assert.match(reasons[0]!, /^n3: .*(Timeout|within 300 ms)/);
      assert.equal(c.stats().inflight, 0);
      c.close();
    } finally {
      for (const r of release) r();
      silentHttp.close();
      await silent.close();
    }
  });
});
