/**
 * Measures PeerClient -> peer routes over a real loopback server on this
 * runtime: AppendEntries of 64 × 100-byte entries, 8 requests in flight,
 * with and without a cluster secret. Not a test: run it by hand,
 *   npx tsx tests/transport/bench-peer.ts
 *   npx deno run -A tests/transport/bench-peer.ts
 *   npx bun tests/transport/bench-peer.ts
 *
 * @module
 */
import { runtime } from "../../adapters/mod.ts";
import type { Message } from "../../src/raft/types.ts";
import { PeerClient } from "../../src/transport/peer-client.ts";
import { peerRoutes } from "../../src/transport/routes.ts";
import { appendMessage } from "./_messages.ts";
import { MemorySnapshotSink } from "./_sink.ts";

const TOTAL = 20_000;

async function run(secret: Uint8Array | null): Promise<void> {
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const app = peerRoutes({
    clusterId: "c1", nodeId: "n2", secret, maxBodyBytes: 64 << 20, snapshotSink: new MemorySnapshotSink(),
    onMessages: (_f, msgs) => {
      received += msgs.length;
      if (received >= TOTAL) done();
    },
  });
  const server = await runtime.serve(app, "127.0.0.1", 0);
  const http = runtime.httpClient();
  const c = new PeerClient({
    peerId: "n2", peerUrl: `http://127.0.0.1:${server.port}`, clusterId: "c1", nodeId: "n1", secret, http,
    requestTimeoutMs: 10_000, maxInflightRequests: 8, maxQueuedMessages: TOTAL, maxBatchBytes: 256 * 1024,
    onUnreachable: (_id, reason) => console.error("unreachable:", reason),
  });
  const msgs: Message[] = [];
  for (let i = 0; i < TOTAL; i++) msgs.push(appendMessage("n1", "n2", i * 64, 64, 100));
  const t0 = performance.now();
  // 100 turns of 200 messages: the client batches and pipelines them.
  for (let i = 0; i < TOTAL; i += 200) {
    c.send(msgs.slice(i, i + 200));
    await new Promise<void>((r) => setTimeout(r, 0));
  }
  await finished;
  const s = (performance.now() - t0) / 1000;
  const st = c.stats();
  console.log(`${runtime.name} secret=${secret !== null}: ${(TOTAL / s).toFixed(0)} msgs/s, ${((TOTAL * 64 * 100) / s / 1e6).toFixed(0)} MB/s of entry data, ${(TOTAL * 64 / s / 1e6).toFixed(2)} M entries/s, ${st.requestsSent} requests, peak ${st.inflightPeak} in flight`);
  c.close();
  http.close();
  await server.close();
}

await run(null);
await run(new TextEncoder().encode("bench secret"));
