/**
 * `describeNetworkError()` words a failed request the same on every runtime:
 * the error shapes Node, Bun and Deno produced for the same failures
 * (measured with fetch on each, copied here), and a real refused connection
 * and a real timeout on the runtime these tests run on.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { describeNetworkError } from "../../src/transport/network-error.ts";
import { TimeoutError } from "../../src/errors.ts";
import { freePorts } from "../helpers/ports.ts";

/** An error as a runtime builds it: name, message, code, cause. */
function shaped(name: string, message: string, code?: string, cause?: { message: string; code?: string }): Error {
  const e = new Error(message, cause === undefined ? undefined : { cause: Object.assign(new Error(cause.message), cause.code === undefined ? {} : { code: cause.code }) });
  e.name = name;
  if (code !== undefined) Object.assign(e, { code });
  return e;
}

/** [runtime, failure, the error it gave, the words we say]. */
const SEEN: readonly [string, string, Error, string][] = [
  ["node", "refused", shaped("TypeError", "fetch failed", undefined, { message: "connect ECONNREFUSED 127.0.0.1:17999", code: "ECONNREFUSED" }), "connection refused"],
  ["bun", "refused", shaped("TypeError", "ECONNREFUSED: Unable to connect. Is the computer able to access the url?", "ECONNREFUSED"), "connection refused"],
  ["deno", "refused", shaped("TypeError", "fetch failed", undefined, { message: "error sending request for url (http://127.0.0.1:17999/): client error (Connect): tcp connect error: Connection refused (os error 111)" }), "connection refused"],
  ["node", "reset", shaped("TypeError", "fetch failed", undefined, { message: "other side closed", code: "UND_ERR_SOCKET" }), "connection closed before an answer"],
  ["bun", "reset", shaped("TypeError", "ECONNRESET: The socket connection was closed unexpectedly.", "ECONNRESET"), "connection closed before an answer"],
  ["deno", "reset", shaped("TypeError", "fetch failed", undefined, { message: "client error (SendRequest): connection closed before message completed" }), "connection closed before an answer"],
  ["node", "dns", shaped("TypeError", "fetch failed", undefined, { message: "getaddrinfo ENOTFOUND nonexistent.invalid", code: "ENOTFOUND" }), "host not found"],
  ["bun", "dns", shaped("TypeError", "getaddrinfo ENOTFOUND nonexistent.invalid", "ENOTFOUND"), "host not found"],
  ["deno", "dns", shaped("TypeError", "fetch failed", undefined, { message: "client error (Connect): dns error: failed to lookup address information: Name or service not known" }), "host not found"],
  ["all", "timeout", shaped("TimeoutError", "The operation was aborted due to timeout"), "no answer in time"],
  ["peer client", "timeout", new TimeoutError("GET http://x got no answer within 5000 ms"), "no answer in time"],
];

describe("describeNetworkError()", () => {
  for (const [rt, what, err, words] of SEEN) {
    it(`${rt}'s ${what} error reads "${words}"`, () => assert.equal(describeNetworkError(err), words));
  }

  it("falls back to the most specific message the runtime gave", () => {
    assert.equal(describeNetworkError(shaped("TypeError", "fetch failed", undefined, { message: "certificate has expired" })), "certificate has expired");
    assert.equal(describeNetworkError("just a string"), "just a string");
  });

  it("a refused connection and a request that gets no answer, for real on this runtime", async () => {
    const [port] = await freePorts(1);
    const refused = await fetch(`http://127.0.0.1:${port}/`).then(() => null, (e: unknown) => e);
    assert.equal(describeNetworkError(refused), "connection refused", String(refused));
    // A server that accepts and never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      const { port: silentPort } = silent.address() as net.AddressInfo;
      const late = await fetch(`http://127.0.0.1:${silentPort}/`, { signal: AbortSignal.timeout(200) }).then(() => null, (e: unknown) => e);
      assert.equal(describeNetworkError(late), "no answer in time", String(late));
    } finally {
      silent.close();
    }
  });
});
