/**
 * A longer accept queue for servers whose runtime cannot be asked for one:
 * `Bun.serve` listens with a backlog of 512 and `Deno.serve` with 511, and
 * neither takes a `backlog` option (Bun 1.4's is ignored, Deno 2.9 has
 * none). Under a flood of new connections the kernel then drops the
 * handshakes' last ACKs and the first data segments, which the clients
 * resend with exponential backoff: measured on Bun, requests sent at 0.5 s
 * reached the server after its 10 s idle timeout had already closed their
 * connections, unanswered. Node's `listen({ backlog })` needs none of this
 * (`listenNodeServer`).
 *
 * Linux lets `listen(2)` be called again on a listening socket to change
 * its backlog. The socket is found from the port: the inode of the
 * listening TCP socket in `/proc/net/tcp{,6}`, then the descriptor of this
 * process that points at it in `/proc/self/fd` (every one of them: while a
 * server is re-opened, the old listener may not be closed yet). Anything
 * that does not add up (not Linux, no such socket among this process's
 * descriptors) leaves the runtime's backlog as it was, and says why.
 *
 * @module
 */
import * as fs from "node:fs";

/** The backlog asked for; the kernel caps it at `net.core.somaxconn` (4096 on current kernels). */
export const LISTEN_BACKLOG = 8192;

/** `/proc/net/tcp` state of a listening socket. */
const _TCP_LISTEN = "0A";

/** Inodes of the listening TCP sockets (IPv4 and IPv6) on `port`, from `/proc/net/tcp{,6}`. */
function _listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = fs.readFileSync(file, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== _TCP_LISTEN) continue;
      if (f[1]!.slice(f[1]!.lastIndexOf(":") + 1) === hexPort) inodes.add(f[9]!);
    }
  }
  return inodes;
}

/**
 * This process's descriptors of the listening sockets on `port`, or the
 * reason there are none.
 */
export function listeningSocketFds(port: number): number[] | string {
  const inodes = _listeningInodes(port);
  if (inodes.size === 0) return `no listening TCP socket on port ${port} in /proc/net/tcp`;
  let names: string[];
  try {
    names = fs.readdirSync("/proc/self/fd");
  } catch (err) {
    return `cannot list /proc/self/fd (${(err as Error).message})`;
  }
  const found: number[] = [];
  for (const name of names) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed meanwhile, or the directory's own descriptor
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null && inodes.has(m[1]!)) found.push(Number(name));
  }
  if (found.length === 0) return `none of this process's descriptors is the socket listening on port ${port}`;
  return found;
}

/**
 * Gives the server listening on `port` a backlog of `backlog` through
 * `listen` (the runtime's binding of libc `listen(2)`); returns null, or
 * why it could not (the server keeps the runtime's backlog then).
 */
export function raiseListenBacklog(port: number, backlog: number, listen: (fd: number, backlog: number) => number): string | null {
  const fds = listeningSocketFds(port);
  if (typeof fds === "string") return fds;
  const failed = fds.filter((fd) => listen(fd, backlog) !== 0);
  return failed.length === 0 ? null : `listen(${failed.join(", ")}, ${backlog}) failed`;
}
