/**
 * Real `raft start` processes for end-to-end tests: ports from the free-port
 * helper, temp data directories, stderr kept so a failing test can print
 * the ports, directories and the members' last log lines.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { REPO_ROOT } from "../helpers/runtimes.ts";
import type { RuntimeName } from "../helpers/runtimes.ts";
import { exited, trackExit, waitFor } from "../helpers/wait.ts";
import { freePorts } from "../helpers/ports.ts";
import { runtime } from "../../adapters/mod.ts";
import type { HttpClient, TlsClientOptions } from "../../adapters/types.ts";
import { cliCommand } from "./run-cli.ts";

/** One member process (and its data directory, which outlives restarts). */
export class MemberProcess {
  child: ChildProcess | null = null;
  /** Every stderr line of every run, in order. */
  readonly log: string[] = [];
  exitCode: number | null = null;

  /** With TLS: what the test trusts and presents when it talks to this member (its URL is then https://). */
  tls: TlsClientOptions | null = null;
  #client: HttpClient | null = null;

  constructor(readonly id: string, readonly port: number, readonly dir: string, readonly rt: RuntimeName) {}

  get url(): string {
    return `${this.tls === null ? "http" : "https"}://127.0.0.1:${this.port}`;
  }

  /** Starts `raft start ARGS`; with `fileLimit`, under `ulimit -n fileLimit` (soft and hard). */
  start(args: readonly string[], opts: { fileLimit?: number } = {}): void {
    if (this.child !== null) throw new Error(`member ${this.id} is already running`);
    let [cmd, argv] = cliCommand(this.rt, ["start", ...args]);
    if (opts.fileLimit !== undefined) [cmd, argv] = ["sh", ["-c", `ulimit -n ${opts.fileLimit} && exec "$0" "$@"`, cmd, ...argv]];
    const child = trackExit(spawn(cmd, argv, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1" } }));
    this.log.push(`--- ${this.rt}: raft start ${args.join(" ")}${opts.fileLimit === undefined ? "" : ` (ulimit -n ${opts.fileLimit})`}`);
    let partial = "";
    child.stderr!.on("data", (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      this.log.push(...lines);
    });
    child.on("exit", (code) => {
      if (partial !== "") this.log.push(partial);
      this.log.push(`--- exited with ${code}`);
      this.exitCode = code;
    });
    this.child = child;
    this.exitCode = null;
  }

  /**
   * Waits until this run of the member logs that it serves (after a join:
   * once it is a voter). Polling its port before that could race
   * RaftNode.start mounting its routes (see the report: a request in that
   * window fails the start).
   */
  ready(timeoutMs = 30_000): Promise<void> {
    const from = this.log.lastIndexOf(this.log.findLast((l) => l.startsWith("--- ")) ?? "");
    return waitFor(`${this.id} to serve`, () => {
      if (this.child === null) throw new Error(`${this.id} exited (${this.exitCode})`);
      return this.log.slice(from).some((l) => / serving the KV store at /.test(l));
    }, timeoutMs).then(() => {});
  }

  /** Sends `signal` and waits for the process to be gone. */
  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill(signal);
    await exited(child);
    this.child = null;
  }

  /** Waits for the process to exit by itself; returns its exit code. */
  async waitExit(): Promise<number | null> {
    const child = this.child;
    if (child === null) return this.exitCode;
    await exited(child);
    this.child = null;
    return this.exitCode;
  }

  /** Closes the keep-alive connections `status()` opened over TLS. */
  closeClient(): void {
    this.#client?.close();
    this.#client = null;
  }

  /** This member's `/status`, or null if it does not answer. */
  async status(): Promise<Record<string, unknown> | null> {
    if (this.tls !== null) {
      this.#client ??= runtime.httpClient(this.tls);
      try {
        const res = await this.#client.request({ method: "GET", url: `${this.url}/status`, timeoutMs: 2000 });
        return res.status === 200 ? (JSON.parse(new TextDecoder().decode(res.body)) as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    }
    try {
      const res = await fetch(`${this.url}/status`, { signal: AbortSignal.timeout(2000) });
      if (res.status !== 200) return null;
      return (await res.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }
}

/** A set of members on loopback, on one runtime. */
export class Cluster {
  readonly members: MemberProcess[] = [];
  private constructor(readonly root: string) {}

  /** Ports and data directories for `ids`, nothing started yet; with `tls`, members are reached over https with it. */
  static async create(ids: readonly string[], rt: RuntimeName | readonly RuntimeName[], tls: TlsClientOptions | null = null): Promise<Cluster> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "raft-e2e-"));
    const c = new Cluster(root);
    const ports = await freePorts(ids.length);
    ids.forEach((id, i) => {
      const m = new MemberProcess(id, ports[i]!, path.join(root, id), typeof rt === "string" ? rt : rt[i]!);
      m.tls = tls;
      c.members.push(m);
    });
    return c;
  }

  member(id: string): MemberProcess {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  /** The member that says it leads (highest term), among those that answer. */
  async leader(among: readonly MemberProcess[] = this.members): Promise<MemberProcess | null> {
    let best: { m: MemberProcess; term: number } | null = null;
    for (const m of among) {
      if (m.child === null) continue;
      const s = await m.status();
      if (s?.role === "leader" && (best === null || (s.term as number) > best.term)) best = { m, term: s.term as number };
    }
    return best?.m ?? null;
  }

  /** Waits until a leader answers among `among`. */
  waitLeader(among: readonly MemberProcess[] = this.members, timeoutMs = 20_000): Promise<MemberProcess> {
    return waitFor("a leader", async () => (await this.leader(among)) ?? undefined, timeoutMs);
  }

  /** What to print when a test fails: ports, directories, each member's last log lines. */
  diagnostics(tail = 40): string {
    const parts = [`data under ${this.root}`];
    for (const m of this.members) {
      parts.push(`== ${m.id}: ${m.url} (port ${m.port}), data ${m.dir}, ${m.child === null ? `not running (last exit ${m.exitCode})` : `pid ${m.child.pid}`}`);
      parts.push(...m.log.slice(-tail).map((l) => `   ${l}`));
    }
    return parts.join("\n");
  }

  /** Kills whatever still runs and removes the data. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop("SIGKILL")));
    for (const m of this.members) m.closeClient();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
