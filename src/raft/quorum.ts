/**
 * Majority arithmetic over "acked indexes" (etcd's quorum/majority.go):
 * pure functions, no state. Only voters count; learners and removed members
 * never do (dissertation §4.2.1, §4.2.2).
 *
 * @module
 */
import type { NodeId } from "./types.ts";

/**
 * The highest index acknowledged by a majority of `voters`: sort the acked
 * indexes descending and take the one at position floor(n / 2), so that
 * floor(n / 2) + 1 voters hold at least it. Returns 0 for no voters (no
 * quorum exists, so nothing may commit).
 *
 * @param voters the voting members
 * @param acked a voter's durable match index (0 when unknown)
 */
export function committedIndex(voters: readonly NodeId[], acked: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  if (n === 1) return acked(voters[0] as NodeId);
  const xs = new Array<number>(n);
  for (let i = 0; i < n; i++) xs[i] = acked(voters[i] as NodeId);
  xs.sort((a, b) => b - a);
  return xs[n >> 1] as number;
}

/** The outcome of an election tally. */
export type VoteResult = "won" | "lost" | "pending";

/**
 * Tallies votes among `voters` (§5.2): won once a majority granted, lost
 * once a majority can no longer be reached. Votes from non-voters are not
 * counted.
 */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const n = voters.length;
  if (n === 0) return "lost";
  const need = (n >> 1) + 1;
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= need) return "won";
  if (n - rejected < need) return "lost";
  return "pending";
}

/** True when `ids` contain a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], ids: ReadonlySet<NodeId>): boolean {
  if (voters.length === 0) return false;
  let n = 0;
  for (const v of voters) if (ids.has(v)) n++;
  return n >= (voters.length >> 1) + 1;
}
