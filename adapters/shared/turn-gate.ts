/**
 * Spreading a burst of client requests over event-loop turns, for the
 * `node:http` / `node:https` servers (Node's, and the `node:https` one Deno
 * and Bun use for mutual TLS).
 *
 * libuv hands one poll phase every socket that became readable meanwhile,
 * and `node:http` parses and dispatches each request there. Under a flood
 * of 10,000 connections Node's consensus thread spent 0.4-2.0 s in a single
 * turn (measured: no `setImmediate` ran in between), routing and answering
 * thousands of requests while no timer fired: no tick, no heartbeat, close
 * to the election timeout. So at most `perTurn` client requests are handed
 * to the app per turn; the rest wait, in arrival order, for the next turns.
 * Peer routes (`/raft/...`) are never held: heartbeats and appends go
 * through at once, however many clients are waiting.
 *
 * What is held costs its parsed head and a few bytes of body; how many can
 * wait is bounded by the server's connection cap (a connection sends its
 * next request only once the last one is answered). A request whose client
 * left while it waited is dropped unseen: nothing of it was applied.
 *
 * @module
 */
import type * as http from "node:http";
import { setImmediate } from "node:timers";

/** Client requests handed to the app per event-loop turn, by default. */
export const CLIENT_REQUESTS_PER_TURN = 64;

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

function _urgent(url: string | undefined): boolean {
  return url !== undefined && url.startsWith("/raft/");
}

/** `listener`, handing at most `perTurn` client requests per turn to it (see the module doc). */
export function turnGate(listener: Listener, perTurn = CLIENT_REQUESTS_PER_TURN): Listener {
  const held: [http.IncomingMessage, http.ServerResponse][] = [];
  let head = 0;
  let admitted = 0;
  let scheduled = false;
  const nextTurn = () => {
    scheduled = false;
    admitted = 0;
    while (head < held.length && admitted < perTurn) {
      const [req, res] = held[head]!;
      held[head++] = undefined as never;
      if (req.socket.destroyed) continue;
      admitted++;
      listener(req, res);
    }
    if (head === held.length) {
      held.length = 0;
      head = 0;
    } else {
      schedule();
    }
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(nextTurn);
  };
  return (req, res) => {
    if (_urgent(req.url)) return listener(req, res);
    if (head === held.length && admitted < perTurn) {
      admitted++;
      schedule();
      return listener(req, res);
    }
    held.push([req, res]);
    schedule();
  };
}
