/**
 * The simulator's only source of randomness: a small seeded PRNG
 * (mulberry32), so that a run is a pure function of its seed and any
 * failure replays exactly. Nothing in `tests/sim/` may use `Math.random`
 * or wall-clock time.
 *
 * Each concern (network, fault schedule, clients, each node's core) draws
 * from its own stream made with {@link Prng.fork}, so adding a draw in one
 * place does not reshuffle every other decision of a seed.
 *
 * @module
 */

/** A deterministic pseudo-random number generator (mulberry32, 32-bit state). */
export class Prng {
  /** The 32-bit state; advanced by every draw. */
  private state: number;

  /**
   * @param seed Any safe integer; mixed so that nearby seeds give unrelated streams.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Seed ${seed} must be a safe integer`);
    // Fold the high bits in and scramble once, so seeds 1, 2, 3 start far apart.
    let s = (seed ^ Math.floor(seed / 0x1_0000_0000) ^ 0x9e37_79b9) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x85eb_ca6b) >>> 0;
    s = Math.imul(s ^ (s >>> 13), 0xc2b2_ae35) >>> 0;
    this.state = (s ^ (s >>> 16)) >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  u32(): number {
    this.state = (this.state + 0x6d2b_79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** An integer in [0, n). `n` must be a positive safe integer below 2^32. */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x1_0000_0000 && Number.isInteger(n))) throw new RangeError(`int(${n}): n must be in [1, 2^32]`);
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi], both inclusive. */
  range(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`range(${lo}, ${hi}): empty range`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniformly chosen element. Throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick() from an empty array");
    return items[this.int(items.length)] as T;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A new, independent stream derived from this one (consumes one draw). */
  fork(): Prng {
    return new Prng(this.u32() * 0x1_0000 + 0x5eed);
  }
}
