/**
 * Contract tests every runtime adapter must pass: the directory lock (also
 * across runtimes and after SIGKILL), serving on port 0 and closing, a
 * request that times out, a worker echoing a transferred buffer, and the
 * machine-wide monotonic clock.
 *
 * @module
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Hono } from "hono";
import { runtime } from "../../adapters/mod.ts";
import { InvalidArgumentError, LockedError, TimeoutError } from "../../src/errors.ts";
import { runCommand, RUNTIMES } from "../helpers/runtimes.ts";
import { exited, trackExit, waitFor, waitForLine } from "../helpers/wait.ts";
import { IdleConnections, rawRequest } from "../helpers/raw-http.ts";
import { serveLimits } from "../../adapters/shared/serve-limits.ts";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), `raft-adapter-${runtime.name}-`));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
const fixture = (name: string) => path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", name);

describe(`adapter (${runtime.name})`, () => {
  it("lockDir() creates a missing directory and refuses a second taker in this process", () => {
    const dir = path.join(tmpRoot, "a", "b");
    const lock = runtime.lockDir(dir);
    assert.ok(fs.statSync(dir).isDirectory());
    assert.equal(fs.readFileSync(path.join(dir, "LOCK"), "utf8").trim(), String(process.pid));
    assert.throws(() => runtime.lockDir(dir), (err: unknown) => err instanceof LockedError && err.dir === dir && err.holderPid === process.pid);
    lock.release();
    runtime.lockDir(dir).release();
  });

  it("lockDir() names a path that is a file, or a directory it cannot write", () => {
    const file = path.join(tmpRoot, "plain-file");
    fs.writeFileSync(file, "x");
    assert.throws(() => runtime.lockDir(file), (err: unknown) => err instanceof InvalidArgumentError && err.message.includes(file));
    if (process.getuid?.() !== 0) {
      const ro = path.join(tmpRoot, "read-only");
      fs.mkdirSync(ro, { mode: 0o500 });
      assert.throws(() => runtime.lockDir(ro), (err: unknown) => err instanceof InvalidArgumentError && err.message.includes(ro));
    }
  });

  for (const holder of RUNTIMES) {
    it(`a lock held by a ${holder} process refuses this ${runtime.name} process at once and is released by SIGKILL`, async () => {
      const dir = path.join(tmpRoot, `held-by-${holder}`);
      const [cmd, args] = runCommand(holder, fixture("hold-lock.ts"), [dir]);
      const child = trackExit(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
      try {
        const line = await waitForLine(child, /^locked \d+/, `the ${holder} child to take the lock on ${dir}`, 30_000);
        const pid = Number(line.split(" ")[1]);
        assert.throws(() => runtime.lockDir(dir), (err: unknown) => err instanceof LockedError && err.holderPid === pid && err.message.includes(dir));
      } finally {
        child.kill("SIGKILL");
        await exited(child);
      }
      // The OS dropped the lock with the process: we get it now.
      runtime.lockDir(dir).release();
    });
  }

  it("a lock held here refuses a child process on every runtime", async () => {
    const dir = path.join(tmpRoot, "held-here");
    const lock = runtime.lockDir(dir);
    try {
      for (const taker of RUNTIMES) {
        const [cmd, args] = runCommand(taker, fixture("hold-lock.ts"), [dir]);
        const child = trackExit(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }));
        const line = await waitForLine(child, /^(refused|locked)/, `the ${taker} child to try the lock`, 30_000);
        child.kill("SIGKILL");
        await exited(child);
        assert.match(line, /^refused LockedError: .*locked by another process \(pid \d+\)/, `taker ${taker}`);
      }
    } finally {
      lock.release();
    }
  });

  it("serve() binds port 0, answers, and close() stops it with keep-alive connections open", async () => {
    const app = new Hono();
    app.post("/echo", async (c) => c.body(new Uint8Array(await c.req.arrayBuffer())));
    const server = await runtime.serve(app, "127.0.0.1", 0);
    assert.ok(server.port > 0);
    const client = runtime.httpClient();
    const body = new Uint8Array([1, 2, 3, 250]);
    const inflight = await Promise.all(
      Array.from({ length: 20 }, () => client.request({ method: "POST", url: `http://127.0.0.1:${server.port}/echo`, body, timeoutMs: 10_000 })),
    );
    for (const res of inflight) {
      assert.equal(res.status, 200);
      assert.deepEqual(Array.from(res.body), [1, 2, 3, 250]);
    }
    await server.close();
    await assert.rejects(client.request({ method: "POST", url: `http://127.0.0.1:${server.port}/echo`, body, timeoutMs: 2_000 }));
    client.close();
  });

  it("serve() answers a connection past its cap 503 without reading the request, and serves again once one goes", {
    skip: runtime.name === "node" ? false : `${runtime.name}'s server has no connection cap (the README says what each runtime enforces)`,
  }, async () => {
    let served = 0;
    const app = new Hono();
    app.put("/x", async (c) => {
      served++;
      return c.text(await c.req.text());
    });
    const server = await runtime.serve(app, "127.0.0.1", 0, serveLimits({ maxConnections: 3 }));
    // Request heads that never end hold a connection on every runtime (one that sends nothing would not on Bun).
    const idle = await IdleConnections.open(server.port, 3, true);
    const put = () => rawRequest(server.port, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv", 5000);
    try {
      await waitFor("the idle connections to connect", () => idle.connected === 3, 5000);
      const over = await put();
      assert.equal(over.status, 503, over.text);
      assert.match(over.text, /\r\nretry-after: 1\r\n/i);
      assert.match(over.text, /"outcome":"not-applied"/);
      assert.equal(served, 0);
      idle.close();
      await waitFor("a slot to free up", async () => (await put()).status === 200, 5000);
      assert.equal(served, 1);
    } finally {
      idle.close();
      await server.close();
    }
  });

  // Bun.serve and Deno.serve listen with 511-512 and take no option for it; under a flood the
  // connections the kernel dropped arrived after Bun's idle timeout and were closed unanswered.
  it("serve() queues a burst of 1,500 connections while the process cannot accept (a backlog over the runtimes' 512)", { skip: process.platform !== "linux" }, async () => {
    const server = await runtime.serve(new Hono(), "127.0.0.1", 0);
    const burst = 1500;
    // A Node child opens the connections while this process blocks its event loop; each sends a request
    // at once (on Bun one that sent nothing would wait in the SYN queue, not the accept queue: TCP_DEFER_ACCEPT).
    const child = trackExit(spawn("node", ["-e", `
      const net = require("node:net");
      const held = [];
      for (let i = 0; i < ${burst}; i++) {
        const s = net.connect(${server.port}, "127.0.0.1").on("error", () => {});
        s.on("connect", () => s.write("GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"));
        held.push(s);
      }
      setInterval(() => {}, 1000);
    `], { stdio: "ignore" }));
    let queued = 0;
    try {
      // The kernel's accept queue of the listening socket (/proc/net/tcp: rx_queue of a LISTEN entry).
      const hexPort = `:${server.port.toString(16).toUpperCase().padStart(4, "0")}`;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      const until = Date.now() + 8000;
      while (Date.now() < until && queued < burst) {
        for (const line of fs.readFileSync("/proc/net/tcp", "latin1").split("\n")) {
          const f = line.trim().split(/\s+/);
          if (f[3] === "0A" && f[1]!.endsWith(hexPort)) queued = Math.max(queued, parseInt(f[4]!.split(":")[1]!, 16));
        }
        Atomics.wait(pause, 0, 0, 20);
      }
    } finally {
      child.kill("SIGKILL");
      await exited(child);
      await server.close();
    }
    assert.ok(queued > 1000, `the accept queue of port ${server.port} held at most ${queued} of ${burst} connections`);
  });

  // Bun only (listen-backlog.ts deferAccept says why not the others).
  it("serve() hands the server no connection until it sends: 1,000 that send nothing hold no descriptor of this process, and a request is served", {
    skip: process.platform !== "linux" ? "Linux only" : runtime.name === "bun" ? false : `${runtime.name} accepts at once (its listener has no TCP_DEFER_ACCEPT)`,
  }, async () => {
    const app = new Hono();
    app.get("/x", (c) => c.text("ok"));
    const server = await runtime.serve(app, "127.0.0.1", 0);
    const before = fs.readdirSync("/proc/self/fd").length;
    const idle = await IdleConnections.open(server.port, 1000);
    try {
      await waitFor("the connections to connect", () => idle.connected === 1000, 10_000);
      // Time for the server to accept what the kernel would hand it (Bun took over half a second for 1,000).
      await new Promise((r) => setTimeout(r, 2000));
      // This process holds the 1,000 client ends; the server's ends would be 1,000 more.
      const accepted = fs.readdirSync("/proc/self/fd").length - before - 1000;
      assert.ok(accepted < 50, `the server took ${accepted} of 1,000 connections that sent nothing (port ${server.port})`);
      const r = await rawRequest(server.port, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5000);
      assert.equal(r.status, 200);
    } finally {
      idle.close();
      await server.close();
    }
  });

  it("monotonicNs() is the machine's monotonic clock, the one another process reads (the write tracer lines members up on it)", async () => {
    // A Node child's process.hrtime is CLOCK_MONOTONIC; a clock counting from this process's start would read far below it.
    const t0 = runtime.monotonicNs();
    const child = trackExit(spawn("node", ["-e", "console.log(String(process.hrtime.bigint()))"], { stdio: ["ignore", "pipe", "inherit"] }));
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await exited(child);
    const t1 = runtime.monotonicNs();
    const theirs = BigInt(out.trim());
    assert.ok(t0 <= theirs && theirs <= t1, `the child read ${theirs} ns, not between ${t0} and ${t1} read here`);
    assert.ok(runtime.monotonicNs() >= t1, "it never goes back");
  });

  it("fileWritesBlock: where it says node:fs writes block, each write is in the file when fs.write returns", { skip: !runtime.fileWritesBlock }, async () => {
    // The log opens its segments without O_DSYNC where this holds (start.ts): a write that blocked the
    // thread through the disk flush would hold up every send. Should the runtime move its writes off
    // the thread, this test fails and the adapter's flag must change.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raft-writes-block-"));
    try {
      const fd = fs.openSync(path.join(dir, "f"), "w+");
      const read = new Uint8Array(8);
      const written: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) {
        const data = new Uint8Array(8).fill(i + 1);
        written.push(new Promise<void>((resolve, reject) => fs.write(fd, data, 0, 8, i * 8, (err) => (err ? reject(err) : resolve()))));
        assert.equal(fs.readSync(fd, read, 0, 8, i * 8), 8, `write ${i} was in the file as fs.write returned`);
        assert.deepEqual([...read], [...data]);
      }
      await Promise.all(written);
      fs.closeSync(fd);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a request to a server that never answers rejects with TimeoutError", async () => {
    const app = new Hono();
    app.get("/hang", () => new Promise<Response>(() => {}));
    const server = await runtime.serve(app, "127.0.0.1", 0);
    const client = runtime.httpClient();
    try {
      await assert.rejects(client.request({ method: "GET", url: `http://127.0.0.1:${server.port}/hang`, timeoutMs: 200 }), TimeoutError);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("a worker echoes a transferred buffer", async () => {
    const worker = runtime.startWorker(new URL("./fixtures/echo-worker.ts", import.meta.url));
    try {
      const buf = new ArrayBuffer(1 << 20);
      const reply = new Promise<{ buf: ArrayBuffer; byteLength: number }>((resolve) => worker.onMessage((m) => resolve(m as { buf: ArrayBuffer; byteLength: number })));
      worker.postMessage({ buf }, [buf]);
      const got = await reply;
      assert.equal(buf.byteLength, 0, "the buffer was moved to the worker, not copied");
      assert.equal(got.byteLength, 1 << 20);
      assert.equal(new Uint8Array(got.buf)[0], 42);
    } finally {
      await worker.terminate();
    }
  });

  it("a worker that throws is reported through onError", async () => {
    const worker = runtime.startWorker(new URL("./fixtures/echo-worker.ts", import.meta.url));
    const failed = new Promise<Error>((resolve) => worker.onError(resolve));
    worker.postMessage({ crash: true });
    const err = await failed;
    assert.match(err.message, /crash|exited/);
    await worker.terminate();
  });
});
