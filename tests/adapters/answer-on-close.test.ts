/**
 * Tests of `answerableOnClose` (adapters/shared/answer-on-close.ts): the
 * wrapper the Deno server puts around its handler so that close() answers
 * what is still pending, and forgets every call once it settled.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answerableOnClose } from "../../adapters/shared/answer-on-close.ts";

const req = (path: string) => new Request(`http://127.0.0.1${path}`);

describe("answerableOnClose()", () => {
  it("passes answers through and holds nothing once they settled, thrown or rejected ones too", async () => {
    const { handle, pendingCount } = answerableOnClose((r) => {
      const p = new URL(r.url).pathname;
      if (p === "/throw") throw new Error("sync failure");
      if (p === "/reject") return Promise.reject(new Error("async failure"));
      return p === "/sync" ? new Response("sync") : Promise.resolve(new Response("async"));
    });
    for (let i = 0; i < 1000; i++) {
      assert.equal(await (await handle(req(i % 2 === 0 ? "/sync" : "/async"))).text(), i % 2 === 0 ? "sync" : "async");
    }
    await assert.rejects(handle(req("/throw")), /sync failure/);
    await assert.rejects(handle(req("/reject")), /async failure/);
    assert.equal(pendingCount(), 0, "a settled call must not stay referenced (that was a leak of every answer)");
  });

  it("answers every pending call with its own 504 on close, and later calls at once", async () => {
    const { handle, answerPending, pendingCount } = answerableOnClose(() => new Promise<Response>(() => {}));
    const held = [handle(req("/a")), handle(req("/b"))];
    assert.equal(pendingCount(), 2);
    answerPending();
    const answers = await Promise.all(held);
    assert.deepEqual(answers.map((r) => r.status), [504, 504]);
    assert.notEqual(answers[0], answers[1], "each its own Response (a body can be read once)");
    assert.equal(((await answers[0]!.json()) as { outcome: string }).outcome, "unknown");
    assert.equal((await handle(req("/c"))).status, 504);
    assert.equal(pendingCount(), 0);
  });
});
