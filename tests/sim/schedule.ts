/**
 * What a seed decides once, before the first tick: the cores' tunables,
 * whether state machines persist themselves, and the probabilities of the
 * fault schedule. Drawing them from their own stream keeps seeds varied
 * across the whole space (calm runs, storms, slow flow control, ...).
 *
 * @module
 */
import type { RaftConfig } from "../../src/raft/types.ts";
import { calmFaults, type LinkFaults } from "./network.ts";
import type { Prng } from "./prng.ts";

/** Probabilities per tick of the fault schedule, drawn once per seed. */
export interface Schedule {
  crash: number;
  restart: number;
  partition: number;
  heal: number;
  netChange: number;
  compact: number;
  membership: number;
  transfer: number;
  propose: number;
  read: number;
  /** Probability that a node skips a tick (its clock runs slow). */
  clockSkew: number;
  /** Probability that a crash or an isolation picks the leader. */
  leaderBias: number;
  /**
   * Probability that a newly elected leader is cut off or crashed before
   * (or while) its first AppendEntries spread: leaves durable entries that
   * never replicated, the raw material of the paper's Figure 8.
   */
  leaderTrap: number;
  /** Probability that one fdatasync or directory fsync fails (the member then stops, as it must). */
  syncFail: number;
}

/** Everything a seed draws up front. */
export interface SeedSettings {
  readonly raftConfig: Omit<RaftConfig, "id" | "randomSeed">;
  /** Replicas keep their state machine across restarts (it persists itself) instead of rebuilding it from the snapshot. */
  readonly smPersisted: boolean;
  /** The driver takes a built-in snapshot and compacts once this many bytes were appended. */
  readonly snapshotLogBytes: number;
  readonly plan: Schedule;
}

/** Network profiles the schedule switches between. */
export const netProfiles: readonly LinkFaults[] = [
  calmFaults,
  { dropRate: 0.02, dupRate: 0.02, delayTicksMin: 1, delayTicksMax: 2, longDelayRate: 0.01, longDelayTicksMax: 10 },
  { dropRate: 0.1, dupRate: 0.05, delayTicksMin: 1, delayTicksMax: 4, longDelayRate: 0.05, longDelayTicksMax: 25 },
  { dropRate: 0.3, dupRate: 0.1, delayTicksMin: 1, delayTicksMax: 6, longDelayRate: 0.1, longDelayTicksMax: 40 },
  { dropRate: 0, dupRate: 0.2, delayTicksMin: 1, delayTicksMax: 8, longDelayRate: 0.2, longDelayTicksMax: 30 },
];

/** Draws a seed's settings from `r` (the order of draws is part of every seed's meaning: append, never reorder). */
export function drawSettings(r: Prng): SeedSettings {
  const raftConfig = {
    electionTicks: 10,
    heartbeatTicks: r.range(1, 3),
    preVote: r.chance(0.7),
    checkQuorum: r.chance(0.7),
    maxInflightMsgs: r.range(1, 8),
    maxInflightBytes: r.pick([256, 4096, 1 << 20]),
    // Down to 1 byte: one entry per AppendEntries.
    maxMsgBytes: r.pick([1, 64, 512, 1 << 16]),
    catchUpRoundsMax: r.range(3, 10),
  };
  const smPersisted = r.chance(0.3);
  const calm = r.chance(0.15);
  const plan: Schedule = {
    crash: calm ? 0.001 : r.pick([0.003, 0.01, 0.02, 0.04]),
    restart: r.pick([0.03, 0.1, 0.3]),
    partition: calm ? 0 : r.pick([0.005, 0.01, 0.03]),
    heal: r.pick([0.02, 0.05, 0.1]),
    netChange: r.pick([0.005, 0.02]),
    compact: r.pick([0.01, 0.05, 0.2]),
    membership: r.pick([0, 0.005, 0.02, 0.05]),
    transfer: r.pick([0, 0.005, 0.02]),
    propose: r.pick([0.05, 0.15, 0.4]),
    read: r.pick([0.02, 0.1, 0.3]),
    clockSkew: r.pick([0, 0.05, 0.2]),
    leaderBias: r.pick([0, 0.5, 0.9]),
    leaderTrap: calm ? 0 : r.pick([0, 0.1, 0.3, 0.6]),
    syncFail: calm ? 0 : r.pick([0, 0, 0.0005, 0.002]),
  };
  const snapshotLogBytes = r.pick([256, 1024, 4096, 1 << 30]);
  return { raftConfig, smPersisted, snapshotLogBytes, plan };
}
