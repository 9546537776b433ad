/**
 * A small deterministic pseudo-random generator (SplitMix32-style mixing of
 * a Weyl sequence) for the core's only randomness: election timeouts
 * (§5.2: randomized timeouts make split votes rare). Seeded, so a whole
 * cluster replays exactly in the simulator.
 *
 * @module
 */

/** Deterministic 32-bit PRNG. Same seed, same sequence, on every runtime. */
export class Prng {
  /** Internal state; any 32-bit value is valid. */
  private _state: number;

  /**
   * @param seed any integer; `salt` (e.g. a node id) is mixed in so members
   *   sharing a seed still draw different timeouts
   */
  constructor(seed: number, salt = "") {
    let h = (seed ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < salt.length; i++) {
      h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193) >>> 0;
    }
    this._state = h;
  }

  /** The next value in [0, 2^32). */
  nextUint32(): number {
    this._state = (this._state + 0x9e3779b9) >>> 0;
    let z = this._state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** An integer in [lo, hi). Requires lo < hi. */
  intBetween(lo: number, hi: number): number {
    return lo + (this.nextUint32() % (hi - lo));
  }
}
