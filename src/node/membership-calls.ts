/**
 * The membership and leadership calls of a driver (`addMember`,
 * `removeMember`, `transferLeadership`): each checks it runs on the leader
 * (only the leader's view of the membership counts), asks the core, and
 * waits in the pending table for the outcome, failing with an unknown
 * outcome (504) when leadership is lost on the way, since the change may
 * still complete under the next leader.
 *
 * @module
 */
import { MembershipChangeError, NotLeaderError, ProposalDroppedError, RaftError } from "../errors.ts";
import type { Raft } from "../raft/raft.ts";
import type { NodeId } from "../raft/types.ts";
import type { Clock } from "./clock.ts";
import type { DriverTunables } from "./driver.ts";
import { checkMemberUrl, checkNodeId } from "./identity.ts";
import type { PendingTable } from "./pending.ts";
import type { Transport } from "./transport.ts";

/** What the calls need from their driver. */
export interface MembershipCallsDeps {
  readonly id: NodeId;
  readonly raft: Raft;
  readonly pending: PendingTable;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly tunables: DriverTunables;
  /** Schedules a turn of the Ready loop. */
  kick(): void;
  notLeader(): NotLeaderError;
}

/** Membership and leadership calls (see the module comment). */
export class MembershipCalls {
  readonly #d: MembershipCallsDeps;

  constructor(deps: MembershipCallsDeps) {
    this.#d = deps;
  }

  /** Adds a member: a learner, caught up in rounds, then promoted; resolves once it is a voter. */
  async addMember(id: NodeId, url: string): Promise<void> {
    checkNodeId(id);
    checkMemberUrl(url);
    const st = this.#d.raft.status();
    if (st.role !== "leader") throw this.#d.notLeader();
    const existing = st.config.members.find((m) => m.id === id);
    if (existing !== undefined && existing.url === url && existing.voter) return;
    if (existing !== undefined && existing.url !== url) {
      throw new MembershipChangeError(`Member ${id} already exists with URL ${existing.url}; remove it first to change its URL`);
    }
    this.#d.transport.setUrl(id, url);
    // A learner is caught up and promoted; one already being caught up (a retried join) is waited for.
    if (this.#d.raft.catchingUp() !== id) this.#d.raft.addMember(id, url);
    this.#d.kick();
    await this.#d.pending.waitFor(`member ${id} to be caught up and promoted to voter`, () => {
      const s = this.#d.raft.status();
      const m = s.config.members.find((x) => x.id === id);
      return m !== undefined && m.voter && s.commitIndex >= s.config.index;
    }, (ev) => {
      if (ev.type === "catch-up-failed" && ev.id === id) return new MembershipChangeError(`Member ${id} could not be added: ${ev.reason}`);
      // The learner stays in the configuration and the next leader resumes its catch-up: the addition may still complete.
      if (ev.type === "role" && ev.role !== "leader") return new ProposalDroppedError(`${this.#d.id} lost the leadership while member ${id} was being caught up; the next leader goes on with it, retry to wait for it there`, "unknown");
      return null;
    }, this.#d.clock.now(), this.#d.tunables.membershipTimeoutMs);
  }

  /** Removes a member (the leader too); resolves once the removal commits (or, for this member, is appended). */
  async removeMember(id: NodeId): Promise<void> {
    const st = this.#d.raft.status();
    // Only the leader's view of the membership counts: a follower's may be stale.
    if (st.role !== "leader") throw this.#d.notLeader();
    if (!st.config.members.some((m) => m.id === id)) return;
    this.#d.raft.removeMember(id);
    this.#d.kick();
    await this.#d.pending.waitFor(`the removal of member ${id} to commit`, () => {
      const s = this.#d.raft.status();
      return !s.config.members.some((m) => m.id === id) && (s.commitIndex >= s.config.index || id === this.#d.id);
    }, () => null, this.#d.clock.now(), this.#d.tunables.membershipTimeoutMs);
  }

  /** Hands leadership to `to`, or to the most caught-up voter; resolves once it leads. */
  async transferLeadership(to?: NodeId): Promise<void> {
    const st = this.#d.raft.status();
    if (st.role !== "leader") throw this.#d.notLeader();
    let target = to;
    if (target === undefined) {
      let best = -1;
      for (const p of st.progress) {
        const m = st.config.members.find((x) => x.id === p.id);
        if (p.id !== this.#d.id && m?.voter && p.matchIndex > best) {
          best = p.matchIndex;
          target = p.id;
        }
      }
      if (target === undefined) throw new MembershipChangeError("There is no other voter to transfer leadership to");
    }
    if (target === this.#d.id) return;
    const dest = target;
    this.#d.raft.transferLeadership(dest);
    this.#d.kick();
    await this.#d.pending.waitFor(`member ${dest} to take over leadership`, () => this.#d.raft.status().leaderId === dest, (ev) =>
      ev.type === "transfer-aborted" && ev.to === dest ? new RaftError(`Leadership transfer to ${dest} aborted: ${ev.reason}`) : null, this.#d.clock.now(), this.#d.tunables.tickMs * 40);
  }
}
