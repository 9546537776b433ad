/**
 * The simulated network between cores: every message is delivered after a
 * random delay in whole ticks, and may be dropped, duplicated or reordered;
 * links can be cut in one direction (one-way partitions) or both.
 *
 * Time is counted in ticks of the world; the caller schedules each
 * delivery. Random delays reorder traffic on every link.
 *
 * @module
 */
import type { Message, NodeId } from "../../src/raft/types.ts";
import type { Prng } from "./prng.ts";

/** How a link misbehaves right now. Changed by the world's fault schedule. */
export interface LinkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice (with independent delays). */
  dupRate: number;
  /** Usual delay in ticks, inclusive range. Invariant: 1 <= delayTicksMin <= delayTicksMax. */
  delayTicksMin: number;
  delayTicksMax: number;
  /** Probability of an exceptionally long delay, up to `longDelayTicksMax` (heavy reordering). */
  longDelayRate: number;
  longDelayTicksMax: number;
}

/** A perfect network: used in the liveness phase. */
export const calmFaults: Readonly<LinkFaults> = {
  dropRate: 0,
  dupRate: 0,
  delayTicksMin: 1,
  delayTicksMax: 1,
  longDelayRate: 0,
  longDelayTicksMax: 1,
};

/** What happened to a message handed to {@link Network.send}. */
export type SendOutcome = "sent" | "dropped" | "blocked";

/** Counters for the run summary. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  blocked: number;
  duplicated: number;
}

/** The simulated network. */
export class Network {
  /** Current misbehaviour; the world swaps it as the schedule goes. */
  faults: LinkFaults = { ...calmFaults };
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, blocked: 0, duplicated: 0 };

  /** Cut directed links, as "from>to". */
  private readonly cut = new Set<string>();
  private readonly rng: Prng;

  constructor(rng: Prng) {
    this.rng = rng;
  }

  /** Whether a message from `from` to `to` would get through the partitions now. */
  canReach(from: NodeId, to: NodeId): boolean {
    return this.cut.size === 0 || !this.cut.has(`${from}>${to}`);
  }

  /** Cuts the link from `from` to `to` (one way). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both ways. */
  split(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.cut.add(`${a}>${b}`);
        this.cut.add(`${b}>${a}`);
      }
    }
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  /** The cut links, for traces. */
  describeCuts(): string {
    return this.cut.size === 0 ? "none" : [...this.cut].sort().join(" ");
  }

  /**
   * Puts `msg` on the wire. A cut link refuses it at once ("blocked", the
   * sender's transport would notice); otherwise it may be lost silently
   * ("dropped"), or delivered once or twice: `delays` are the delivery
   * delays in ticks (the caller schedules them, and checks `canReach` again
   * at delivery: a link cut meanwhile loses it).
   */
  send(msg: Message): { outcome: SendOutcome; delays: number[] } {
    this.stats.sent++;
    if (!this.canReach(msg.from, msg.to)) {
      this.stats.blocked++;
      return { outcome: "blocked", delays: [] };
    }
    if (this.rng.chance(this.faults.dropRate)) {
      this.stats.dropped++;
      return { outcome: "dropped", delays: [] };
    }
    const delays = [this.delayTicks()];
    if (this.rng.chance(this.faults.dupRate)) {
      this.stats.duplicated++;
      delays.push(this.delayTicks());
    }
    return { outcome: "sent", delays };
  }

  /** Delays in ticks the schedule may draw for out-of-band traffic (snapshot streams). */
  delayTicks(): number {
    const f = this.faults;
    if (this.rng.chance(f.longDelayRate)) return this.rng.range(f.delayTicksMin, Math.max(f.delayTicksMin, f.longDelayTicksMax));
    return this.rng.range(f.delayTicksMin, f.delayTicksMax);
  }

}
