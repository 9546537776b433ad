/**
 * Node entry of the `raft` command: registers tsx's TypeScript loader (found
 * wherever npm installed tsx) and runs cli.ts in this same process.
 *
 * @module
 */
import { register } from "tsx/esm/api";

register();
await import("../cli.ts");
