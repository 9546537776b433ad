/**
 * Who may send this member peer RPCs at all, decided before a request's body
 * is read (`PeerRoutesOptions.admitSender`) and, for InstallSnapshot, before
 * a transfer starts.
 *
 * A sender must be in the configuration in force (the last one appended,
 * which may still be pending) or in the one at the commit index (the
 * configuration the pending one replaces), or be a member the leader still
 * replicates to while it learns of its removal. Anyone else is refused:
 * 410 Gone for an id whose removal this member saw commit (remembered in
 * `DATA/REMOVED` with the index of the configuration that removed it, so a
 * removed member never gets back in: not after the log recording its
 * removal is compacted, nor after a restart whose commit index lags behind
 * it; only a configuration newer than its removal that holds the id again
 * lifts it), 403 for a stranger. A member with no configuration yet (one joining) accepts
 * the members it learned when it asked to join.
 *
 * The price, as in hashicorp/raft: a member that lags behind a membership
 * change refuses the members added after what it holds until it catches
 * up. A cluster loses liveness through that only if every member that holds
 * the change is down at once, beyond a majority of the old configuration.
 *
 * A snapshot replaces the state machine and the membership, so it is taken
 * only from the member that leads the term it claims: a voter, in a term
 * not older than this member's, and not while this member knows another
 * leader of that term (or leads it itself).
 *
 * @module
 */
import type { Raft } from "../raft/raft.ts";
import { findMember } from "../raft/membership.ts";
import type { ConfigState, MsgSnap, NodeId, Role } from "../raft/types.ts";
import { readRemovedMembers, writeRemovedMembers } from "../storage/removed-members-file.ts";

/** What admission looks at: the core's membership and leadership, as of now. */
export interface MembershipView {
  readonly self: NodeId;
  readonly term: number;
  readonly role: Role;
  /** The leader of `term`, if known. */
  readonly leaderId: NodeId | null;
  /** The configuration in force (the last appended; may be pending). */
  readonly current: ConfigState;
  /** The configuration at the commit index. */
  readonly committed: ConfigState;
  /** Leader: every member it replicates to (members leaving included); empty otherwise. */
  readonly replicatingTo: readonly NodeId[];
}

/** A refusal, with the HTTP status that says why. */
export interface Refusal {
  readonly status: 403 | 409 | 410;
  readonly reason: string;
}

/** How long a view is reused: admission runs on every peer request, and a view costs a `status()` of the core. */
const _VIEW_MAX_AGE_MS = 10;
let _cached: { raft: Raft; atMs: number; view: MembershipView } | null = null;

/**
 * The view of a running core, reused for up to 10 ms: a membership change
 * reaches admission at most that late (the core checks every message it
 * steps in any case).
 */
export function membershipViewOf(raft: Raft): MembershipView {
  const now = performance.now();
  if (_cached !== null && _cached.raft === raft && now - _cached.atMs < _VIEW_MAX_AGE_MS) return _cached.view;
  const view = _freshView(raft);
  _cached = { raft, atMs: now, view };
  return view;
}

function _freshView(raft: Raft): MembershipView {
  const st = raft.status();
  return {
    self: st.id,
    term: st.term,
    role: st.role,
    leaderId: st.leaderId,
    current: st.config,
    committed: raft.configAt(st.commitIndex),
    replicatingTo: st.progress.map((p) => p.id),
  };
}

function _inConfigs(v: MembershipView, id: NodeId): boolean {
  return findMember(v.current.members, id) !== undefined || findMember(v.committed.members, id) !== undefined;
}

/** `id` is in one of the configurations set after index `since`. */
function _inConfigsAfter(v: MembershipView, id: NodeId, since: number): boolean {
  return (v.current.index > since && findMember(v.current.members, id) !== undefined) ||
    (v.committed.index > since && findMember(v.committed.members, id) !== undefined);
}

function _isVoter(v: MembershipView, id: NodeId): boolean {
  return findMember(v.current.members, id)?.voter === true || findMember(v.committed.members, id)?.voter === true;
}

/**
 * The admission rule for any peer request (pure).
 *
 * @param removed ids whose removal committed, with the index of the configuration that removed them (see the module doc)
 * @param joinPeers members learned when joining, accepted while this member has no configuration; null: accept any then
 * @returns null to admit, else the refusal
 */
export function admitSender(v: MembershipView, removed: ReadonlyMap<NodeId, number>, joinPeers: ReadonlySet<NodeId> | null, from: NodeId): Refusal | null {
  if (from === v.self) return { status: 403, reason: `request claims to come from ${from}, this member's own id` };
  const removedAt = removed.get(from);
  if (removedAt !== undefined) {
    // Only a configuration newer than the removal brings the id back.
    if (_inConfigsAfter(v, from, removedAt)) return null;
    return { status: 410, reason: `member ${from} was removed from the cluster` };
  }
  if (_inConfigs(v, from) || v.replicatingTo.includes(from)) return null;
  if (v.current.members.length === 0 && v.committed.members.length === 0) {
    if (joinPeers === null || joinPeers.has(from)) return null;
  }
  return { status: 403, reason: `${from} is not a member of this cluster's configuration` };
}

/** The rule for a snapshot: only from the member that leads the term it claims (pure; after `admitSender`). */
export function admitSnapshot(v: MembershipView, joinPeers: ReadonlySet<NodeId> | null, from: NodeId, msg: MsgSnap): Refusal | null {
  if (msg.term < v.term) return { status: 409, reason: `snapshot of term ${msg.term} from ${from}; this member is in term ${v.term}` };
  const unconfigured = v.current.members.length === 0 && v.committed.members.length === 0;
  if (unconfigured ? joinPeers !== null && !joinPeers.has(from) : !_isVoter(v, from)) {
    return { status: 403, reason: `${from} is not a voter, so it cannot lead and send a snapshot` };
  }
  if (msg.term === v.term) {
    if (v.role === "leader") return { status: 403, reason: `this member leads term ${v.term}; ${from} does not` };
    if (v.leaderId !== null && v.leaderId !== from) return { status: 403, reason: `member ${v.leaderId} leads term ${v.term}, not ${from}` };
  }
  return null;
}

/** Admission for one member: the rules above, with the removed ids kept up to date and durable. */
export class PeerAdmission {
  readonly #dataDir: string;
  readonly #removed: Map<NodeId, number>;
  readonly #logger: (line: string) => void;
  #joinPeers: ReadonlySet<NodeId> | null = null;
  /** The committed configuration the removed ids were last reconciled with. */
  #seenCommitted: ConfigState | null = null;
  /** Serialises writes of the removed-member file. */
  #writing: Promise<void> = Promise.resolve();

  private constructor(dataDir: string, removed: Map<NodeId, number>, logger: (line: string) => void) {
    this.#dataDir = dataDir;
    this.#removed = removed;
    this.#logger = logger;
  }

  /** Loads the removed ids of `dataDir`. @throws StorageCorruptError */
  static async open(dataDir: string, logger: (line: string) => void): Promise<PeerAdmission> {
    return new PeerAdmission(dataDir, await readRemovedMembers(dataDir), logger);
  }

  /** The members learned when joining (accepted until a configuration arrives). */
  setJoinPeers(ids: readonly NodeId[]): void {
    this.#joinPeers = new Set(ids);
  }

  /** Ids refused with 410, with the index of the configuration that removed them. */
  get removed(): ReadonlyMap<NodeId, number> {
    return this.#removed;
  }

  /** `admitSender` on `v`, after taking in any membership change that committed since the last call. */
  sender(v: MembershipView, from: NodeId): Refusal | null {
    this.#reconcile(v);
    return admitSender(v, this.#removed, this.#joinPeers, from);
  }

  /** `admitSnapshot` on `v`. */
  snapshot(v: MembershipView, from: NodeId, msg: MsgSnap): Refusal | null {
    return admitSnapshot(v, this.#joinPeers, from, msg);
  }

  /** Resolves once the removed-member file holds every change made so far (for close and tests). */
  flushed(): Promise<void> {
    return this.#writing;
  }

  /**
   * Members of the last committed configuration seen that are in neither of
   * the configurations now were removed (at the newer committed index); ids
   * held again by a committed configuration newer than their removal are
   * no longer refused. Called on every admission, so changes are seen as
   * soon as a peer could be affected by them.
   */
  #reconcile(v: MembershipView): void {
    const prev = this.#seenCommitted;
    if (prev !== null && prev.index === v.committed.index && prev.members === v.committed.members) return;
    this.#seenCommitted = v.committed;
    let changed = false;
    if (prev !== null && v.committed.index > prev.index) {
      for (const m of prev.members) {
        if (m.id !== v.self && !_inConfigs(v, m.id) && !this.#removed.has(m.id)) {
          this.#removed.set(m.id, v.committed.index);
          changed = true;
        }
      }
    }
    for (const m of v.committed.members) {
      const at = this.#removed.get(m.id);
      if (at !== undefined && v.committed.index > at) {
        this.#removed.delete(m.id);
        changed = true;
      }
    }
    if (!changed) return;
    const snapshot = new Map(this.#removed);
    this.#writing = this.#writing
      .then(() => writeRemovedMembers(this.#dataDir, snapshot))
      .catch((err) => this.#logger(`could not save the removed-member list: ${(err as Error).message}`));
  }
}
