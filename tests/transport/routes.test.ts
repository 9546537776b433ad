/**
 * Tests of the peer routes through Hono's in-process `app.request`: accepted
 * batches, refusals (400, 401, 403, 410, 413, 421) that never reach the
 * driver, made before the body is read when the headers suffice, and a
 * chunked snapshot upload that is interrupted and resumed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { Hono } from "hono";
import type { Message, MsgSnap } from "../../src/raft/types.ts";
import { NonceSource, signRequest } from "../../src/transport/auth.ts";
import { encodeMessages } from "../../src/transport/codec.ts";
import {
  HEADER_SNAPSHOT_OFFSET,
  MESSAGES_PATH,
  peerRoutes,
  type RefusedRequest,
  SNAPSHOT_BEGIN_PATH,
  SNAPSHOT_CHUNK_PATH,
  SNAPSHOT_FINISH_PATH,
} from "../../src/transport/routes.ts";
import { appendMessage } from "./_messages.ts";
import { MemorySnapshotSink, patternBytes } from "./_sink.ts";

const SECRET = new TextEncoder().encode("s3cret");
const nonces = new NonceSource();

interface Harness {
  app: Hono;
  received: { from: string; msgs: Message[] }[];
  refused: RefusedRequest[];
  sink: MemorySnapshotSink;
}

function harness(secret: Uint8Array | null, maxBodyBytes = 4096, maxSnapshotChunkBytes = 1024): Harness {
  const received: Harness["received"] = [];
  const refused: RefusedRequest[] = [];
  const sink = new MemorySnapshotSink();
  const app = peerRoutes({
    clusterId: "c1", nodeId: "n2", secret, maxBodyBytes, maxSnapshotChunkBytes,
    onMessages: (from, msgs) => received.push({ from, msgs }),
    snapshotSink: sink,
    onRefused: (r) => refused.push(r),
  });
  return { app, received, refused, sink };
}

/** Sends a signed POST as member `from` of cluster `clusterId`. */
function post(h: Harness, path: string, body: Uint8Array, o: { secret?: Uint8Array | null; clusterId?: string; from?: string; to?: string } = {}): Promise<Response> {
  const headers = signRequest({
    secret: o.secret === undefined ? SECRET : o.secret, clusterId: o.clusterId ?? "c1", from: o.from ?? "n1", to: o.to ?? "n2",
    method: "POST", path, body, nowMs: Date.now(), nonce: nonces.next(),
  });
  return Promise.resolve(h.app.request(path, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { ...headers, "content-type": "application/octet-stream" } }));
}

const hb: Message = { type: "MsgHeartbeat", from: "n1", to: "n2", term: 2, leaderCommit: 1, readContext: 0 };

describe("peer routes", () => {
  let h: Harness;
  beforeEach(() => {
    h = harness(SECRET);
  });

  it("accepts a signed batch with 204 and hands it over once", async () => {
    const msgs = [hb, appendMessage("n1", "n2", 4, 3, 10)];
    const res = await post(h, MESSAGES_PATH, encodeMessages(msgs));
    assert.equal(res.status, 204);
    assert.deepStrictEqual(h.received, [{ from: "n1", msgs }]);
    assert.deepStrictEqual(h.refused, []);
  });

  it("refuses garbage with 400", async () => {
    const res = await post(h, MESSAGES_PATH, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Malformed/);
    assert.deepStrictEqual(h.received, []);
  });

  it("refuses an oversized body with 413, by Content-Length and while streaming", async () => {
    const big = encodeMessages([appendMessage("n1", "n2", 0, 1, 5000)]);
    assert.equal((await post(h, MESSAGES_PATH, big)).status, 413);
    // A streamed body without Content-Length is cut off at the limit.
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 10; i++) ctl.enqueue(new Uint8Array(1000));
        ctl.close();
      },
    });
    const headers = signRequest({ secret: SECRET, clusterId: "c1", from: "n1", to: "n2", method: "POST", path: MESSAGES_PATH, body: new Uint8Array(0), nowMs: Date.now(), nonce: nonces.next() });
    const res = await h.app.request(MESSAGES_PATH, { method: "POST", body: stream, headers, duplex: "half" } as RequestInit);
    assert.equal(res.status, 413);
    assert.deepStrictEqual(h.received, []);
    assert.deepStrictEqual(h.refused.map((r) => r.status), [413, 413]);
  });

  it("refuses a wrong cluster with 403 and a wrong secret with 401, never calling onMessages", async () => {
    const body = encodeMessages([hb]);
    assert.equal((await post(h, MESSAGES_PATH, body, { clusterId: "c2" })).status, 403);
    assert.equal((await post(h, MESSAGES_PATH, body, { secret: new TextEncoder().encode("nope") })).status, 401);
    assert.equal((await post(h, MESSAGES_PATH, body, { secret: null })).status, 401);
    assert.deepStrictEqual(h.received, []);
    assert.deepStrictEqual(h.refused.map((r) => r.status), [403, 401, 401]);
  });

  it("refuses a replayed request with 401", async () => {
    const body = encodeMessages([hb]);
    const headers = signRequest({ secret: SECRET, clusterId: "c1", from: "n1", to: "n2", method: "POST", path: MESSAGES_PATH, body, nowMs: Date.now(), nonce: nonces.next() });
    assert.equal((await h.app.request(MESSAGES_PATH, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers })).status, 204);
    assert.equal((await h.app.request(MESSAGES_PATH, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers })).status, 401);
    assert.equal(h.received.length, 1);
  });

  it("refuses messages whose from or to disagree with the authenticated request, and a bare MsgSnap", async () => {
    assert.equal((await post(h, MESSAGES_PATH, encodeMessages([{ ...hb, from: "n3" }]))).status, 400);
    assert.equal((await post(h, MESSAGES_PATH, encodeMessages([{ ...hb, to: "n3" }]))).status, 400);
    assert.equal((await post(h, MESSAGES_PATH, encodeMessages([hb]), { to: "n3" })).status, 421);
    const snap: Message = { type: "MsgSnap", from: "n1", to: "n2", term: 3, snapshot: { index: 1, term: 1, membership: [{ id: "n1", url: "", voter: true }] } };
    assert.equal((await post(h, MESSAGES_PATH, encodeMessages([snap]))).status, 400);
    assert.deepStrictEqual(h.received, []);
  });

  it("without a secret accepts the right cluster and refuses another with 403", async () => {
    const open = harness(null);
    const body = encodeMessages([hb]);
    assert.equal((await post(open, MESSAGES_PATH, body, { secret: null })).status, 204);
    assert.equal((await post(open, MESSAGES_PATH, body, { secret: null, clusterId: "c2" })).status, 403);
    assert.equal(open.received.length, 1);
  });

  it("answers 500 (and reports it) when onMessages throws, and keeps serving", async () => {
    let fail = true;
    const refused: RefusedRequest[] = [];
    const app = peerRoutes({
      clusterId: "c1", nodeId: "n2", secret: null, maxBodyBytes: 4096, snapshotSink: new MemorySnapshotSink(),
      onMessages: () => {
        if (fail) throw new Error("node is closing");
      },
      onRefused: (r) => refused.push(r),
    });
    const send = (): Promise<Response> => post({ app } as Harness, MESSAGES_PATH, encodeMessages([hb]), { secret: null });
    assert.equal((await send()).status, 500);
    fail = false;
    assert.equal((await send()).status, 204);
    assert.deepStrictEqual(refused.map((r) => [r.status, r.reason]), [[500, "node is closing"]]);
  });

  it("refuses before reading the body: a bad signature format, a stale timestamp, a refused sender (403, 410), an oversized declared length", async () => {
    const refusedSenders = new Map([["mallory", 403], ["n9", 410]] as const);
    const app = peerRoutes({
      clusterId: "c1", nodeId: "n2", secret: SECRET, maxBodyBytes: 4096, snapshotSink: new MemorySnapshotSink(),
      onMessages: () => {},
      admitSender: (from) => {
        const status = refusedSenders.get(from as "mallory" | "n9");
        return status === undefined ? null : { status, reason: `${from} may not send` };
      },
    });
    /** A body that records whether the server pulled any of it. */
    const watched = () => {
      const w = { pulled: false, body: null as unknown as ReadableStream<Uint8Array> };
      w.body = new ReadableStream<Uint8Array>({
        pull(ctl) {
          w.pulled = true;
          ctl.enqueue(new Uint8Array(100));
          ctl.close();
        },
      }, { highWaterMark: 0 });
      return w;
    };
    const send = async (headers: Record<string, string>) => {
      const w = watched();
      const res = await app.request(MESSAGES_PATH, { method: "POST", body: w.body, headers, duplex: "half" } as RequestInit);
      return { status: res.status, pulled: w.pulled, close: res.headers.get("connection") };
    };
    const signed = (o: { from?: string; nowMs?: number } = {}) =>
      signRequest({ secret: SECRET, clusterId: "c1", from: o.from ?? "n1", to: "n2", method: "POST", path: MESSAGES_PATH, body: new Uint8Array(100), nowMs: o.nowMs ?? Date.now(), nonce: nonces.next() });
    for (const [what, headers, want] of [
      ["a malformed signature", { ...signed(), "x-raft-sig": "zz" }, 401],
      ["a stale timestamp", signed({ nowMs: Date.now() - 60_000 }), 401],
      ["a stranger", signed({ from: "mallory" }), 403],
      ["a removed member", signed({ from: "n9" }), 410],
      ["a declared length over the limit", { ...signed(), "content-length": "1000000" }, 413],
      ["a sender id with a newline", { ...signed(), "x-raft-from": "n1%0Aforged" }, 401],
    ] as const) {
      const r = await send(headers);
      assert.equal(r.status, want, what);
      assert.equal(r.pulled, false, `${what}: the body was not read`);
      assert.equal(r.close, "close", `${what}: the connection is closed after the answer`);
    }
    // The same request from a member passes the head checks and its body is read: authenticated, then refused as malformed.
    const ok = await send(signed());
    assert.equal(ok.pulled, true);
    assert.equal(ok.status, 400);
  });

  it("500 replies name no file path; reasons are escaped before they reach the log", async () => {
    const refused: RefusedRequest[] = [];
    const app = peerRoutes({
      clusterId: "c1", nodeId: "n2", secret: null, maxBodyBytes: 4096, snapshotSink: new MemorySnapshotSink(),
      onMessages: () => {
        throw new Error("Storage failed: open(replace) on /var/lib/raft/n2/snapshots/x.tmp: EMFILE\nFATAL: forged");
      },
      onRefused: (r) => refused.push(r),
    });
    const res = await post({ app } as Harness, MESSAGES_PATH, encodeMessages([hb]), { secret: null });
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.doesNotMatch(text, /\/var\/lib/);
    assert.match(text, /x\.tmp/);
    assert.equal(refused.length, 1);
    assert.doesNotMatch(refused[0]!.reason, /\n/);
    assert.match(refused[0]!.reason, /\/var\/lib\/raft/, "the log keeps the full path");
  });

  describe("snapshot upload", () => {
    const snap: MsgSnap = { type: "MsgSnap", from: "n1", to: "n2", term: 3, snapshot: { index: 100, term: 3, membership: [{ id: "n1", url: "http://a", voter: true }] } };
    const id = "n1-3-100";
    const data = patternBytes(3000);
    const chunk = (off: number, len: number): Promise<Response> => post(h, `${SNAPSHOT_CHUNK_PATH}?id=${id}&offset=${off}`, data.subarray(off, off + len));
    const begin = (): Promise<Response> => post(h, `${SNAPSHOT_BEGIN_PATH}?id=${id}&bytes=${data.length}`, encodeMessages([snap]));

    it("is uploaded in chunks, interrupted, and resumed from the receiver's offset", async () => {
      let res = await begin();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get(HEADER_SNAPSHOT_OFFSET), "0");
      res = await chunk(0, 1000);
      assert.equal(res.headers.get(HEADER_SNAPSHOT_OFFSET), "1000");
      res = await chunk(1000, 1000);
      assert.equal(res.headers.get(HEADER_SNAPSHOT_OFFSET), "2000");
      // The sender "crashes" and, restarted, re-begins: the receiver says where it stopped.
      res = await begin();
      assert.equal(res.status, 200);
      const held = Number(res.headers.get(HEADER_SNAPSHOT_OFFSET));
      assert.equal(held, 2000);
      // A chunk at the wrong offset is refused with the right one.
      res = await chunk(1000, 1000);
      assert.equal(res.status, 409);
      assert.equal(res.headers.get(HEADER_SNAPSHOT_OFFSET), "2000");
      // Finishing early is refused too.
      assert.equal((await post(h, `${SNAPSHOT_FINISH_PATH}?id=${id}&offset=3000`, new Uint8Array(0))).status, 409);
      res = await chunk(held, 1000);
      assert.equal(res.headers.get(HEADER_SNAPSHOT_OFFSET), "3000");
      res = await post(h, `${SNAPSHOT_FINISH_PATH}?id=${id}&offset=3000`, new Uint8Array(0));
      assert.equal(res.status, 204);
      assert.equal(h.sink.finished.length, 1);
      assert.deepStrictEqual(h.sink.finished[0]!.bytes, data);
      assert.deepStrictEqual(h.sink.finished[0]!.msg, snap);
      assert.deepStrictEqual(h.sink.writes, [1000, 1000, 1000]);
      assert.deepStrictEqual(h.received, []);
    });

    it("refuses chunks of unknown transfers (404), oversized chunks (413) and bad ids (400)", async () => {
      assert.equal((await chunk(0, 100)).status, 404);
      await begin();
      assert.equal((await chunk(0, 1025)).status, 413);
      assert.equal((await post(h, `${SNAPSHOT_CHUNK_PATH}?id=../etc&offset=0`, data.subarray(0, 10))).status, 400);
      assert.equal((await post(h, `${SNAPSHOT_CHUNK_PATH}?id=${id}&offset=-1`, data.subarray(0, 10))).status, 400);
      assert.equal((await post(h, `${SNAPSHOT_BEGIN_PATH}?id=${id}&bytes=10`, encodeMessages([hb]))).status, 400);
      assert.equal((await post(h, `${SNAPSHOT_BEGIN_PATH}?id=${id}`, encodeMessages([snap]))).status, 400, "begin without its declared size");
      assert.equal((await post(h, `${SNAPSHOT_CHUNK_PATH}?id=${id}&offset=0`, data.subarray(0, 10), { clusterId: "c2" })).status, 403);
      assert.deepStrictEqual(h.sink.writes, []);
    });

    it("refuses a second request for a transfer while one is in progress (409)", async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      let entered: () => void = () => {};
      const inWrite = new Promise<void>((r) => (entered = r));
      const sink = new MemorySnapshotSink();
      const write = sink.write.bind(sink);
      sink.write = async (...args) => {
        entered();
        await gate;
        return write(...args);
      };
      h = { ...h, app: peerRoutes({ clusterId: "c1", nodeId: "n2", secret: SECRET, maxBodyBytes: 4096, onMessages: () => {}, snapshotSink: sink }), sink };
      await begin();
      const first = chunk(0, 100);
      await inWrite; // the first request is now inside the sink
      const second = await chunk(0, 100);
      assert.equal(second.status, 409);
      release();
      assert.equal((await first).status, 200);
      assert.deepStrictEqual(sink.writes, [100]);
    });
  });
});
