/**
 * Tests of `PeerClient` against the real peer routes served in-process:
 * batching, the in-flight limit, the bounded queue, failure reporting, and
 * chunked snapshot transfers that resume after lost requests, lost
 * acknowledgements and a receiver that lost its data.
 *
 * @module
 */
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { Message, MsgSnap } from "../../src/raft/types.ts";
import { CodecError, decodeMessages } from "../../src/transport/codec.ts";
import { PeerClient, type PeerClientOptions, type SnapshotSource } from "../../src/transport/peer-client.ts";
import { peerRoutes, SNAPSHOT_CHUNK_PATH, SNAPSHOT_FINISH_PATH } from "../../src/transport/routes.ts";
import { TimeoutError } from "../../src/errors.ts";
import { AppHttpClient } from "./_http.ts";
import { appendMessage } from "./_messages.ts";
import { MemorySnapshotSink, patternBytes } from "./_sink.ts";

const SECRET = new TextEncoder().encode("peer secret");

const hb = (i: number): Message => ({ type: "MsgHeartbeat", from: "n1", to: "n2", term: 1, leaderCommit: i, readContext: i });
const vote = (i: number): Message => ({ type: "MsgVote", from: "n1", to: "n2", term: i, lastLogIndex: 0, lastLogTerm: 0, transfer: false });

/** Resolves after pending microtasks (and their follow-ups) ran. */
function settle(): Promise<void> {
  return new Promise<void>((r) => setTimeout(r, 0));
}

interface World {
  http: AppHttpClient;
  sink: MemorySnapshotSink;
  received: Message[][];
  unreachable: string[];
  dropped: number[];
  client(over?: Partial<PeerClientOptions>): PeerClient;
}

function world(maxSnapshotChunkBytes = 1024): World {
  const received: Message[][] = [];
  const sink = new MemorySnapshotSink();
  const app = peerRoutes({
    clusterId: "c1", nodeId: "n2", secret: SECRET, maxBodyBytes: 1 << 20, maxSnapshotChunkBytes,
    onMessages: (_from, msgs) => received.push(msgs), snapshotSink: sink,
  });
  const http = new AppHttpClient(app);
  const w: World = {
    http, sink, received, unreachable: [], dropped: [],
    client: (over = {}) =>
      new PeerClient({
        peerId: "n2", peerUrl: "http://peer.test:7002/", clusterId: "c1", nodeId: "n1", secret: SECRET, http,
        requestTimeoutMs: 1000, snapshotChunkBytes: 1000, snapshotRetryDelayMs: 0,
        onUnreachable: (id, reason) => w.unreachable.push(`${id}: ${reason}`),
        onDropped: (_id, n) => w.dropped.push(n),
        ...over,
      }),
  };
  return w;
}

describe("PeerClient.send", () => {
  let w: World;
  beforeEach(() => {
    w = world();
  });

  it("batches everything sent in one turn into one request", async () => {
    const c = w.client();
    for (let i = 0; i < 20; i++) c.send([hb(i)]);
    await settle();
    assert.equal(w.http.requests.length, 1);
    assert.deepStrictEqual(w.received, [Array.from({ length: 20 }, (_, i) => hb(i))]);
    assert.equal(c.stats().messagesSent, 20);
  });

  it("keeps at most maxInflightRequests in flight and sends what queued meanwhile as one request", async () => {
    w.http.hold = true;
    const c = w.client({ maxInflightRequests: 2 });
    c.send([hb(0)]);
    await w.http.heldCount(1);
    c.send([hb(1)]);
    await w.http.heldCount(2);
    for (let i = 2; i < 10; i++) c.send([hb(i)]);
    await settle();
    assert.equal(w.http.held.length, 2);
    assert.equal(c.stats().queued, 8);
    w.http.held[0]!.release();
    await w.http.heldCount(2);
    const third = w.http.held[1]!;
    assert.deepStrictEqual(decodeMessages(third.req.body!).map((m) => (m as { readContext: number }).readContext), [2, 3, 4, 5, 6, 7, 8, 9]);
    w.http.hold = false;
    for (const h of [...w.http.held]) h.release();
    await settle();
    assert.equal(c.stats().inflightPeak, 2);
    assert.equal(c.stats().messagesSent, 10);
    assert.deepStrictEqual(w.received.flat().map((m) => (m as { readContext: number }).readContext).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("holds appends behind a request in flight until pipelineBytes of them wait; anything else takes a free slot at once", async () => {
    w.http.hold = true;
    const c = w.client({ maxInflightRequests: 4, pipelineBytes: 3000 }); // each append below is about 1,200 bytes
    c.send([appendMessage("n1", "n2", 0, 10, 100)]);
    await w.http.heldCount(1);
    c.send([appendMessage("n1", "n2", 10, 10, 100)]);
    await settle();
    assert.equal(w.http.held.length, 1, "one small append waits for the request in flight");
    c.send([hb(7)]);
    await w.http.heldCount(2);
    assert.deepStrictEqual(decodeMessages(w.http.held[1]!.req.body!).map((m) => m.type), ["MsgApp", "MsgHeartbeat"], "a heartbeat goes at once, with what waited before it");
    c.send([appendMessage("n1", "n2", 20, 10, 100), appendMessage("n1", "n2", 30, 10, 100)]);
    await settle();
    assert.equal(w.http.held.length, 2, "2,400 bytes of appends are under pipelineBytes");
    c.send([appendMessage("n1", "n2", 40, 10, 100)]);
    await w.http.heldCount(3);
    assert.equal(decodeMessages(w.http.held[2]!.req.body!).length, 3, "3,600 bytes of appends fill a request of their own");
    c.send([appendMessage("n1", "n2", 50, 10, 100)]);
    await settle();
    assert.equal(w.http.held.length, 3);
    w.http.held[0]!.release();
    await settle();
    assert.equal(w.http.held.length, 2, "the append waits while any request is in flight");
    w.http.held[0]!.release();
    w.http.held[0]!.release();
    await w.http.heldCount(1);
    assert.equal((decodeMessages(w.http.held[0]!.req.body!)[0] as { prevLogIndex: number }).prevLogIndex, 50, "once none is, the waiting append goes");
    w.http.hold = false;
    for (const h of [...w.http.held]) h.release();
    await settle();
    assert.deepStrictEqual(w.received.flat().filter((m) => m.type === "MsgApp").map((m) => (m as { prevLogIndex: number }).prevLogIndex).sort((a, b) => a - b), [0, 10, 20, 30, 40, 50]);
    assert.equal(c.stats().queued, 0);
  });

  it("splits a batch at maxBatchBytes", async () => {
    const c = w.client({ maxBatchBytes: 2000 }); // each message is about 1,200 bytes
    c.send([appendMessage("n1", "n2", 0, 10, 100), appendMessage("n1", "n2", 10, 10, 100), appendMessage("n1", "n2", 20, 10, 100)]);
    await settle();
    assert.equal(w.http.requests.length, 3);
    assert.equal(w.received.flat().length, 3);
  });

  it("drops the oldest droppable messages from a full queue, never votes, and reports it", async () => {
    w.http.hold = true;
    const c = w.client({ maxInflightRequests: 1, maxQueuedMessages: 5 });
    c.send([hb(0)]);
    await w.http.heldCount(1);
    c.send([vote(1), hb(1), hb(2), vote(2), hb(3), hb(4), hb(5), hb(6)]);
    assert.equal(c.stats().queued, 5);
    assert.deepStrictEqual(w.dropped, [3]);
    w.http.hold = false;
    w.http.held[0]!.release();
    await settle();
    assert.deepStrictEqual(w.received[1], [vote(1), vote(2), hb(4), hb(5), hb(6)]);
    assert.equal(c.stats().messagesDropped, 3);
  });

  it("calls onUnreachable when a request fails or is refused, and keeps sending", async () => {
    const c = w.client();
    w.http.hook = (_req, n) => (n === 0 ? "refuse" : "deliver");
    c.send([hb(0)]);
    await settle();
    assert.equal(w.unreachable.length, 1);
    assert.match(w.unreachable[0]!, /^n2: .*connection refused/);
    c.send([hb(1)]);
    await settle();
    assert.deepStrictEqual(w.received, [[hb(1)]]);
    // A receiver refusing the request (wrong secret: 401) is reported too.
    const bad = w.client({ secret: new TextEncoder().encode("wrong") });
    bad.send([hb(2)]);
    await settle();
    assert.equal(w.unreachable.length, 2);
    assert.match(w.unreachable[1]!, /HTTP 401/);
    assert.equal(w.received.length, 1);
  });

  it("refuses a MsgSnap, a message for another peer or one it cannot encode, and ignores sends after close", async () => {
    const c = w.client();
    const snap: MsgSnap = { type: "MsgSnap", from: "n1", to: "n2", term: 1, snapshot: { index: 1, term: 1, membership: [{ id: "n1", url: "", voter: true }] } };
    assert.throws(() => c.send([snap]), /sendSnapshot/);
    assert.throws(() => c.send([{ ...hb(0), to: "n3" }]), /n3/);
    // Checked synchronously, and all-or-nothing: the valid first message is not queued either.
    assert.throws(() => c.send([hb(0), { ...hb(1), term: 2 ** 53 }]), CodecError);
    assert.equal(c.stats().queued, 0);
    c.close();
    c.send([hb(0)]);
    await settle();
    assert.equal(w.http.requests.length, 0);
  });
});

describe("PeerClient.sendSnapshot", () => {
  const snap: MsgSnap = { type: "MsgSnap", from: "n1", to: "n2", term: 4, snapshot: { index: 500, term: 3, membership: [{ id: "n1", url: "http://a", voter: true }, { id: "n2", url: "http://b", voter: true }] } };
  const data = patternBytes(10_500, 7);

  /** A stream yielding `bytes` from `offset` in uneven pieces. */
  async function* pieces(bytes: Uint8Array, offset = 0): AsyncIterable<Uint8Array> {
    for (let p = offset, k = 0; p < bytes.length; k++) {
      const n = [1, 333, 2048, 700][k % 4]!;
      yield bytes.slice(p, p + n);
      p += n;
    }
  }

  it("sends the snapshot in acknowledged chunks and reports progress", async () => {
    const w = world();
    const progress: number[] = [];
    await w.client().sendSnapshot(snap, pieces(data), { totalBytes: data.length, onProgress: (n) => progress.push(n) });
    assert.equal(w.sink.finished.length, 1);
    assert.deepStrictEqual(w.sink.finished[0]!.bytes, data);
    assert.deepStrictEqual(w.sink.finished[0]!.msg, snap);
    assert.deepStrictEqual(w.sink.writes, [...Array(10).fill(1000), 500]);
    assert.deepStrictEqual(progress, [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000, 10_500]);
    // One request at a time: begin, 11 chunks, finish.
    assert.equal(w.http.requests.length, 13);
  });

  it("resumes after lost requests and lost acknowledgements, from the receiver's offset", async () => {
    const w = world();
    // One-shot faults: a chunk request that never arrives, a chunk whose acknowledgement is
    // lost after the write, and a finish whose request never arrives.
    const faults = new Map<string, "refuse" | "lose-response">([
      [`${SNAPSHOT_CHUNK_PATH}@3000`, "refuse"],
      [`${SNAPSHOT_CHUNK_PATH}@6000`, "lose-response"],
      [`${SNAPSHOT_FINISH_PATH}@10500`, "refuse"],
    ]);
    w.http.hook = (req) => {
      const u = new URL(req.url);
      const key = `${u.pathname}@${u.searchParams.get("offset")}`;
      const fault = faults.get(key);
      faults.delete(key);
      return fault ?? "deliver";
    };
    await w.client().sendSnapshot(snap, pieces(data), { totalBytes: data.length });
    assert.deepStrictEqual(w.sink.finished[0]!.bytes, data);
    // Every byte was written exactly once despite the retries.
    assert.deepStrictEqual(w.sink.writes, [...Array(10).fill(1000), 500]);
    assert.equal(faults.size, 0);
  });

  it("restarts from the receiver's offset when a new sender resumes the same transfer id", async () => {
    const w = world();
    w.http.hook = (req) => (new URL(req.url).pathname === SNAPSHOT_CHUNK_PATH && w.sink.writes.length === 4 ? "refuse" : "deliver");
    await assert.rejects(w.client({ snapshotAttemptsMax: 2 }).sendSnapshot(snap, pieces(data), { totalBytes: data.length }), TimeoutError);
    assert.equal(w.sink.finished.length, 0);
    w.http.hook = () => "deliver";
    const opened: number[] = [];
    const source: SnapshotSource = (offset) => {
      opened.push(offset);
      return pieces(data, offset);
    };
    await w.client().sendSnapshot(snap, source, { totalBytes: data.length });
    assert.deepStrictEqual(opened, [4000]);
    assert.deepStrictEqual(w.sink.finished[0]!.bytes, data);
    assert.deepStrictEqual(w.sink.writes, [...Array(10).fill(1000), 500]);
  });

  it("starts over when the receiver lost the transfer (needs a rewindable source)", async () => {
    const w = world();
    let dropped = false;
    w.http.hook = (req) => {
      if (!dropped && new URL(req.url).pathname === SNAPSHOT_CHUNK_PATH && w.sink.writes.length === 5) {
        dropped = true;
        w.sink.transfers.clear(); // the receiver restarted and lost its temp file
      }
      return "deliver";
    };
    const opened: number[] = [];
    await w.client().sendSnapshot(snap, (offset) => {
      opened.push(offset);
      return pieces(data, offset);
    }, { totalBytes: data.length });
    assert.deepStrictEqual(opened, [0, 0]);
    assert.deepStrictEqual(w.sink.finished[0]!.bytes, data);
    // A plain stream cannot go back: the transfer fails with a clear error.
    const w2 = world();
    let dropped2 = false;
    w2.http.hook = (req) => {
      if (!dropped2 && new URL(req.url).pathname === SNAPSHOT_CHUNK_PATH && w2.sink.writes.length === 5) {
        dropped2 = true;
        w2.sink.transfers.clear();
      }
      return "deliver";
    };
    await assert.rejects(w2.client().sendSnapshot(snap, pieces(data), { totalBytes: data.length }), /cannot rewind/);
  });

  it("gives up with TimeoutError after snapshotAttemptsMax consecutive failures", async () => {
    const w = world();
    w.http.hook = () => "refuse";
    await assert.rejects(w.client({ snapshotAttemptsMax: 3 }).sendSnapshot(snap, pieces(data), { totalBytes: data.length }), (e: unknown) => {
      assert.ok(e instanceof TimeoutError);
      assert.match(e.message, /failed 3 times/);
      return true;
    });
    assert.equal(w.http.requests.length, 3);
  });

  it("refuses a second concurrent transfer to the same peer", async () => {
    const w = world();
    w.http.hold = true;
    const c = w.client();
    const first = c.sendSnapshot(snap, pieces(data), { totalBytes: data.length });
    await assert.rejects(c.sendSnapshot(snap, pieces(data), { totalBytes: data.length }), /already running/);
    await w.http.heldCount(1);
    w.http.hold = false;
    w.http.held[0]!.release();
    await first;
    assert.equal(w.sink.finished.length, 1);
  });
});
