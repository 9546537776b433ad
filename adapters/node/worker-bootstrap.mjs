/**
 * Entry point of a Node worker whose module is TypeScript (run from a
 * checkout; compiled workers start directly): registers tsx's loader in the
 * worker (Node 20 does not carry the parent's `--import` hooks into workers;
 * measured: "Unknown file extension .ts"), then loads the real module.
 *
 * @module
 */
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.moduleUrl);
