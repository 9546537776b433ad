/**
 * Replies in the response of the request they answer (reply-slots.ts):
 * `ReplySlots` on its own, then a `PeerClient` against real peer routes on
 * this runtime's server, and clients handed forged or malformed replies.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import type { HttpClient, HttpServer } from "../../adapters/types.ts";
import type { Message } from "../../src/raft/types.ts";
import { HEADER_NONCE, signReply } from "../../src/transport/auth.ts";
import { encodeMessages } from "../../src/transport/codec.ts";
import { PeerClient } from "../../src/transport/peer-client.ts";
import { HEADER_REPLY_WAIT, REPLY_HOLDS_PER_SENDER_MAX, ReplySlots, type ReplyTimers } from "../../src/transport/reply-slots.ts";
import { MESSAGES_PATH, peerRoutes } from "../../src/transport/routes.ts";
import { waitFor } from "../helpers/wait.ts";
import { MemorySnapshotSink } from "./_sink.ts";

const SECRET = new TextEncoder().encode("reply test secret");


/** Timers that fire only when the test says so. */
class ManualTimers implements ReplyTimers {
  #next = 1;
  readonly pending = new Map<number, () => void>();
  setTimeout(fn: () => void, _ms: number): ReturnType<typeof setTimeout> {
    const id = this.#next++;
    this.pending.set(id, fn);
    return id as unknown as ReturnType<typeof setTimeout>;
  }
  clearTimeout(t: ReturnType<typeof setTimeout>): void {
    this.pending.delete(t as unknown as number);
  }
  fireAll(): void {
    const fns = [...this.pending.values()];
    this.pending.clear();
    for (const f of fns) f();
  }
}

const appResp = (from: string, to: string, index: number): Message => ({ type: "MsgAppResp", from, to, term: 2, success: true, matchIndex: index, conflictTerm: 0, conflictIndex: 0, lastLogIndex: index });
const heartbeat = (from: string, to: string): Message => ({ type: "MsgHeartbeat", from, to, term: 2, leaderCommit: 0, readContext: 0 });
const append = (from: string, to: string, index: number): Message => ({
  type: "MsgApp", from, to, term: 2, prevLogIndex: index - 1, prevLogTerm: 2, leaderCommit: 0,
  entries: [{ index, term: 2, type: "normal", data: new Uint8Array([index & 0xff]) }],
});

describe("ReplySlots", () => {
  it("take() puts the replies into the oldest held response and returns the rest", async () => {
    const t = new ManualTimers();
    const slots = new ReplySlots(t);
    const first = slots.hold("n1", 100);
    const second = slots.hold("n1", 100);
    const out = [appResp("n2", "n1", 5), append("n2", "n1", 9), appResp("n2", "n1", 6)];
    const rest = slots.take("n1", out);
    assert.deepEqual(rest, [out[1]]);
    assert.deepEqual(await first, [out[0], out[2]]);
    assert.equal(slots.held("n1"), 1);
    assert.deepEqual(slots.take("n1", [out[1]!]), [out[1]], "a message that is not a reply never rides in a response");
    t.fireAll();
    assert.deepEqual(await second, [], "a hold that got nothing resolves empty at its deadline");
    assert.equal(slots.held("n1"), 0);
    assert.deepEqual(slots.take("n1", out), out, "nothing held: everything goes as a request");
  });

  it("holds per sender: replies to one member never go into another's response", async () => {
    const slots = new ReplySlots(new ManualTimers());
    const forN3 = slots.hold("n3", 100);
    const m = appResp("n2", "n1", 1);
    assert.deepEqual(slots.take("n1", [m]), [m]);
    assert.equal(slots.held("n3"), 1);
    slots.close();
    assert.deepEqual(await forN3, []);
  });

  it(`answers at once past ${REPLY_HOLDS_PER_SENDER_MAX} held responses of one sender, and after close()`, async () => {
    const t = new ManualTimers();
    const slots = new ReplySlots(t);
    const holds = Array.from({ length: REPLY_HOLDS_PER_SENDER_MAX }, () => slots.hold("n1", 100));
    assert.deepEqual(await slots.hold("n1", 100), []);
    assert.equal(slots.held("n1"), REPLY_HOLDS_PER_SENDER_MAX);
    slots.close();
    for (const h of holds) assert.deepEqual(await h, []);
    assert.equal(t.pending.size, 0, "close() clears every timer");
    assert.deepEqual(await slots.hold("n1", 100), []);
    assert.equal(slots.held("n1"), 0);
  });
});

for (const secret of [SECRET, null]) {
  describe(`replies in responses over a real server (${runtime.name}, ${secret === null ? "no secret" : "signed"})`, () => {
    let server: HttpServer;
    let http: HttpClient;
    const slots = new ReplySlots();
    const stepped: Message[] = [];
    let posts = 0;
    let asked = 0;

    before(async () => {
      const routes = peerRoutes({
        clusterId: "c1", nodeId: "n2", secret, maxBodyBytes: 1 << 20, snapshotSink: new MemorySnapshotSink(), replySlots: slots,
        onMessages: (_from, batch) => {
          // As a follower's driver does: the replies leave after a "fsync", on a later turn.
          for (const m of batch) stepped.push(m);
          setTimeout(() => {
            const replies = batch.filter((m) => m.type === "MsgApp").map((m) => appResp("n2", "n1", (m as { prevLogIndex: number }).prevLogIndex + 1));
            const rest = slots.take("n1", replies);
            assert.equal(rest.length, 0, "every reply found a held response");
          }, 2);
        },
      });
      const app = new Hono();
      app.use("*", async (c, next) => {
        posts++;
        if (c.req.header(HEADER_REPLY_WAIT) !== undefined) asked++;
        await next();
      });
      app.route("/", routes);
      server = await runtime.serve(app, "127.0.0.1", 0);
      http = runtime.httpClient();
    });
    after(async () => {
      slots.close();
      http.close();
      await server.close();
    });

    it("an append's reply comes back in its response: one request per round trip", async () => {
      const replies: Message[] = [];
      const unreachable: string[] = [];
      const c = new PeerClient({
        peerId: "n2", peerUrl: `http://127.0.0.1:${server.port}`, clusterId: "c1", nodeId: "n1", secret, http,
        requestTimeoutMs: 10_000, onUnreachable: (_id, reason) => unreachable.push(reason), onReplies: (msgs) => replies.push(...msgs),
      });
      for (let i = 1; i <= 50; i++) {
        c.send([append("n1", "n2", i)]);
        await waitFor(() => `${replies.length} replies after ${i} appends; ${unreachable.join("; ")}`, () => replies.length === i || unreachable.length > 0, 30_000);
      }
      assert.deepEqual(unreachable, []);
      assert.deepEqual(replies.map((m) => (m as { matchIndex: number }).matchIndex), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.equal(posts, 50, "no request of its own for any reply");
      assert.equal(asked, 50);
      assert.equal(c.stats().requestsFailed, 0);
    });

    it("a batch without anything to answer is not held, and a hold that gets nothing is answered 204", async () => {
      const before = posts;
      const askedBefore = asked;
      const unreachable: string[] = [];
      const c = new PeerClient({
        peerId: "n2", peerUrl: `http://127.0.0.1:${server.port}`, clusterId: "c1", nodeId: "n1", secret, http,
        requestTimeoutMs: 10_000, replyWaitMs: 20, onUnreachable: (_id, reason) => unreachable.push(reason), onReplies: () => {},
      });
      c.send([appResp("n1", "n2", 3)]);
      await waitFor(() => `stats ${JSON.stringify(c.stats())}`, () => c.stats().inflight === 0 && posts === before + 1, 30_000);
      assert.equal(asked, askedBefore, "a reply asks for no replies");
      c.send([heartbeat("n1", "n2")]);
      await waitFor(() => `stats ${JSON.stringify(c.stats())}`, () => c.stats().inflight === 0 && posts === before + 2, 30_000);
      assert.equal(asked - askedBefore, 1, "only the heartbeat asked for replies");
      assert.equal(c.stats().requestsFailed, 0);
      assert.deepEqual(unreachable, []);
    });
  });
}

describe(`forged or malformed replies are refused, never stepped (${runtime.name})`, () => {
  let server: HttpServer;
  let http: HttpClient;
  /** What the fake peer answers next: messages, and whether to sign them with the right secret. */
  let answer: { msgs: Message[]; sign: "right" | "wrong" | "none" } = { msgs: [], sign: "right" };

  before(async () => {
    const app = new Hono();
    app.post(MESSAGES_PATH, (c) => {
      const body = encodeMessages(answer.msgs);
      const key = answer.sign === "wrong" ? new TextEncoder().encode("not the secret") : SECRET;
      const sig = answer.sign === "none" ? {} : signReply({ secret: key, clusterId: "c1", from: "n2", to: "n1", path: MESSAGES_PATH, requestNonce: c.req.header(HEADER_NONCE) ?? "", body });
      return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers: { "content-type": "application/octet-stream", ...sig } });
    });
    server = await runtime.serve(app, "127.0.0.1", 0);
    http = runtime.httpClient();
  });
  after(async () => {
    http.close();
    await server.close();
  });

  const cases: { name: string; answer: typeof answer; reason: RegExp }[] = [
    { name: "signed with another secret", answer: { msgs: [appResp("n2", "n1", 1)], sign: "wrong" }, reason: /bad signature on a reply/ },
    { name: "unsigned", answer: { msgs: [appResp("n2", "n1", 1)], sign: "none" }, reason: /missing or malformed x-raft-sig/ },
    { name: "from another member", answer: { msgs: [appResp("n3", "n1", 1)], sign: "right" }, reason: /a reply from n3 to n1/ },
    { name: "addressed to another member", answer: { msgs: [appResp("n2", "n3", 1)], sign: "right" }, reason: /a reply from n2 to n3/ },
    { name: "an append, not a reply", answer: { msgs: [append("n2", "n1", 1)], sign: "right" }, reason: /a MsgApp in a response/ },
  ];
  /** Sends one heartbeat to the server on `port`; resolves with the first refusal, once it has come, and the replies handed on. */
  const heartbeatRefused = async (port: number, secret: Uint8Array | null): Promise<{ refusal: string; replies: Message[] }> => {
    const replies: Message[] = [];
    const unreachable: string[] = [];
    const c = new PeerClient({
      peerId: "n2", peerUrl: `http://127.0.0.1:${port}`, clusterId: "c1", nodeId: "n1", secret, http,
      requestTimeoutMs: 10_000, onUnreachable: (_id, reason) => unreachable.push(reason), onReplies: (msgs) => replies.push(...msgs),
    });
    c.send([heartbeat("n1", "n2")]);
    await waitFor(() => `no refusal; replies ${JSON.stringify(replies)}`, () => unreachable.length > 0, 30_000);
    return { refusal: unreachable[0]!, replies };
  };

  for (const k of cases) {
    it(`a reply ${k.name}`, async () => {
      answer = k.answer;
      const { refusal, replies } = await heartbeatRefused(server.port, SECRET);
      assert.match(refusal, k.reason);
      assert.deepEqual(replies, []);
    });
  }

  it("a body that does not decode", async () => {
    const app = new Hono();
    app.post(MESSAGES_PATH, () => new Response(new Uint8Array([1, 2, 3]), { status: 200 }));
    const bad = await runtime.serve(app, "127.0.0.1", 0);
    try {
      const { refusal, replies } = await heartbeatRefused(bad.port, null);
      assert.match(refusal, /malformed replies/);
      assert.deepEqual(replies, []);
    } finally {
      await bad.close();
    }
  });
});
