/**
 * Message dispatch and timers (etcd's `Step`, `stepLeader`,
 * `stepCandidate`, `stepFollower`, `tickElection`, `tickHeartbeat`), and
 * elections: randomized timeouts (§5.2), PreVote (dissertation §9.6),
 * CheckQuorum and the leader lease (§6.2, §4.2.3), votes that leave only
 * once durable, and the self-vote that counts only once durable.
 *
 * Term handling follows etcd, including its fixes for the PreVote +
 * CheckQuorum corner cases: a member with a higher term but a stale log is
 * answered (lower-term AppendEntries get a reply carrying the higher term;
 * lower-term PreVotes get a rejection carrying it), so the cluster learns
 * the term and elects a leader (etcd issues 8243, 8501, 9586).
 *
 * @module
 */
import { assert } from "./assert.ts";
import { isAcceptableTerm, TERM_MAX } from "./limits.ts";
import { findMember } from "./membership.ts";
import { hasQuorum, voteResult } from "./quorum.ts";
import { isIndex, RaftReplication } from "./replication.ts";
import type { Message, MsgVote, MsgVoteResp, NodeId } from "./types.ts";

/** Elections, ticks and message dispatch. */
export abstract class RaftStep extends RaftReplication {
  /** Advances logical time by one tick: election timeout for followers and candidates, heartbeats for the leader. */
  tick(): void {
    this.tickCount++;
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.startCampaign(this.cfg.preVote ? "pre" : "election");
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // §6.2: a leader that has not heard from a majority within an
        // election timeout may have been deposed; stepping down lets its
        // clients find the real leader.
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      }
      // §3.10: a transfer not done within an election timeout is aborted.
      if (this.transferee !== null) this.abortTransfer("the target did not take over within an election timeout");
    }
    this.tickCatchUp();
    if (this.leaving.size > 0) this.syncProgress();
    if (this.role !== "leader") return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastCtx());
    }
  }

  /** Leader: a majority of voters (itself included) was heard from within the election timeout. */
  protected quorumActive(): boolean {
    const active = new Set<NodeId>([this.id]);
    for (const [id, pr] of this.prs) if (pr.recentActive) active.add(id);
    return hasQuorum(this.configs.voters(), active);
  }

  /** Leader: one tick of the catch-up round timer (defined by the membership layer). */
  protected abstract tickCatchUp(): void;

  /**
   * Starts a PreVote ("pre"), an election, or an election forced by a
   * leadership transfer (skips PreVote; voters ignore their lease).
   */
  protected startCampaign(kind: "pre" | "election" | "transfer"): void {
    if (!this.promotable()) return;
    // Never into a term peers would refuse (only a data directory that took such a term before the limit existed holds one).
    if (this.term + 1 >= TERM_MAX) return;
    let voteTerm: number;
    if (kind === "pre") {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      this.votes.set(this.id, true);
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      // The self-vote counts once the vote is durable (see advance()).
    }
    const type = kind === "pre" ? "MsgPreVote" : "MsgVote";
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of this.configs.voters()) {
      if (id === this.id) continue;
      this.send({ type, from: this.id, to: id, term: voteTerm, lastLogIndex, lastLogTerm, transfer: kind === "transfer" });
    }
    this.tally();
  }

  /**
   * Counts the votes of the current (pre-)election and acts on the result.
   * A candidate that won becomes leader only once its own term and vote are
   * durable, even when the other voters alone are a majority: a leader that
   * crashed before that would restart in the previous term, could be
   * elected again in the same term by the same voters (they voted for it
   * already) and would then append different entries at indexes it had
   * already used in that term, breaking Log Matching (§5.3).
   */
  protected tally(): void {
    const result = voteResult(this.configs.voters(), this.votes);
    if (result === "won") {
      if (this.role === "precandidate") this.startCampaign("election");
      else if (this.role === "candidate" && this.selfVoteDurable()) this.becomeLeader();
    } else if (result === "lost") {
      this.becomeFollower(this.term, null);
    }
  }

  /** This candidate's term and its vote for itself are durable. */
  private selfVoteDurable(): boolean {
    const hs = this.durableHardState;
    return hs.term === this.term && hs.votedFor === this.id;
  }

  /** The candidate's own vote is durable: count it (and take a win that waited for it). */
  protected maybeCountSelfVote(): void {
    if (this.role === "candidate" && this.selfVoteDurable() && !this.votes.has(this.id)) {
      this.votes.set(this.id, true);
      this.tally();
    }
  }

  /**
   * Feeds a message from a peer. Stale, malformed or irrelevant messages
   * are ignored; this never throws for peer input.
   */
  step(m: Message): void {
    if (typeof m !== "object" || m === null || m.to !== this.id || m.from === this.id || !isIndex(m.term)) return;
    // A term near the top of the safe integers would make the next election overflow (see TERM_MAX).
    if (!isAcceptableTerm(m.term)) return;
    if (typeof m.from !== "string" || m.from === "") return;
    const isVoteRequest = m.type === "MsgVote" || m.type === "MsgPreVote";
    // Removed members (and strangers) cannot disrupt a cluster that has a
    // leader: while this member hears from one, their vote requests are
    // ignored (§4.2.3's rule, applied to non-members even without
    // CheckQuorum). Not otherwise: a member that lags behind the log may
    // not know yet the voters added since, and a member removed by an
    // uncommitted config may still be a voter of the configuration that
    // wins (its entry may be truncated away); either may need this
    // member's vote to elect anyone at all.
    if (isVoteRequest && !this.mayRequestVote(m.from) && this.hearsFromLeader()) return;
    if (m.term > this.term) {
      const fromLeader = m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap";
      if (isVoteRequest) {
        // Leader lease: a member that heard from a leader within the
        // election timeout ignores vote requests, unless the leader itself
        // asked for the election (transfer).
        const inLease = this.cfg.checkQuorum && this.leaderId !== null && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && m.transfer !== true) return;
      }
      if (m.type === "MsgPreVote") {
        // A PreVote does not change the term: the election may never happen.
      } else if (m.type === "MsgPreVoteResp" && m.granted) {
        // Granted PreVotes carry the future term; it is taken when campaigning.
      } else {
        if (!fromLeader && !isVoteRequest && !this.isKnown(m.from)) return;
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      if (m.type === "MsgApp" || m.type === "MsgHeartbeat") {
        // A leader of an older term: this member's term rose while it was
        // cut off (or the leader is stale). Answer with it (Figure 2: "reply
        // false if term < currentTerm"): the old leader steps down and a
        // fresh election frees this member. Without the answer a member that
        // cannot campaign (a learner, or one re-added with the data of an
        // earlier membership) would wait forever at its higher term (found by
        // the simulator), and with CheckQuorum/PreVote the term may not spread
        // through vote requests either.
        this.send({
          type: "MsgAppResp", from: this.id, to: m.from, term: this.term, success: false,
          matchIndex: 0, conflictTerm: 0, conflictIndex: 0, lastLogIndex: this.log.lastIndex(),
        });
      } else if (m.type === "MsgPreVote") {
        // Tell the pre-candidate the newer term, or a member with a stale
        // term could stall elections forever (etcd issue 8243).
        this.send({ type: "MsgPreVoteResp", from: this.id, to: m.from, term: this.term, granted: false });
      }
      return;
    }

    if (isVoteRequest) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "precandidate":
      case "candidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  /** A leader is known and was heard from within the election timeout (a leader counts itself). */
  private hearsFromLeader(): boolean {
    return this.leaderId !== null && this.electionElapsed < this.cfg.electionTicks;
  }

  /** `id` is a member of the configuration in force or of the one at the commit index. */
  private mayRequestVote(id: NodeId): boolean {
    return this.member(id) !== undefined || findMember(this.configs.configAt(this.log.committed).members, id) !== undefined;
  }

  /** RequestVote / PreVote receiver (§5.2, §5.4.1; dissertation §9.6). */
  private handleVoteRequest(m: MsgVote): void {
    if (!isIndex(m.lastLogIndex) || !isIndex(m.lastLogTerm)) return;
    const pre = m.type === "MsgPreVote";
    const canVote = this.votedFor === m.from ||
      (this.votedFor === null && this.leaderId === null) ||
      (pre && m.term > this.term);
    const granted = canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (pre) {
      this.send({ type: "MsgPreVoteResp", from: this.id, to: m.from, term: granted ? m.term : this.term, granted });
      return;
    }
    if (granted) {
      this.electionElapsed = 0;
      assert(this.votedFor === null || this.votedFor === m.from, "vote at most once per term");
      this.votedFor = m.from;
    }
    // Sent only once the vote (and term) are durable: a vote forgotten in a
    // crash could be cast twice in one term.
    this.sendPersisted({ type: "MsgVoteResp", from: this.id, to: m.from, term: this.term, granted });
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "MsgAppResp":
        this.handleAppendResponse(m);
        break;
      case "MsgHeartbeatResp":
        this.handleHeartbeatResponse(m);
        break;
      default:
        // Another leader of the same term cannot exist; anything else is stale.
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        // A leader of this term exists (§5.2): give up the election.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        break;
      case "MsgVoteResp":
      case "MsgPreVoteResp":
        this.handleVoteResponse(m);
        break;
      default:
        break;
    }
  }

  private handleVoteResponse(m: MsgVoteResp): void {
    const mine = this.role === "precandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
    if (m.type !== mine || typeof m.granted !== "boolean") return;
    if (this.votes.has(m.from)) return;
    this.votes.set(m.from, m.granted);
    this.tally();
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgApp":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppendEntries(m);
        break;
      case "MsgHeartbeat":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        break;
      case "MsgSnap":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        break;
      case "MsgTimeoutNow":
        // §3.10: the leader asks this member to take over, at once.
        this.startCampaign("transfer");
        break;
      default:
        break;
    }
  }
}
