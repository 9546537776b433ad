/**
 * The turn gate of the member servers (adapters/shared/turn-gate.ts;
 * `turnGate` for node:http, `fetchTurnGate` for Deno.serve and Bun.serve):
 * at most so many client requests reach the app per event-loop turn, peer
 * routes never wait, the rest are served in arrival order on later turns,
 * and one whose client left while it waited is never served.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type * as http from "node:http";
import { setImmediate } from "node:timers";
import { fetchTurnGate, turnGate } from "../../adapters/shared/turn-gate.ts";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function request(url: string, destroyed = false): http.IncomingMessage {
  return { url, socket: { destroyed } } as unknown as http.IncomingMessage;
}
const RES = {} as http.ServerResponse;

describe("turnGate", () => {
  it("hands at most perTurn client requests to the app per turn, in arrival order, and peer routes at once", async () => {
    const served: string[] = [];
    const gate = turnGate((req) => served.push(req.url!), 4);
    for (let i = 0; i < 10; i++) gate(request(`/kv/${i}`), RES);
    assert.deepEqual(served, ["/kv/0", "/kv/1", "/kv/2", "/kv/3"]);
    gate(request("/raft/v1/messages"), RES);
    assert.deepEqual(served.slice(4), ["/raft/v1/messages"], "a peer request waits behind no client");
    // The next turn serves the next four; a client arriving while others wait queues behind them.
    await nextTurn();
    assert.deepEqual(served.slice(5), ["/kv/4", "/kv/5", "/kv/6", "/kv/7"]);
    gate(request("/kv/late"), RES);
    assert.equal(served.length, 9, "a request arriving while others wait is not served before them");
    await nextTurn();
    assert.deepEqual(served.slice(9), ["/kv/8", "/kv/9", "/kv/late"]);
    await nextTurn();
    gate(request("/kv/fresh"), RES);
    assert.deepEqual(served.slice(12), ["/kv/fresh"], "with nothing waiting a request is served at once");
  });

  it("one request a turn is never held, and a burst after them still gets at most perTurn in its turn", async () => {
    const served: string[] = [];
    const gate = turnGate((req) => served.push(req.url!), 8);
    for (let i = 0; i < 40; i++) {
      gate(request(`/kv/${i}`), RES);
      assert.equal(served.length, i + 1, `request ${i}, alone in its turn, was held`);
      await nextTurn();
    }
    for (let i = 0; i < 20; i++) gate(request(`/kv/burst-${i}`), RES);
    const first = served.length - 40;
    assert.ok(first >= 1 && first <= 8, `${first} of a burst of 20 served in its turn`);
    while (served.length < 60) await nextTurn();
  });

  it("drops a waiting request whose client has gone, without spending a slot on it", async () => {
    const served: string[] = [];
    const gate = turnGate((req) => served.push(req.url!), 2);
    gate(request("/kv/a"), RES);
    gate(request("/kv/b"), RES);
    gate(request("/kv/gone", true), RES);
    gate(request("/kv/c"), RES);
    gate(request("/kv/d"), RES);
    await nextTurn();
    assert.deepEqual(served, ["/kv/a", "/kv/b", "/kv/c", "/kv/d"]);
  });

  it("fetchTurnGate (Deno.serve, Bun.serve): the same order, peer routes at once, a gone client answered without the app", async () => {
    const served: string[] = [];
    const gate = fetchTurnGate((req: Request) => {
      served.push(new URL(req.url).pathname);
      return new Response("ok");
    }, 2);
    const gone = new AbortController();
    const answers = [
      gate(new Request("http://127.0.0.1:1/kv/a")),
      gate(new Request("http://127.0.0.1:1/kv/b")),
      gate(new Request("http://127.0.0.1:1/kv/gone", { signal: gone.signal })),
      gate(new Request("http://127.0.0.1:1/kv/c")),
    ];
    gate(new Request("http://127.0.0.1:1/raft/v1/messages"));
    gone.abort();
    assert.deepEqual(served, ["/kv/a", "/kv/b", "/raft/v1/messages"]);
    const statuses = (await Promise.all(answers)).map((r) => r.status);
    assert.deepEqual(served, ["/kv/a", "/kv/b", "/raft/v1/messages", "/kv/c"]);
    assert.deepEqual(statuses, [200, 200, 499, 200]);
  });
});
