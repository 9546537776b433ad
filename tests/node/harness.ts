/**
 * Starts fixture members (`fixtures/member.ts`) as real processes on
 * loopback with real data directories, and talks to them over HTTP. On a
 * test failure `describe()` prints every member's ports, data directory and
 * the tail of its stderr, which is what reproduces it.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand, type RuntimeName } from "../helpers/runtimes.ts";
import { exited, trackExit, waitFor, waitForLine } from "../helpers/wait.ts";

const FIXTURE = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "member.ts");

/** One member process. */
export interface Member {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly rt: RuntimeName;
  child: ChildProcess | null;
  stderr: string;
}

/** A set of members under one temp directory. */
export class Harness {
  readonly root: string;
  readonly members = new Map<string, Member>();

  constructor(name: string) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `raft-e2e-${name}-`));
  }

  /** Starts (or restarts) member `id` with the fixture's flags. */
  async start(id: string, port: number, rt: RuntimeName, args: readonly string[]): Promise<Member> {
    const dataDir = path.join(this.root, id);
    let m = this.members.get(id);
    if (m === undefined) {
      m = { id, port, url: `http://127.0.0.1:${port}`, dataDir, rt, child: null, stderr: "" };
      this.members.set(id, m);
    }
    const [cmd, cmdArgs] = runCommand(rt, FIXTURE, ["--data", dataDir, ...args]);
    const child = trackExit(spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"] }));
    const member = m;
    member.child = child;
    child.stderr!.on("data", (d: Buffer) => {
      member.stderr = (member.stderr + d.toString()).slice(-20_000);
    });
    await waitForLine(child, /^ready /, `member ${id} (${rt}, port ${port}, data ${dataDir}) to start`, 60_000);
    return member;
  }

  /** SIGKILLs member `id` and waits until it is gone. */
  async kill(id: string): Promise<void> {
    const m = this.members.get(id)!;
    if (m.child === null) return;
    m.child.kill("SIGKILL");
    await exited(m.child);
    m.child = null;
  }

  /** GET/POST JSON on member `id`. */
  async call<T>(id: string, method: "GET" | "POST", p: string, body?: string): Promise<{ status: number; json: T }> {
    const m = this.members.get(id)!;
    const res = await fetch(`${m.url}${p}`, { method, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let json: T;
    try {
      json = JSON.parse(text) as T;
    } catch {
      json = { raw: text } as T;
    }
    return { status: res.status, json };
  }

  /** Waits until one of `ids` reports itself leader; returns its id. */
  async leader(ids: readonly string[], timeoutMs = 30_000): Promise<string> {
    return await waitFor(`a leader among ${ids.join(", ")}`, async () => {
      for (const id of ids) {
        try {
          const { json } = await this.call<{ role: string }>(id, "GET", "/st");
          if (json.role === "leader") return id;
        } catch {
          // not up (yet)
        }
      }
      return undefined;
    }, timeoutMs);
  }

  /** What member `id` has applied: [index, data] pairs. */
  async applied(id: string): Promise<[number, string][]> {
    return (await this.call<{ applied: [number, string][] }>(id, "GET", "/applied")).json.applied;
  }

  /** Ports, data dirs and stderr tails of every member, for failure messages. */
  describe(): string {
    return [...this.members.values()].map((m) =>
      `--- ${m.id} (${m.rt}) ${m.url} data=${m.dataDir} ${m.child === null ? "(not running)" : `pid ${m.child.pid}`}\n${m.stderr.split("\n").slice(-25).join("\n")}`
    ).join("\n");
  }

  /** Kills every member and removes the temp directory (kept when `keep`). */
  async stop(keep: boolean): Promise<void> {
    for (const id of this.members.keys()) await this.kill(id);
    if (!keep) fs.rmSync(this.root, { recursive: true, force: true });
  }
}
