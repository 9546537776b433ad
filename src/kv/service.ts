/**
 * The built-in key-value store as a whole service: its state machine and
 * its HTTP API, built from `RaftNodeOptions.kv` wherever the consensus loop
 * runs (`RaftNode.start` in caller mode, the worker in worker mode), so a
 * write is served, proposed, applied and answered on one thread.
 *
 * @module
 */
import type { Hono } from "hono";
import { apiRoutes } from "../api/routes.ts";
import type { KvServiceOptions, RaftNodeApi, StateMachine } from "../node/types.ts";
import { KvStateMachine } from "./state-machine.ts";

/** The state machine and the routes of the built-in KV store. */
export function kvService(opts: KvServiceOptions): { stateMachine: StateMachine; routes: (app: Hono, node: RaftNodeApi) => void } {
  const kv = new KvStateMachine();
  const api = {
    ...(opts.keyBytesMax === undefined ? {} : { keyBytesMax: opts.keyBytesMax }),
    ...(opts.valueBytesMax === undefined ? {} : { valueBytesMax: opts.valueBytesMax }),
    ...(opts.secret === undefined ? {} : { secret: opts.secret }),
    ...(opts.bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs: opts.bodyTimeoutMs }),
  };
  return { stateMachine: kv, routes: (app, node) => void apiRoutes(app, node, kv, api) };
}
