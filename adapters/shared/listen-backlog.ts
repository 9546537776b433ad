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
 * descriptors) leaves the runtime's backlog as it was, and says why. The
 * same lookup sets `TCP_DEFER_ACCEPT` on Bun's listeners (`deferAccept`).
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

/** Linux `IPPROTO_TCP` and `TCP_DEFER_ACCEPT` (linux/tcp.h). */
const _IPPROTO_TCP = 6;
const _TCP_DEFER_ACCEPT = 9;

/**
 * How long, in seconds, the kernel keeps a connection that has sent nothing
 * from the server (`deferAccept`); after that it hands it over as it is
 * (measured on Bun: one silent connection reached the server between 55 and
 * 70 s, and Bun closed it at 76 s).
 */
export const DEFER_ACCEPT_SECONDS = 60;

/**
 * Sets `TCP_DEFER_ACCEPT` on the server listening on `port` (through
 * `setsockoptInt`, the runtime's binding of libc `setsockopt(2)` with an
 * `int` value): the kernel hands the server a connection only once its
 * first bytes have arrived, so a connection that opens and sends nothing
 * holds no descriptor and no connection slot of the member; it stays a
 * half-open entry in the kernel's SYN queue (one per connection, no file)
 * until it sends or `DEFER_ACCEPT_SECONDS` pass. Measured before this: under
 * `ulimit -n 1024`, 2,000 such connections kept a Bun member from accepting
 * anyone for 12 s, as long as Bun takes to close them (`Bun.serve` has no
 * connection cap), and a client that kept opening them could keep it so.
 * With it, a write every 250 ms on a new connection succeeded throughout
 * 100 s (longest gap 0.3 s), the minute after which the kernel handed the
 * silent ones over included. Clients send their request as soon as they connect, so
 * they see no difference. Nginx's `listen ... deferred` is the same thing.
 * Returns null, or why it could not (connections are then accepted at once,
 * as before).
 *
 * Only the Bun adapter sets it. Measured under floods of 10,000 new
 * connections (`npm run bench -- hostile`): Bun answered every request 200
 * or 503 in 3 of 3 runs with it; a Node member left 1,482 to 5,433 of
 * 10,000 unanswered after 60 s in 4 of 6 floods (none in 6 without it), a
 * Deno member about 1,000 in 3 of 24 floods (none in 15 without). Why was not
 * established; both accept more slowly than Bun, so their accept queues
 * overflow. Node needs it less (its cap answers the excess 503), and so does
 * Deno (its server is recycled when descriptors run short, which closes
 * idle connections).
 */
export function deferAccept(port: number, setsockoptInt: (fd: number, level: number, name: number, value: number) => number): string | null {
  const fds = listeningSocketFds(port);
  if (typeof fds === "string") return fds;
  const failed = fds.filter((fd) => setsockoptInt(fd, _IPPROTO_TCP, _TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS) !== 0);
  return failed.length === 0 ? null : `setsockopt(${failed.join(", ")}, TCP_DEFER_ACCEPT) failed`;
}
