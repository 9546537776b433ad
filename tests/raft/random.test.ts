/**
 * Randomized schedules on the in-test network: message loss, duplication
 * and reordering, partitions, crashes that lose writes not yet durable,
 * membership changes, transfers, reads and compaction. After every step
 * the safety properties of Figure 3 are checked: Election Safety, State
 * Machine Safety, and Leader Completeness for applied entries. A failure
 * names its seed and step.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RaftError } from "../../src/errors.ts";
import { Prng } from "../../src/raft/prng.ts";
import type { Message, NodeId } from "../../src/raft/types.ts";
import { Net } from "./net.ts";

const SEEDS = 40;
const STEPS = 600;

function runSeed(seed: number): void {
  const rng = new Prng(seed);
  const chance = (p: number): boolean => rng.nextUint32() / 2 ** 32 < p;
  const pick = <T>(xs: readonly T[]): T => xs[rng.intBetween(0, xs.length)] as T;
  const ids = ["n1", "n2", "n3", "n4", "n5"];
  const tun = { preVote: chance(0.5), checkQuorum: chance(0.5), maxMsgBytes: 64, maxInflightMsgs: 4, randomSeed: seed };
  const net = new Net(ids.slice(0, 3), tun);
  const leaders = new Map<number, NodeId>();
  let step = 0;
  let proposals = 0;
  const where = (): string => `seed ${seed}, step ${step} (preVote ${tun.preVote}, checkQuorum ${tun.checkQuorum})`;

  const checkInvariants = (): void => {
    net.checkSafety();
    let maxApplied = 0;
    const appliedTerm = new Map<number, number>();
    for (const n of net.nodes.values()) {
      n.applied.forEach((e) => appliedTerm.set(e.index, e.term));
      maxApplied = Math.max(maxApplied, n.appliedBase + n.applied.length);
    }
    // Leader Completeness binds leaders of terms after the commit; an entry
    // committed in term C left term C durable on a majority, so only a
    // leader of the highest term anywhere is certainly bound.
    let maxTerm = 0;
    for (const n of net.nodes.values()) maxTerm = Math.max(maxTerm, n.hardState.term, n.crashed ? 0 : n.raft.status().term);
    for (const [id, n] of net.nodes) {
      if (n.crashed) continue;
      const st = n.raft.status();
      assert.ok(st.appliedIndex <= st.commitIndex && st.commitIndex <= st.lastIndex, `${where()}: ${id} applied <= committed <= last`);
      if (st.role !== "leader") continue;
      const prev = leaders.get(st.term);
      assert.ok(prev === undefined || prev === id, `${where()}: Election Safety: ${prev} and ${id} both lead term ${st.term}`);
      leaders.set(st.term, id);
      if (st.term < maxTerm) continue;
      assert.ok(st.lastIndex >= maxApplied, `${where()}: Leader Completeness: leader ${id} last ${st.lastIndex} < applied ${maxApplied}`);
      for (let i = Math.max(n.log.firstIndex(), 1); i <= Math.min(st.lastIndex, maxApplied); i++) {
        const t = appliedTerm.get(i);
        const held = n.raft.termAt(i);
        if (t !== undefined && held !== undefined) assert.equal(held, t, `${where()}: Leader Completeness: ${id} holds a different entry at ${i}`);
      }
    }
  };

  const deliverSome = (): void => {
    const q = net.queue;
    net.queue = [];
    const keep: Message[] = [];
    for (const m of q) {
      if (chance(0.2)) keep.push(m); // delayed: reordered behind later messages
      else if (chance(0.05)) continue; // lost
      else {
        if (chance(0.03)) keep.push(m); // duplicated
        net.queue.push(m);
      }
    }
    net.deliver();
    net.queue.push(...keep);
  };

  for (step = 0; step < STEPS; step++) {
    try {
      const live = [...net.nodes.values()].filter((n) => !n.crashed);
      const r = rng.intBetween(0, 100);
      if (r < 40) {
        pick(live).raft.tick();
      } else if (r < 55) {
        const leader = net.leader();
        if (leader !== null) {
          try {
            net.propose(leader, `p${proposals++}`);
          } catch (e) {
            assert.ok(e instanceof RaftError, `${where()}: ${String(e)}`);
          }
        }
      } else if (r < 58) {
        const a = pick(ids.filter((id) => net.nodes.has(id)));
        const b = pick(ids.filter((id) => net.nodes.has(id)));
        if (a !== b) net.cut(a, b);
      } else if (r < 62) {
        net.heal();
      } else if (r < 64) {
        const n = pick(live);
        if (live.length > 2) n.crash();
      } else if (r < 68) {
        const dead = [...net.nodes.values()].filter((n) => n.crashed);
        if (dead.length > 0) pick(dead).restart(chance(0.5));
      } else if (r < 72) {
        const n = pick(live);
        if (!n.autoPersist) n.persist();
        n.autoPersist = chance(0.6);
      } else if (r < 74) {
        const leader = net.leader();
        if (leader !== null) {
          const raft = net.raft(leader);
          const members = raft.status().config.members;
          try {
            if (members.length > 3 && chance(0.5)) raft.removeMember(pick(members).id);
            else {
              const fresh = ids.find((id) => !members.some((m) => m.id === id));
              if (fresh !== undefined) {
                if (!net.nodes.has(fresh)) net.add(fresh, tun);
                raft.addMember(fresh, `http://${fresh}`);
              }
            }
          } catch (e) {
            assert.ok(e instanceof RaftError, `${where()}: ${String(e)}`);
          }
        }
      } else if (r < 75) {
        const leader = net.leader();
        if (leader !== null) {
          try {
            net.raft(leader).transferLeadership(pick(net.raft(leader).status().config.members).id);
          } catch (e) {
            assert.ok(e instanceof RaftError, `${where()}: ${String(e)}`);
          }
        }
      } else if (r < 77) {
        const leader = net.leader();
        if (leader !== null) net.raft(leader).readIndex(step);
      } else if (r < 79) {
        const n = pick(live);
        const upTo = Math.min(n.appliedBase + n.applied.length, n.raft.compactionFloor() - 1) - 2;
        if (upTo > n.log.firstIndex()) n.log.compact(upTo, n.log.term(upTo), n.raft.configAt(upTo).members);
      } else {
        for (const n of live) n.handleReady();
        deliverSome();
      }
      checkInvariants();
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      throw new Error(`${where()}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
  // Liveness smoke check: heal, restart everyone, persist, and a leader appears.
  net.heal();
  for (const n of net.nodes.values()) {
    if (n.crashed) n.restart();
    n.persist();
    n.autoPersist = true;
  }
  net.stabilize();
  for (let i = 0; i < 300 && net.leader() === null; i++) net.tick(1);
  checkInvariants();
  assert.ok(net.leader() !== null, `${where()}: no leader after healing`);
}

describe("randomized schedules", () => {
  it(`keep Election Safety, State Machine Safety and Leader Completeness (${SEEDS} seeds x ${STEPS} steps)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) runSeed(seed);
  });
});
