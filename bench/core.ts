/**
 * Throughput of the pure Raft core: three `Raft` instances in one process
 * over `MemoryLog`, messages handed over directly, every Ready persisted
 * and advanced as the contract says. Proposals go in batches
 * (`proposeBatch`) of 64-byte entries; the figure is entries committed
 * and applied on the leader per second.
 *
 * Run: `npx tsx bench/core.ts [batch] [seconds]`
 *
 * @module
 */
import { MemoryLog, Raft } from "../src/raft/raft.ts";
import type { Entry, Member, Message, RaftConfig } from "../src/raft/types.ts";

interface BenchNode {
  raft: Raft;
  log: MemoryLog;
  applied: number;
}

/** Runs the benchmark and prints the figure. @returns entries committed per second */
export async function main(batchSize = 256, seconds = 3): Promise<number> {
  const ids = ["n1", "n2", "n3"];
  const members: Member[] = ids.map((id) => ({ id, url: `mem://${id}`, voter: true }));
  const nodes = new Map<string, BenchNode>();
  for (const id of ids) {
    const log = new MemoryLog({ index: 0, term: 0, membership: members });
    const config: RaftConfig = {
      id, electionTicks: 10, heartbeatTicks: 1, randomSeed: 7, preVote: true, checkQuorum: true,
      maxInflightMsgs: 256, maxInflightBytes: 64 << 20, maxMsgBytes: 1 << 20, catchUpRoundsMax: 10,
    };
    const raft = new Raft({ config, log, hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: log.snapshot, configs: [] });
    nodes.set(id, { raft, log, applied: 0 });
  }
  let queue: Message[] = [];
  const pump = (): void => {
    for (let round = 0; round < 1_000_000; round++) {
      let moved = false;
      for (const n of nodes.values()) {
        while (n.raft.hasReady()) {
          const rd = n.raft.ready();
          for (const m of rd.messages) queue.push(m);
          if (rd.snapshot !== null) n.log.reset(rd.snapshot);
          if (rd.entries.length > 0) n.log.append(rd.entries);
          for (const m of rd.persistedMessages) queue.push(m);
          if (rd.committedEntries.length > 0) n.applied = (rd.committedEntries[rd.committedEntries.length - 1] as Entry).index;
          n.raft.advance(rd);
          moved = true;
        }
      }
      if (queue.length > 0) {
        const batch = queue;
        queue = [];
        for (const m of batch) nodes.get(m.to)?.raft.step(m);
        moved = true;
      }
      if (!moved) return;
    }
    throw new Error("bench: cluster did not go quiet");
  };

  const leaderNode = nodes.get("n1") as BenchNode;
  leaderNode.raft.campaign();
  pump();
  if (leaderNode.raft.status().role !== "leader") throw new Error("bench: n1 did not become leader");

  const payload = new Uint8Array(64).fill(42);
  const batch = new Array<Uint8Array>(batchSize).fill(payload);
  const pipelined = 4; // batches proposed before the cluster is drained
  const run = (deadlineMs: number): { entries: number; ms: number } => {
    const start = performance.now();
    const first = leaderNode.applied;
    let now = start;
    let rounds = 0;
    while (now < deadlineMs) {
      for (let i = 0; i < pipelined; i++) leaderNode.raft.proposeBatch(batch);
      pump();
      if (++rounds % 16 === 0) {
        // Keep memory flat: compact every log below what everyone applied.
        for (const n of nodes.values()) {
          const upTo = Math.min(n.applied, n.raft.compactionFloor() - 1);
          if (upTo > n.log.firstIndex() + 100_000) n.log.compact(upTo);
        }
        now = performance.now();
      }
    }
    return { entries: leaderNode.applied - first, ms: performance.now() - start };
  };
  run(performance.now() + 500); // warm-up
  const { entries, ms } = run(performance.now() + seconds * 1000);
  for (const n of nodes.values()) {
    if (n.applied !== leaderNode.applied) throw new Error(`bench: ${n.raft.id} applied ${n.applied}, leader ${leaderNode.applied}`);
  }
  const perSec = Math.round((entries / ms) * 1000);
  console.log(`core: ${entries} entries of 64 B committed in ${ms.toFixed(0)} ms with batches of ${batchSize}: ${perSec.toLocaleString("en-US")} entries/s (3 members, one process)`);
  return perSec;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("core.ts")) {
  const batch = Number(process.argv[2] ?? 256);
  const seconds = Number(process.argv[3] ?? 3);
  await main(batch, seconds);
}
