/**
 * Free loopback ports for tests that must know a member's URL before it
 * starts (a static bootstrap lists every member's URL).
 *
 * @module
 */
import * as net from "node:net";

/** Returns `count` distinct ports that were free a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
    servers.push(srv);
    ports.push((srv.address() as net.AddressInfo).port);
  }
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  return ports;
}
