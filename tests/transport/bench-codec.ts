/**
 * Measures the peer message codec (and the request MAC) on an AppendEntries
 * with 64 entries of 100 bytes. Not a test: run it by hand on any runtime,
 *   npx tsx tests/transport/bench-codec.ts
 *   npx deno run -A tests/transport/bench-codec.ts
 *   npx bun tests/transport/bench-codec.ts
 *
 * @module
 */
import { signRequest } from "../../src/transport/auth.ts";
import { decodeMessages, encodeMessages } from "../../src/transport/codec.ts";
import type { Message } from "../../src/raft/types.ts";
import { appendMessage } from "./_messages.ts";

const msg: Message = appendMessage("n1", "n2", 1_000_000, 64, 100);
const body = encodeMessages([msg]);
const secret = new TextEncoder().encode("bench secret");

function measure(name: string, iterations: number, fn: () => void): void {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(); // warm up
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const s = (performance.now() - t0) / 1000;
  const mb = (body.length * iterations) / s / 1e6;
  console.log(`${name.padEnd(8)} ${(iterations / s).toFixed(0).padStart(8)} msgs/s  ${mb.toFixed(0).padStart(5)} MB/s  (${(iterations * 64 / s / 1e6).toFixed(2)} M entries/s)`);
}

console.log(`MsgApp with 64 x 100-byte entries: ${body.length} bytes per body`);
let sink = 0;
measure("encode", 100_000, () => {
  sink += encodeMessages([msg]).length;
});
measure("decode", 100_000, () => {
  sink += decodeMessages(body).length;
});
measure("hmac", 20_000, () => {
  sink += signRequest({ secret, clusterId: "c1", from: "n1", to: "n2", method: "POST", path: "/raft/v1/messages", body, nowMs: 1, nonce: "abcdefgh-1" })["x-raft-sig"]!.length;
});
if (sink === 0) console.log("unreachable");
