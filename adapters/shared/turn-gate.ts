/**
 * Spreading a burst of client requests over event-loop turns, on every
 * server a member runs: `node:http` / `node:https` (`turnGate` around the
 * request listener), `Deno.serve` and `Bun.serve` (`fetchTurnGate` around
 * the fetch handler).
 *
 * A runtime hands one poll phase every socket that became readable
 * meanwhile and calls the app for each request there. Under a flood of
 * 10,000 connections the leader's consensus thread spent up to 1.2 s (Node,
 * quiet machine), 0.8 s (Deno) and 1.1 s (Bun, both beside two CPU hogs) in
 * one turn, routing and answering thousands of requests while no timer
 * fired: no tick, no heartbeat, close to the election timeout. So at most
 * `perTurn` client requests are handed to the app per turn; the rest wait,
 * in arrival order, for the next turns. Peer routes (`/raft/...`) are never
 * held: heartbeats and appends go through at once, however many clients
 * are waiting.
 *
 * What is held costs its parsed head and a few bytes of body; how many can
 * wait is bounded by the connections a server holds (a connection sends its
 * next request only once the last one is answered). A request whose client
 * left while it waited is dropped unseen: nothing of it was applied.
 *
 * @module
 */
import type * as http from "node:http";
import { setImmediate } from "node:timers";
import { isPeerPath, isPeerUrl } from "./peer-route.ts";

/** Client requests handed to the app per event-loop turn, by default. */
export const CLIENT_REQUESTS_PER_TURN = 64;

/**
 * The scheduling both wrappers share: a request runs now or is held for a
 * later turn. A held request's `run` returns false when its client has gone
 * (it did not run and takes no slot).
 */
class _Turns {
  readonly #perTurn: number;
  readonly #resetAt: number;
  readonly #held: (() => boolean)[] = [];
  #head = 0;
  #admitted = 0;
  #scheduled = false;

  constructor(perTurn: number) {
    this.#perTurn = perTurn;
    this.#resetAt = Math.max(1, perTurn >> 2);
  }

  /**
   * True if a request may run now (counted), false if it must be held: then
   * `hold` it. The count is reset on the next turn once a quarter of the
   * budget is used, not after every request, so that a lightly loaded
   * server schedules one `setImmediate` per `perTurn / 4` requests; until
   * then the count only carries over, which never lets more than `perTurn`
   * through in one turn.
   */
  now(): boolean {
    if (this.#head !== this.#held.length || this.#admitted >= this.#perTurn) return false;
    if (++this.#admitted >= this.#resetAt) this.#schedule();
    return true;
  }

  hold(run: () => boolean): void {
    this.#held.push(run);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#nextTurn);
  }

  readonly #nextTurn = (): void => {
    this.#scheduled = false;
    this.#admitted = 0;
    const held = this.#held;
    while (this.#head < held.length && this.#admitted < this.#perTurn) {
      const run = held[this.#head]!;
      held[this.#head++] = undefined as never;
      if (run()) this.#admitted++;
    }
    if (this.#head === held.length) {
      held.length = 0;
      this.#head = 0;
      // A turn that ran held requests leaves its count for the next turn to reset.
      if (this.#admitted > 0) this.#schedule();
    } else {
      this.#schedule();
    }
  };
}

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

/** `listener` (a `node:http` request listener), handing at most `perTurn` client requests per turn to it. */
export function turnGate(listener: Listener, perTurn = CLIENT_REQUESTS_PER_TURN): Listener {
  const turns = new _Turns(perTurn);
  return (req, res) => {
    if ((req.url !== undefined && isPeerPath(req.url)) || turns.now()) return listener(req, res);
    turns.hold(() => {
      if (req.socket.destroyed) return false;
      listener(req, res);
      return true;
    });
  };
}

/** Answer to a request whose client left while it waited; nobody reads it. */
const _GONE_STATUS = 499;

/** `fetch` (a `Deno.serve` / `Bun.serve` handler), handing at most `perTurn` client requests per turn to it. */
export function fetchTurnGate<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>, perTurn = CLIENT_REQUESTS_PER_TURN): (req: Request, ...rest: A) => Response | Promise<Response> {
  const turns = new _Turns(perTurn);
  return (req, ...rest) => {
    if (isPeerUrl(req.url) || turns.now()) return fetch(req, ...rest);
    return new Promise<Response>((resolve, reject) => {
      turns.hold(() => {
        if (req.signal.aborted) {
          resolve(new Response(null, { status: _GONE_STATUS }));
          return false;
        }
        try {
          resolve(fetch(req, ...rest));
        } catch (err) {
          reject(err);
        }
        return true;
      });
    });
  };
}
