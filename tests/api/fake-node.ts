/**
 * A hand-written stand-in for `RaftNodeApi` (no mocking library): it applies
 * proposals straight to a real `KvStateMachine` while it "leads", and fails
 * the way a real node does in the other modes. For route tests that need no
 * network.
 *
 * @module
 */
import type { NodeEvent, NodeMetrics, NodeStatus, RaftNodeApi, SnapshotTaken } from "../../src/node/types.ts";
import type { Member } from "../../src/raft/types.ts";
import type { KvStateMachine } from "../../src/kv/state-machine.ts";
import { NotLeaderError, ProposalDroppedError, TimeoutError } from "../../src/errors.ts";

/** How the fake behaves. */
export type FakeMode =
  | { readonly kind: "leader" }
  | { readonly kind: "follower"; readonly leaderId: string; readonly leaderUrl: string }
  | { readonly kind: "no-leader" }
  | { readonly kind: "dropped"; readonly outcome: "unknown" | "not-applied" }
  | { readonly kind: "timeout" };

const _emptyHistogram = { boundsMs: [1, 5, 25], cumulative: [0, 0, 0, 0], sumMs: 0, count: 0 };

/** A fake node over a real state machine. */
export class FakeNode implements RaftNodeApi {
  readonly id = "n1";
  readonly url = "http://127.0.0.1:7001";
  mode: FakeMode = { kind: "leader" };
  /** Counts, so tests can tell what the routes called. */
  readBarriers = 0;
  proposals = 0;
  added: [string, string][] = [];
  removed: string[] = [];
  transfers: (string | undefined)[] = [];
  members: Member[] = [
    { id: "n1", url: "http://127.0.0.1:7001", voter: true },
    { id: "n2", url: "http://127.0.0.1:7002", voter: true },
  ];
  private _index = 0;
  private readonly _listeners = new Set<(e: NodeEvent) => void>();

  constructor(private readonly _kv: KvStateMachine) {}

  private _check(): void {
    const m = this.mode;
    if (m.kind === "follower") throw new NotLeaderError(m.leaderId, m.leaderUrl);
    if (m.kind === "no-leader") throw new NotLeaderError(null, null);
    if (m.kind === "dropped") throw new ProposalDroppedError("Leadership was lost", m.outcome);
    if (m.kind === "timeout") throw new TimeoutError("The proposal was not applied within 10 ms");
  }

  propose(data: Uint8Array): Promise<unknown> {
    try {
      this._check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.proposals++;
    this._index += 2; // gaps, as no-ops and config entries leave them
    return Promise.resolve(this._kv.apply(this._index, data));
  }

  readBarrier(): Promise<void> {
    this.readBarriers++;
    if (this.mode.kind === "follower" || this.mode.kind === "no-leader") {
      try {
        this._check();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.mode.kind === "timeout") return Promise.reject(new TimeoutError("The read barrier timed out"));
    return Promise.resolve();
  }

  addMember(id: string, url: string): Promise<void> {
    try {
      this._check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.added.push([id, url]);
    this.members.push({ id, url, voter: true });
    return Promise.resolve();
  }

  removeMember(id: string): Promise<void> {
    try {
      this._check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.removed.push(id);
    this.members = this.members.filter((m) => m.id !== id);
    return Promise.resolve();
  }

  transferLeadership(to?: string): Promise<void> {
    try {
      this._check();
    } catch (err) {
      return Promise.reject(err);
    }
    this.transfers.push(to);
    return Promise.resolve();
  }

  beginSnapshot(): Promise<number> {
    return Promise.resolve(this._index);
  }

  endSnapshot(): Promise<void> {
    return Promise.resolve();
  }

  takeSnapshot(): Promise<SnapshotTaken> {
    return Promise.resolve({ index: this._index, term: 1, bytes: 0, compactedThrough: this._index });
  }

  status(): NodeStatus {
    const leading = this.mode.kind !== "follower" && this.mode.kind !== "no-leader";
    return {
      id: this.id,
      url: this.url,
      clusterId: "c0ffee",
      role: leading ? "leader" : this.mode.kind === "no-leader" ? "precandidate" : "follower",
      term: 3,
      leader: leading ? { id: this.id, url: this.url } : this.mode.kind === "follower" ? { id: this.mode.leaderId, url: this.mode.leaderUrl } : null,
      commitIndex: this._index,
      lastApplied: this._kv.lastApplied(),
      lastIndex: this._index,
      firstIndex: 1,
      members: this.members.map((m) => ({ ...m, matchIndex: leading ? this._index : null, lag: leading ? 0 : null, reachable: leading ? true : null, snapshotTransfer: null, lastHeardAtMs: null })),
      pendingConfigChange: false,
      runtime: "fake",
    };
  }

  metrics(): NodeMetrics {
    return {
      proposals: this.proposals,
      proposalsFailed: 0,
      commitLatency: { boundsMs: [1, 5, 25], cumulative: [2, 3, 3, 4], sumMs: 40.5, count: 4 },
      fsyncLatency: _emptyHistogram,
      rpcsSent: 10,
      rpcsReceived: 9,
      rpcsRefused: 1,
      rpcsSentInResponses: 0,
      snapshotBytesSent: 0,
      snapshotBytesReceived: 0,
      leaderChanges: 1,
      logBytes: 4096,
      snapshotBytes: 0,
    };
  }

  on(listener: (event: NodeEvent) => void): () => void {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Sends an event to the listeners (as the real node would). */
  emit(e: NodeEvent): void {
    for (const l of this._listeners) l(e);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
