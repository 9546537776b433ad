/**
 * Single-server membership changes (dissertation §4.1-§4.2) and leadership
 * transfer (§3.10), leader side.
 *
 * A change is one config entry carrying the full new member list; it takes
 * effect when appended. Only one may be uncommitted at a time, and none
 * before the leader has committed an entry of its own term (the fix for
 * the single-server-change bug reported on raft-dev in 2015: a new leader
 * must not stack a change on an uncommitted one from an earlier term).
 *
 * A new voter first joins as a learner and is caught up in rounds
 * (§4.2.1): each round replicates up to the leader's last index at its
 * start; a round shorter than an election timeout means the learner keeps
 * up and is promoted; after `catchUpRoundsMax` rounds it is given up on
 * and removed.
 *
 * @module
 */
import { InvalidArgumentError, MembershipChangeError } from "../errors.ts";
import { encodeMembership } from "./membership-codec.ts";
import { RaftStep } from "./raft-step.ts";
import type { Member, NodeId } from "./types.ts";

/** Membership changes and leadership transfer. */
export abstract class RaftMembership extends RaftStep {
  /**
   * Adds `id` as a voter: appends a config adding it as a learner, catches
   * it up in rounds, then appends its promotion. Progress is reported by
   * "catch-up" / "catch-up-failed" / "membership" events. An existing
   * learner is caught up and promoted; one being caught up already is left
   * to its rounds (a retried join).
   *
   * Every learner is on its way to becoming a voter: a leader elected while
   * one is in the configuration resumes its catch-up (`resumeCatchUp`), so a
   * leader change during a join does not strand it.
   *
   * @throws NotLeaderError on a non-leader
   * @throws MembershipChangeError when a change is in progress, no entry of
   *   this term is committed yet, or `id` is already a voter
   */
  addMember(id: NodeId, url: string): void {
    if (this.role !== "leader") throw this.notLeader();
    if (this.catchUp !== null && this.catchUp.id === id) return;
    this.checkChangeAllowed();
    const existing = this.member(id);
    if (existing?.voter === true) throw new MembershipChangeError(`${id} is already a voting member`);
    if (existing === undefined) {
      checkId(id);
      this.appendConfig([...this.currentConfig().members, { id, url, voter: false }]);
    }
    this.startCatchUp(id);
  }

  /** The learner being caught up by this leader, or null. */
  catchingUp(): NodeId | null {
    return this.catchUp?.id ?? null;
  }

  /**
   * Removes a member, the leader itself included: a removed leader keeps
   * leading (without counting itself) until the removal commits, then steps
   * down. The removed member gets a "removed" event when it learns of it.
   *
   * @throws NotLeaderError on a non-leader
   * @throws MembershipChangeError when a change is in progress, `id` is not
   *   a member, or it is the last voter
   */
  removeMember(id: NodeId): void {
    this.checkChangeAllowed();
    const m = this.member(id);
    if (m === undefined) throw new MembershipChangeError(`${id} is not a member`);
    const rest = this.currentConfig().members.filter((x) => x.id !== id);
    if (!rest.some((x) => x.voter)) throw new MembershipChangeError(`${id} is the last voter; add another voter before removing it`);
    this.appendConfig(rest);
  }

  /**
   * Hands leadership to `to` (§3.10): brings it up to date, then sends
   * MsgTimeoutNow. Proposals are refused meanwhile; the transfer is aborted
   * (event "transfer-aborted") after an election timeout.
   *
   * @throws NotLeaderError on a non-leader
   * @throws InvalidArgumentError when `to` is not a voting member
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") throw this.notLeader();
    if (to === this.id) return;
    if (this.member(to)?.voter !== true) throw new InvalidArgumentError(`Cannot transfer leadership to ${to}: it is not a voting member`);
    if (this.transferee === to) return;
    if (this.transferee !== null) this.abortTransfer(`superseded by a transfer to ${to}`);
    this.transferee = to;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    const pr = this.prs.get(to);
    if (pr !== undefined && pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  /** Asks `to` to campaign at once (its log is up to date). */
  protected sendTimeoutNow(to: NodeId): void {
    this.send({ type: "MsgTimeoutNow", from: this.id, to, term: this.term });
  }

  /** @throws unless this leader may start a membership change now */
  private checkChangeAllowed(): void {
    if (this.role !== "leader") throw this.notLeader();
    if (this.pendingConfigIndex > this.log.committed) {
      throw new MembershipChangeError(`A membership change is in progress (entry ${this.pendingConfigIndex} is not committed yet); retry once it commits`);
    }
    if (this.log.maybeTerm(this.log.committed) !== this.term) {
      throw new MembershipChangeError(`Leader ${this.id} has not committed an entry of term ${this.term} yet; retry shortly`);
    }
    if (this.catchUp !== null) throw new MembershipChangeError(`Member ${this.catchUp.id} is still being caught up; retry once it is promoted or given up`);
    if (this.transferee !== null) throw new MembershipChangeError(`Leadership is being transferred to ${this.transferee}; retry on the new leader`);
  }

  /** Appends a config entry with the full new member list; it is in force at once. */
  private appendConfig(members: readonly Member[]): void {
    const index = this.appendEntries([{ type: "config", data: encodeMembership(members) }]);
    this.pendingConfigIndex = index;
    this.bcastNewEntries();
  }

  /** Starts catching up learner `id` (round 1, up to the leader's last index now). */
  private startCatchUp(id: NodeId): void {
    this.catchUp = { id, round: 1, roundStart: this.tickCount, target: this.log.lastIndex(), outcome: null };
    this.onFollowerProgress(id);
  }

  /**
   * Leader: catches up a learner of the configuration in force that no
   * round is running for (one being added when the previous leader stepped
   * down, or the next one after a catch-up ended). Its promotion still
   * waits for this leader's first commit (`pendingConfigIndex`).
   */
  protected resumeCatchUp(): void {
    if (this.role !== "leader" || this.catchUp !== null) return;
    const learner = this.currentConfig().members.find((m) => !m.voter);
    if (learner !== undefined) this.startCatchUp(learner.id);
  }

  /** A follower's match moved: ends catch-up rounds, completes a transfer. */
  protected onFollowerProgress(id: NodeId): void {
    if (id === this.transferee && this.prs.get(id)?.match === this.log.lastIndex()) this.sendTimeoutNow(id);
    if (this.catchUp !== null && this.catchUp.id === id) this.evaluateCatchUp();
  }

  protected tickCatchUp(): void {
    if (this.catchUp !== null) this.evaluateCatchUp();
  }

  /** Ends the current round if its target is reached or its time is up; acts on a decided outcome. */
  private evaluateCatchUp(): void {
    const c = this.catchUp;
    if (c === null) return;
    const pr = this.prs.get(c.id);
    if (pr === undefined || this.member(c.id) === undefined) {
      this.catchUp = null;
      return;
    }
    if (c.outcome === null) {
      const elapsed = this.tickCount - c.roundStart;
      const reached = pr.match >= c.target;
      if (reached && elapsed < this.cfg.electionTicks) {
        c.outcome = "promote";
      } else if (reached || elapsed >= this.cfg.electionTicks) {
        // Too slow: one more round, from where the leader's log is now.
        this.emit({ type: "catch-up", id: c.id, round: c.round, lag: this.log.lastIndex() - pr.match });
        if (c.round >= this.cfg.catchUpRoundsMax) {
          this.emit({ type: "catch-up-failed", id: c.id, reason: `not caught up after ${c.round} rounds of ${this.cfg.electionTicks} ticks` });
          c.outcome = "remove";
        } else {
          c.round++;
          c.roundStart = this.tickCount;
          c.target = this.log.lastIndex();
        }
      }
    }
    // As for any change: the previous one (the learner's own entry) committed, an entry of this
    // leader's term committed (a new leader that resumed the catch-up waits for its no-op), and no
    // leadership transfer in progress (§3.10).
    if (c.outcome === null || this.pendingConfigIndex > this.log.committed || this.log.maybeTerm(this.log.committed) !== this.term || this.transferee !== null) return;
    this.catchUp = null;
    const members = this.currentConfig().members;
    if (c.outcome === "promote") {
      this.emit({ type: "catch-up", id: c.id, round: c.round, lag: this.log.lastIndex() - pr.match });
      this.appendConfig(members.map((m) => (m.id === c.id ? { id: m.id, url: m.url, voter: true } : m)));
    } else {
      this.appendConfig(members.filter((m) => m.id !== c.id));
    }
    this.resumeCatchUp();
  }

  /**
   * The leader's own removal committed: it steps down, and hands over at
   * once to the most up-to-date voter so the cluster need not wait for an
   * election timeout.
   */
  protected stepDownAfterRemoval(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.configs.voters()) {
      const pr = this.prs.get(id);
      if (pr !== undefined && id !== this.id && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    const upToDate = best !== null && bestMatch === this.log.lastIndex();
    // Tell the others the commit index first: the removal is then known.
    this.bcastAppend();
    this.becomeFollower(this.term, null);
    if (upToDate && best !== null) this.sendTimeoutNow(best);
  }
}

function checkId(id: NodeId): void {
  if (typeof id !== "string" || id.length === 0) throw new InvalidArgumentError("A member id must be a non-empty string");
}
