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

/** Client requests handed to the app per event-loop turn, by default. */
export const CLIENT_REQUESTS_PER_TURN = 64;

/** True if `url` (a path, or an absolute URL when `from` is where its path starts) is a peer route: `/raft/...`. */
function _peerRoute(url: string, from = 0): boolean {
  return url.startsWith("/raft/", from);
}

/** The scheduling both wrappers share: a request runs now or is held for a later turn, `gone` checked before a held one runs. */
class _Turns {
  readonly #perTurn: number;
  readonly #resetAt: number;
  readonly #held: { run: () => void; gone: () => boolean }[] = [];
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
   * budget is used (measured: a `setImmediate` for every request cost Bun
   * 3-8% of its requests/s at one connection); until then it only carries
   * over, which never lets more than `perTurn` through in one turn.
   */
  now(): boolean {
    if (this.#head !== this.#held.length || this.#admitted >= this.#perTurn) return false;
    if (++this.#admitted >= this.#resetAt) this.#schedule();
    return true;
  }

  hold(run: () => void, gone: () => boolean): void {
    this.#held.push({ run, gone });
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
      const h = held[this.#head]!;
      held[this.#head++] = undefined as never;
      if (h.gone()) continue;
      this.#admitted++;
      h.run();
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
    if ((req.url !== undefined && _peerRoute(req.url)) || turns.now()) return listener(req, res);
    turns.hold(() => listener(req, res), () => req.socket.destroyed);
  };
}

/** Answer to a request whose client left while it waited; nobody reads it. */
const _GONE_STATUS = 499;

/** `fetch` (a `Deno.serve` / `Bun.serve` handler), handing at most `perTurn` client requests per turn to it. */
export function fetchTurnGate<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>, perTurn = CLIENT_REQUESTS_PER_TURN): (req: Request, ...rest: A) => Response | Promise<Response> {
  const turns = new _Turns(perTurn);
  return (req, ...rest) => {
    const url = req.url;
    if (_peerRoute(url, url.indexOf("/", url.indexOf("//") + 2)) || turns.now()) return fetch(req, ...rest);
    return new Promise<Response>((resolve, reject) => {
      turns.hold(() => {
        try {
          resolve(fetch(req, ...rest));
        } catch (err) {
          reject(err);
        }
      }, () => {
        if (!req.signal.aborted) return false;
        resolve(new Response(null, { status: _GONE_STATUS }));
        return true;
      });
    });
  };
}
