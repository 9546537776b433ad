/**
 * The simulator's one source of time: a seeded queue of events in virtual
 * milliseconds. Every timer of every driver, every disk completion and every
 * network delivery is an event here, so the production driver — whose
 * awaits all wait on one of those — runs deterministically: JavaScript runs
 * one thing at a time, and between two events the scheduler lets every
 * microtask run to the end (a macrotask turn) before it takes the next.
 * TigerBeetle's VOPR and FoundationDB's simulation run their production code
 * the same way.
 *
 * Events carry an owner (a host's incarnation): a crash cancels every event
 * its owner still had pending, which is what dying does to a process.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Clock } from "../../src/node/clock.ts";
import type { Prng } from "./prng.ts";

interface _Event {
  readonly at: number;
  readonly seq: number;
  readonly owner: object | null;
  readonly fn: () => void;
  /** Runs alone, after everything before it has settled (a crash must not land inside a microtask chain). */
  readonly barrier: boolean;
  cancelled: boolean;
}

/** Lets every pending microtask run (one macrotask turn). */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The event queue (see the module comment). */
export class Scheduler {
  /** Virtual time in milliseconds. */
  now = 0;
  /** Events run so far. */
  events = 0;
  #heap: _Event[] = [];
  #seq = 0;
  /** Owners whose events are void (crashed incarnations). */
  readonly #dead = new WeakSet<object>();

  /** Runs `fn` at virtual time `at` (not before now). */
  at(at: number, fn: () => void, owner: object | null = null, barrier = false): () => void {
    const ev: _Event = { at: Math.max(at, this.now), seq: this.#seq++, owner, fn, barrier, cancelled: false };
    this.#push(ev);
    return () => {
      ev.cancelled = true;
    };
  }

  /** Runs `fn` after `ms` virtual milliseconds. */
  after(ms: number, fn: () => void, owner: object | null = null): () => void {
    return this.at(this.now + ms, fn, owner);
  }

  /** Runs `fn` after `ms`, alone: whatever ran before it has settled (crashes are these). */
  afterAlone(ms: number, fn: () => void): () => void {
    return this.at(this.now + ms, fn, null, true);
  }

  /** Voids every pending and future event of `owner`. */
  kill(owner: object): void {
    this.#dead.add(owner);
  }

  /** True once `owner` was killed. */
  isDead(owner: object): boolean {
    return this.#dead.has(owner);
  }

  /** Runs events in time order until the queue is empty or the next one is after `until`; microtasks drain after each. */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const first = this.#heap[0];
      if (first === undefined || first.at > until) break;
      // Everything due at this instant runs, in order, before the microtasks drain: they happen
      // "at once" (one macrotask turn per instant, not per event; the turn is most of the cost).
      this.now = first.at;
      let ran = false;
      for (;;) {
        const ev = this.#heap[0];
        if (ev === undefined || ev.at !== this.now || (ev.barrier && ran)) break;
        this.#pop();
        if (ev.cancelled || (ev.owner !== null && this.#dead.has(ev.owner))) continue;
        this.events++;
        ev.fn();
        ran = true;
        if (ev.barrier) break;
      }
      if (ran) await drainMicrotasks();
    }
    this.now = Math.max(this.now, until);
  }

  /** A host's clock: timers are events owned by `owner`, running `rate` times slower than virtual time. */
  clock(owner: object, rng: Prng, rate: () => number): Clock {
    return {
      now: () => this.now,
      setTimer: (ms, fn) => this.after(Math.max(0, Math.round(ms * rate())), fn, owner),
      randomU32: () => rng.u32(),
      wallMs: () => this.now,
    };
  }

  #push(ev: _Event): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!_before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && _before(h[l]!, h[m]!)) m = l;
      if (r < h.length && _before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function _before(a: _Event, b: _Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
