/**
 * Where a member may listen: without a secret, only on loopback addresses
 * (only this machine can reach them), unless the caller says otherwise.
 * Checked by `RaftNode.start` itself, so an embedding program gets the
 * same protection as the CLI.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";

/** Whether `host` is a loopback address (only this machine can reach it). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Refuses to listen beyond this machine without a secret: anyone who can
 * reach the port could then act as a member (and read and write through
 * the user's routes), unless the caller says so with `insecure`.
 *
 * @throws InvalidArgumentError for a non-loopback `host` without TLS, a `secret` or `insecure`
 */
export function checkListenHost(host: string, secret: Uint8Array | undefined, insecure: boolean | undefined, tls = false): void {
  if (secret === undefined && !tls && insecure !== true && !isLoopbackHost(host)) {
    throw new InvalidArgumentError(`Refusing to listen on ${host} without TLS or a secret: anyone who can reach it could act as a member; give tls (with a ca), a secret, or insecure: true`);
  }
}
