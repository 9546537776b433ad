/**
 * The `raft` command line. Placeholder until the CLI issue lands: it says so
 * and exits non-zero rather than pretend to run a member.
 *
 * @module
 */
import process from "node:process";

console.error("raft: the CLI (start, bootstrap, join, status, put/get) is not built yet; see the README's status section");
process.exit(1);
