/**
 * The `raft` command line: runs a member serving the built-in KV store
 * (`start`), prepares data directories for a static cluster (`bootstrap`),
 * and talks to a running cluster over its HTTP API (`status`, `members`,
 * `transfer`, `leave`, `health`, `put`, `get`, `del`, `cas`). It parses, calls, and
 * prints; the protocol lives in src/. Client commands find the cluster in
 * `--cluster`, else in the `RAFT_CLUSTER` environment variable, else at
 * http://127.0.0.1:7000.
 *
 * Exit codes: 0 success; 1 the operation failed (cluster unreachable, a
 * refusal, no leader for `status`); 2 bad usage (unknown command or flag,
 * missing or malformed value: a one-line error, then the usage); 3 a
 * condition did not hold (`get`: no such key; `cas`: the value differed).
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ApiClient, replyMessage } from "./src/api/client.ts";
import type { ClientResponse } from "./src/api/client.ts";
import { KEY_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT } from "./src/api/kv-routes.ts";
import { formatStatus, gatherStatus, statusFetcher, statusJson } from "./src/api/status-report.ts";
import { formatTable } from "./src/api/status-report.ts";
import { checkBaseUrl, checkHostPort, checkMemberAddress, checkMemberId, isLoopbackHost } from "./src/api/validate.ts";
import { InvalidArgumentError } from "./src/errors.ts";
import type { RaftNode } from "./src/node/raft-node.ts";
import type { TlsClientOptions } from "./adapters/types.ts";
import { CLIENT_TLS_FLAGS, clientTlsFromFlags, memberTlsFiles, readMemberTls, reloadTlsOnChange, START_TLS_FLAGS } from "./src/api/cli-tls.ts";
import type { TlsFiles } from "./src/node/identity.ts";
import type { NodeEvent, RaftNodeOptions, TlsOptions } from "./src/node/types.ts";
import type { Member } from "./src/raft/types.ts";
import { VERSION } from "./src/version.ts";

const DEFAULT_CLUSTER = "http://127.0.0.1:7000";
/** The environment variable that stands in for --cluster (as ETCDCTL_ENDPOINTS does for etcdctl). */
const CLUSTER_ENV = "RAFT_CLUSTER";
const CLIENT_FLAGS = `  --cluster URL[,URL...]  any member(s) of the cluster; HOST:PORT means http://HOST:PORT
                          (default: $${CLUSTER_ENV}, else ${DEFAULT_CLUSTER})
  --token-file FILE       the client token (from raft token), sent as a bearer token
  --secret-file FILE      the cluster secret: the client token is derived from it here (the secret is never sent)
  --timeout SECONDS       give up after this long, retries included
  --cacert FILE           trust members' certificates signed by this CA (https:// URLs)
  --cert FILE, --key FILE present this client certificate (members with --client-cert-auth)
  --insecure-skip-tls-verify  do not check members' certificates (for tests only)`;

const USAGE: Record<string, string> = {
  raft: `usage: raft COMMAND [options]   (raft COMMAND --help for details)

commands:
  start       run a member serving the built-in KV store
  bootstrap   prepare a data directory for a static multi-member cluster
  snapshot    save, check and restore backups (save, status, restore); snapshot and compact now (take)
  status      show every member's role, term, indexes and lag, and what is wrong
  health      ask every member whether it is healthy (exit code 0 only when all are)
  members     list, add or remove members
  transfer    hand leadership to another member
  leave       remove the member at --cluster from its cluster, cleanly
  put, get, del, cas   write, read and delete keys
  token       print the client token of a cluster secret (what clients need instead of the secret)
  version     print the version (also: raft --version)`,
  start: `usage: raft start --id ID --data DIR --listen HOST:PORT [--advertise URL] [--bootstrap | --join URL[,URL...]]
                  [--listen-client HOST:PORT] [--secret-file FILE] [--insecure] [--log-format text|json]
                  [--cert-file FILE --key-file FILE [--trusted-ca-file FILE [--client-cert-auth]]]
       raft start --data DIR              (restart with the saved identity and address)

  --id ID               this member's id (letters, digits, . _ -)
  --data DIR            its data directory (locked while it runs)
  --listen HOST:PORT    where to listen for peers and clients
  --listen-client HOST:PORT  also serve clients here, apart from peer traffic (as etcd's client URLs)
  --advertise URL       the URL others use to reach it (default http://HOST:PORT)
  --bootstrap           start a new single-member cluster (ignored if DIR already holds one)
  --join URL[,URL...]   ask a running cluster (any member; HOST:PORT means http://HOST:PORT) to add this
                        member; retries while none answers (10 minutes at most), stops at once on a server
                        that is not a raft member
  --secret-file FILE    cluster secret (mode 0600): peers sign RPCs with it; clients need the token
                        derived from it (raft token), never the secret
  --cert-file FILE      serve HTTPS with this certificate (it should name the advertised host);
  --key-file FILE         its key. The member's URL is then https://; re-read on SIGHUP and when changed
  --trusted-ca-file FILE  members' certificates must be signed by this CA, both ways (mutual TLS)
  --client-cert-auth    clients too must present a certificate signed by that CA
  --insecure            allow listening on a non-loopback address without TLS or a secret
  --force-new-cluster   UNSAFE recovery after losing quorum: restart this member (raft start --data DIR
                        --force-new-cluster) as the only voter, with what it knows to be committed; later
                        entries are dropped and the other members removed (logged); add new ones with --join
  --log-format FORMAT   text (default) or json, one line per message or event on stderr; JSON lines carry
                        ts, level (info|warn|error), member, msg, and for events event plus its fields
  --max-key-bytes N     longest key accepted (default ${KEY_BYTES_MAX_DEFAULT})
  --max-value-bytes N   largest value accepted (default ${VALUE_BYTES_MAX_DEFAULT})
  --snapshot-log-bytes N  snapshot the store and compact the log once it holds N bytes (default 64 MiB)
  --thread worker|caller  where the consensus loop runs (default worker: its own thread)
  --min-free-bytes N    refuse new entries (507) while the data directory's disk has less free (default 64 MiB)
  --max-client-requests N   client requests served at once per listener; the excess gets 503 (default 1024)
  --request-timeout SECONDS  a request's head must arrive within min(10, SECONDS), its body within
                        SECONDS (default 30); idle connections close after min(5, SECONDS)`,
  bootstrap: `usage: raft bootstrap --data DIR --id ID --members ID=URL,ID=URL,... [--listen HOST:PORT]

Prepares DIR for member ID of a new static cluster; run it once per member with the same
--members list, then start each with raft start --data DIR.
  --listen HOST:PORT    where it will listen (default: the host and port of its own URL)`,
  snapshot: `usage: raft snapshot save FILE [client options]
       raft snapshot status FILE [--json]
       raft snapshot restore FILE --data DIR --id ID --members ID=URL,ID=URL,... [--listen HOST:PORT]
       raft snapshot take [client options]

save     streams a backup of the state machine of the member at --cluster (one member) as of one
         committed index, with its index, term, membership and checksums, into FILE (written to
         FILE.part, fsynced, checked, then renamed); a progress bar on a terminal, lines otherwise
status   checks FILE whole and prints its index, term, size, checksum and members; refuses a damaged
         file, naming the offset
restore  prepares DIR (new or empty) for member ID of a new cluster holding FILE's data; run it once
         per member with the same --members list (they get the same new cluster id), then start each
         with raft start --data DIR
take     makes the member at --cluster snapshot its state machine now and compact its log
  --json                  status as JSON
  --listen HOST:PORT      restore: where it will listen (default: the host and port of its own URL)
${CLIENT_FLAGS}`,
  status: `usage: raft status [--json] [client options]

Asks every member for its status and prints a table; says what is wrong, if anything.
Exit code 0 only when a leader is known.
  --json                  machine-readable output
${CLIENT_FLAGS}`,
  health: `usage: raft health [--json] [client options]

Finds every member (from the membership any --cluster URL reports, plus the URLs given) and asks each
for GET /health: one row per URL with HEALTHY, how long the answer TOOK and the REASON when unhealthy.
A member that does not answer is unhealthy, its reason the error. Exit code 0 only when all are healthy.
  --json                  machine-readable output: [{"url", "id", "healthy", "reason", "tookMs"}]
${CLIENT_FLAGS}`,
  members: `usage: raft members [list] [--json] [client options]
       raft members add ID URL [client options]    (waits until it is caught up and promoted)
       raft members remove ID [client options]

  --json                  list as JSON: {"leader": {"id", "url"} | null, "members": [{"id", "url", "voter"}]}
${CLIENT_FLAGS}`,
  transfer: `usage: raft transfer [ID] [client options]

Hands leadership to ID (default: the most caught-up voter).
${CLIENT_FLAGS}`,
  leave: `usage: raft leave --cluster URL [client options]

Removes the member at URL from its cluster (handing over leadership first if it leads).
${CLIENT_FLAGS}`,
  put: `usage: raft put KEY VALUE [client options]\n${CLIENT_FLAGS}`,
  get: `usage: raft get KEY [--stale] [client options]

Prints the value (exit code 3 if the key is absent). --stale reads the member's local copy.
${CLIENT_FLAGS}`,
  del: `usage: raft del KEY [client options]\n${CLIENT_FLAGS}`,
  token: `usage: raft token --secret-file FILE

Prints the client token of the cluster secret in FILE: clients send it as Authorization: Bearer TOKEN
(or read it with --token-file). It lets them use the client API, and cannot sign peer requests.`,
  cas: `usage: raft cas KEY VALUE (--expect OLD | --absent) [client options]

Sets KEY to VALUE only if its value is OLD (or it is absent); exit code 3 if not.
${CLIENT_FLAGS}`,
};

/** How a command ends early: exit code, message, and whether the usage follows. */
class CliExit extends Error {
  constructor(readonly code: number, message: string, readonly usageOf: string | null = null) {
    super(message);
  }
}

const usageError = (cmd: string, message: string) => new CliExit(2, message, cmd);

function writeOut(stream: NodeJS.WriteStream, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => stream.write(data, () => resolve()));
}

type Values = Record<string, string | boolean | undefined>;
type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

const CLIENT_OPTIONS: OptionSpec = {
  cluster: { type: "string" },
  "secret-file": { type: "string" },
  "token-file": { type: "string" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
  ...CLIENT_TLS_FLAGS,
};

/** Strict `parseArgs`; its errors become a one-line usage error. */
function parse(cmd: string, args: readonly string[], options: OptionSpec, positionals: [number, number]): { values: Values; positionals: string[] } | null {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as { values: Values; positionals: string[] };
  } catch (err) {
    const message = err instanceof Error ? err.message.split("\n")[0]!.replace(/\. To specify a positional argument.*$/, "") : String(err);
    throw usageError(cmd, message);
  }
  if (parsed.values.help === true) return null;
  const [min, max] = positionals;
  if (parsed.positionals.length < min) throw usageError(cmd, `Missing argument${min - parsed.positionals.length > 1 ? "s" : ""}`);
  if (parsed.positionals.length > max) throw usageError(cmd, `Unexpected argument ${JSON.stringify(parsed.positionals[max])}`);
  return parsed;
}

function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === "string" ? x : undefined;
}

/** Reads a credential file, refusing one that other users can read (as ssh does for private keys). */
function readCredential(cmd: string, file: string, what: string): string {
  let text: string;
  try {
    if (process.platform !== "win32") {
      const mode = fs.statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw usageError(cmd, `The ${what} file ${file} can be read by other users (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 600 ${file}`);
      }
    }
    text = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    if (err instanceof CliExit) throw err;
    throw usageError(cmd, `Cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text;
}

function readSecret(cmd: string, file: string | undefined): string | null {
  if (file === undefined) return null;
  const text = readCredential(cmd, file, "secret");
  if (!/^[\x21-\x7e]{16,}$/.test(text)) {
    throw usageError(cmd, `The secret in ${file} must be at least 16 visible ASCII characters without spaces (e.g. from: openssl rand -hex 32)`);
  }
  return text;
}

/** The client token: read from --token-file, or derived here from --secret-file (whose secret is never sent). */
async function clientToken(cmd: string, v: Values): Promise<string | null> {
  const tokenFile = str(v, "token-file");
  const secretFile = str(v, "secret-file");
  if (tokenFile !== undefined && secretFile !== undefined) throw usageError(cmd, "Give --token-file or --secret-file, not both");
  if (tokenFile !== undefined) {
    const token = readCredential(cmd, tokenFile, "token");
    if (!/^[\x21-\x7e]{16,}$/.test(token)) throw usageError(cmd, `The token in ${tokenFile} must be the one raft token prints`);
    return token;
  }
  const secret = readSecret(cmd, secretFile);
  if (secret === null) return null;
  const { clientTokenFor } = await import("./src/transport/credentials.ts");
  return clientTokenFor(new TextEncoder().encode(secret));
}

function positiveNumber(cmd: string, flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) throw usageError(cmd, `--${flag} needs a positive number, got ${JSON.stringify(v)}`);
  return n;
}

/** The members to talk to: --cluster, else $RAFT_CLUSTER, else the default; each a URL or HOST:PORT. */
function clusterUrls(cmd: string, v: Values): string[] {
  const flag = str(v, "cluster");
  const env = process.env[CLUSTER_ENV]?.trim();
  const [list, what] = flag !== undefined ? [flag, "--cluster URL"] : env !== undefined && env !== "" ? [env, `${CLUSTER_ENV} URL`] : [DEFAULT_CLUSTER, "URL"];
  const urls: string[] = [];
  for (const u of list.split(",")) {
    const c = checkMemberAddress(u.trim(), what);
    if (!c.ok) throw usageError(cmd, c.error);
    urls.push(c.value);
  }
  return urls;
}

async function clientFor(cmd: string, v: Values, defaultTimeoutS = 10): Promise<ApiClient> {
  const urls = clusterUrls(cmd, v);
  const timeoutMs = positiveNumber(cmd, "timeout", str(v, "timeout"), defaultTimeoutS) * 1000;
  const tls = clientTls(cmd, v);
  return new ApiClient({ urls, secret: await clientToken(cmd, v), timeoutMs, ...(tls === null ? {} : { tls }) });
}

/** What a client command trusts and presents over TLS, or null; warns on stderr when checks are off. */
function clientTls(cmd: string, v: Values): TlsClientOptions | null {
  let tls: TlsClientOptions | null;
  try {
    tls = clientTlsFromFlags(v);
  } catch (err) {
    throw usageError(cmd, (err as Error).message);
  }
  if (tls?.insecureSkipVerify === true) {
    process.stderr.write("raft: warning: --insecure-skip-tls-verify: the members' certificates are not checked (anyone in the middle can read and change this traffic); use it for tests only\n");
  }
  return tls;
}

/** Turns a reply other than the expected one into exit code 1 with the member's message. */
function failed(what: string, r: { ok: true; res: ClientResponse } | { ok: false; error: string }): CliExit {
  if (!r.ok) return new CliExit(1, r.error);
  return new CliExit(1, `${what} failed: ${replyMessage(r.res)} (HTTP ${r.res.status} from ${r.res.url})`);
}

function jsonOf(res: ClientResponse): Record<string, unknown> {
  try {
    return JSON.parse(new TextDecoder().decode(res.body)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const keyPath = (key: string) => `/kv/${encodeURIComponent(key)}`;
const idempotencyHeaders = () => ({ "idempotency-key": crypto.randomUUID() });

// ---- client commands ----

async function cmdPut(args: readonly string[]): Promise<number> {
  const p = parse("put", args, CLIENT_OPTIONS, [2, 2]);
  if (p === null) return help("put");
  const [key, value] = p.positionals as [string, string];
  const client = await clientFor("put", p.values);
  const r = await client.call("PUT", keyPath(key), { body: value, headers: idempotencyHeaders() });
  if (!r.ok || r.res.status !== 200) throw failed("put", r);
  await writeOut(process.stdout, `OK (index ${String(jsonOf(r.res).index)})\n`);
  return 0;
}

async function cmdGet(args: readonly string[]): Promise<number> {
  const p = parse("get", args, { ...CLIENT_OPTIONS, stale: { type: "boolean" } }, [1, 1]);
  if (p === null) return help("get");
  const key = p.positionals[0]!;
  const client = await clientFor("get", p.values);
  const r = await client.call("GET", keyPath(key) + (p.values.stale === true ? "?stale" : ""));
  if (r.ok && r.res.status === 404) {
    await writeOut(process.stderr, `raft: key ${JSON.stringify(key)} not found\n`);
    return 3;
  }
  if (!r.ok || r.res.status !== 200) throw failed("get", r);
  await writeOut(process.stdout, r.res.body);
  if (process.stdout.isTTY) await writeOut(process.stdout, "\n");
  return 0;
}

async function cmdDel(args: readonly string[]): Promise<number> {
  const p = parse("del", args, CLIENT_OPTIONS, [1, 1]);
  if (p === null) return help("del");
  const client = await clientFor("del", p.values);
  const r = await client.call("DELETE", keyPath(p.positionals[0]!), { headers: idempotencyHeaders() });
  if (!r.ok || r.res.status !== 200) throw failed("del", r);
  await writeOut(process.stdout, `OK (index ${String(jsonOf(r.res).index)})\n`);
  return 0;
}

async function cmdCas(args: readonly string[]): Promise<number> {
  const p = parse("cas", args, { ...CLIENT_OPTIONS, expect: { type: "string" }, absent: { type: "boolean" } }, [2, 2]);
  if (p === null) return help("cas");
  const expect = str(p.values, "expect");
  if ((expect === undefined) === (p.values.absent !== true)) throw usageError("cas", "Give exactly one of --expect OLD and --absent");
  const [key, value] = p.positionals as [string, string];
  const client = await clientFor("cas", p.values);
  const r = await client.call("POST", `${keyPath(key)}/cas`, { body: JSON.stringify({ expect: expect ?? null, value }), headers: { ...idempotencyHeaders(), "content-type": "application/json" } });
  if (r.ok && r.res.status === 409) {
    const current = jsonOf(r.res).current;
    await writeOut(process.stderr, `raft: not set: ${current === null ? "the key is absent" : `the current value is ${JSON.stringify(current)}`}\n`);
    return 3;
  }
  if (!r.ok || r.res.status !== 200) throw failed("cas", r);
  await writeOut(process.stdout, `OK (index ${String(jsonOf(r.res).index)})\n`);
  return 0;
}

async function cmdStatus(args: readonly string[]): Promise<number> {
  const p = parse("status", args, { ...CLIENT_OPTIONS, json: { type: "boolean" } }, [0, 0]);
  if (p === null) return help("status");
  const client = await clientFor("status", p.values, 3);
  const timeoutMs = positiveNumber("status", "timeout", str(p.values, "timeout"), 3) * 1000;
  const urls = clusterUrls("status", p.values);
  const g = await gatherStatus(statusFetcher((url) => client.getJson(url, timeoutMs)), urls);
  if ("unreachable" in g) throw new CliExit(1, g.unreachable);
  const out = p.values.json === true ? JSON.stringify(statusJson(g.report), null, 2) + "\n" : formatStatus(g.report);
  await writeOut(process.stdout, out);
  return g.report.leader === null ? 1 : 0;
}

async function cmdHealth(args: readonly string[]): Promise<number> {
  const p = parse("health", args, { ...CLIENT_OPTIONS, json: { type: "boolean" } }, [0, 0]);
  if (p === null) return help("health");
  const client = await clientFor("health", p.values, 3);
  const timeoutMs = positiveNumber("health", "timeout", str(p.values, "timeout"), 3) * 1000;
  const { formatHealth, gatherHealth } = await import("./src/api/health-report.ts");
  const rows = await gatherHealth((url) => client.getJson(url, timeoutMs), clusterUrls("health", p.values));
  await writeOut(process.stdout, p.values.json === true ? JSON.stringify(rows, null, 2) + "\n" : formatHealth(rows));
  return rows.every((r) => r.healthy) ? 0 : 1;
}

async function cmdMembers(args: readonly string[]): Promise<number> {
  const p = parse("members", args, { ...CLIENT_OPTIONS, json: { type: "boolean" } }, [0, 3]);
  if (p === null) return help("members");
  const [sub = "list", ...rest] = p.positionals;
  let r;
  if (sub === "list") {
    if (rest.length > 0) throw usageError("members", `Unexpected argument ${JSON.stringify(rest[0])}`);
    r = await (await clientFor("members", p.values)).call("GET", "/cluster/members");
  } else if (sub === "add") {
    if (rest.length !== 2) throw usageError("members", "members add needs ID and URL");
    const id = checkMemberId(rest[0]);
    if (!id.ok) throw usageError("members", id.error);
    const url = checkBaseUrl(rest[1], "member URL");
    if (!url.ok) throw usageError("members", url.error);
    r = await (await clientFor("members", p.values, 180)).call("POST", "/cluster/members", { body: JSON.stringify({ id: id.value, url: url.value }) });
  } else if (sub === "remove") {
    if (rest.length !== 1) throw usageError("members", "members remove needs ID");
    const id = checkMemberId(rest[0]);
    if (!id.ok) throw usageError("members", id.error);
    r = await (await clientFor("members", p.values, 60)).call("DELETE", `/cluster/members/${id.value}`);
  } else {
    throw usageError("members", `Unknown subcommand ${JSON.stringify(sub)} (use list, add or remove)`);
  }
  if (!r.ok || r.res.status !== 200) throw failed(`members ${sub}`, r);
  const body = jsonOf(r.res) as { leader?: { id: string; url: string } | null; members?: Member[] };
  const members = (body.members ?? []).map((m) => ({ id: m.id, url: m.url, voter: m.voter }));
  if (p.values.json === true) {
    await writeOut(process.stdout, JSON.stringify({ leader: body.leader ?? null, members }, null, 2) + "\n");
    return 0;
  }
  const rows = members.map((m) => [m.id, m.url, m.voter ? "voter" : "learner", body.leader?.id === m.id ? "yes" : "no"]);
  await writeOut(process.stdout, formatTable(["ID", "URL", "KIND", "LEADER"], rows) + "\n");
  return 0;
}

async function cmdTransfer(args: readonly string[]): Promise<number> {
  const p = parse("transfer", args, CLIENT_OPTIONS, [0, 1]);
  if (p === null) return help("transfer");
  const to = p.positionals[0];
  if (to !== undefined) {
    const id = checkMemberId(to);
    if (!id.ok) throw usageError("transfer", id.error);
  }
  const r = await (await clientFor("transfer", p.values)).call("POST", "/cluster/transfer", { body: JSON.stringify(to === undefined ? {} : { to }) });
  if (!r.ok || r.res.status !== 200) throw failed("transfer", r);
  const leader = jsonOf(r.res).leader as { id: string; url: string } | null;
  await writeOut(process.stdout, `leader is now ${leader === null ? "unknown" : `${leader.id} (${leader.url})`}\n`);
  return 0;
}

async function cmdLeave(args: readonly string[]): Promise<number> {
  const p = parse("leave", args, CLIENT_OPTIONS, [0, 0]);
  if (p === null) return help("leave");
  const client = await clientFor("leave", p.values, 60);
  const base = clusterUrls("leave", p.values)[0]!;
  const st = await client.getJson(`${base.replace(/\/+$/, "")}/status`, 5000);
  if (!st.ok) throw new CliExit(1, `Cannot reach the member at ${base}: ${st.error}`);
  const self = st.value as { id?: unknown; role?: unknown; members?: Member[] };
  if (typeof self.id !== "string") throw new CliExit(1, `${base} did not answer with a member status`);
  const otherVoters = (self.members ?? []).filter((m) => m.voter && m.id !== self.id);
  if (self.role === "leader" && otherVoters.length > 0) {
    const t = await client.call("POST", "/cluster/transfer", { body: "{}" });
    if (!t.ok || t.res.status !== 200) throw failed("handing over leadership before leaving", t);
  }
  const r = await client.call("DELETE", `/cluster/members/${encodeURIComponent(self.id)}`);
  if (!r.ok || r.res.status !== 200) throw failed("leave", r);
  await writeOut(process.stdout, `${self.id} left the cluster\n`);
  return 0;
}

async function cmdToken(args: readonly string[]): Promise<number> {
  const p = parse("token", args, { "secret-file": { type: "string" }, help: { type: "boolean", short: "h" } }, [0, 0]);
  if (p === null) return help("token");
  const secret = readSecret("token", str(p.values, "secret-file"));
  if (secret === null) throw usageError("token", "--secret-file FILE is required");
  const { clientTokenFor } = await import("./src/transport/credentials.ts");
  await writeOut(process.stdout, `${clientTokenFor(new TextEncoder().encode(secret))}\n`);
  return 0;
}

// ---- bootstrap and start ----

async function cmdBootstrap(args: readonly string[]): Promise<number> {
  const p = parse("bootstrap", args, { data: { type: "string" }, id: { type: "string" }, members: { type: "string" }, listen: { type: "string" }, help: { type: "boolean", short: "h" } }, [0, 0]);
  if (p === null) return help("bootstrap");
  const data = str(p.values, "data");
  const idArg = str(p.values, "id");
  const list = str(p.values, "members");
  if (data === undefined || idArg === undefined || list === undefined) throw usageError("bootstrap", "--data, --id and --members are required");
  const id = checkMemberId(idArg);
  if (!id.ok) throw usageError("bootstrap", id.error);
  const members: Member[] = [];
  for (const item of list.split(",")) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw usageError("bootstrap", `Malformed member ${JSON.stringify(item)}: expected ID=URL`);
    const mid = checkMemberId(item.slice(0, eq));
    if (!mid.ok) throw usageError("bootstrap", mid.error);
    const url = checkBaseUrl(item.slice(eq + 1), `URL of ${mid.value}`);
    if (!url.ok) throw usageError("bootstrap", url.error);
    if (members.some((m) => m.id === mid.value)) throw usageError("bootstrap", `Member ${mid.value} is listed twice`);
    members.push({ id: mid.value, url: url.value, voter: true });
  }
  const self = members.find((m) => m.id === id.value);
  if (self === undefined) throw usageError("bootstrap", `--members does not list this member (${id.value})`);
  let host: string;
  let port: number;
  const listen = str(p.values, "listen");
  if (listen !== undefined) {
    const hp = checkHostPort(listen);
    if (!hp.ok) throw usageError("bootstrap", hp.error);
    ({ host, port } = hp.value);
  } else {
    const u = new URL(self.url);
    host = u.hostname.replace(/^\[|\]$/g, "");
    port = u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port);
  }
  const { bootstrapDataDir } = await _nodeModules();
  await bootstrapDataDir(data, { id: id.value, host, port, members });
  await writeOut(process.stdout, `prepared ${data} for member ${id.value} of a ${members.length}-member cluster; start it with: raft start --data ${data}\n`);
  return 0;
}

// ---- backups: raft snapshot save | status | restore | take ----

function _mib(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** A progress bar on a terminal (redrawn in place), a line per 10% otherwise. */
function _progress(): { update: (got: number, total: number | null) => void; end: () => void } {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  let drawn = false;
  return {
    update(got, total) {
      if (tty) {
        const pct = total === null || total === 0 ? null : Math.min(1, got / total);
        const bar = pct === null ? "" : `[${"#".repeat(Math.round(pct * 30)).padEnd(30, " ")}] ${(pct * 100).toFixed(0).padStart(3)}% `;
        process.stderr.write(`\r${bar}${_mib(got)}${total === null ? "" : ` of ${_mib(total)}`}`);
        drawn = true;
        return;
      }
      const tenth = total === null || total === 0 ? Math.floor(got / (16 * 1024 * 1024)) : Math.floor((got / total) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      process.stderr.write(`received ${_mib(got)}${total === null ? "" : ` of ${_mib(total)} (${Math.floor((got / Math.max(1, total)) * 100)}%)`}\n`);
    },
    end() {
      if (drawn) process.stderr.write("\n");
    },
  };
}

async function cmdSnapshot(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    if (sub === undefined) throw usageError("snapshot", "Missing subcommand: save, status, restore or take");
    return help("snapshot");
  }
  const { BackupCorruptError, RaftError } = await import("./src/errors.ts");
  const fail = (err: unknown): never => {
    if (err instanceof InvalidArgumentError) throw new CliExit(2, err.message);
    if (err instanceof BackupCorruptError || err instanceof RaftError) throw new CliExit(1, err.message);
    throw err;
  };
  const oneMember = async (cmd: string, v: Values) => {
    const urls = clusterUrls(cmd, v);
    if (urls.length !== 1) throw usageError("snapshot", `snapshot ${cmd} talks to one member: give one --cluster URL, not ${urls.length}`);
    const timeout = str(v, "timeout");
    const tls = clientTls("snapshot", v);
    const token = await clientToken("snapshot", v);
    return {
      url: urls[0]!,
      opts: {
        ...(token === null ? {} : { token }),
        ...(tls === null ? {} : { tls }),
        ...(timeout === undefined ? {} : { timeoutMs: positiveNumber("snapshot", "timeout", timeout, 600) * 1000 }),
      },
    };
  };
  const backup = await import("./src/node/backup.ts");
  switch (sub) {
    case "save": {
      const p = parse("snapshot", rest, CLIENT_OPTIONS, [1, 1]);
      if (p === null) return help("snapshot");
      const file = p.positionals[0]!;
      const { url, opts } = await oneMember("save", p.values);
      const bar = _progress();
      const started = Date.now();
      const info = await backup.saveBackup(url, file, { ...opts, onProgress: bar.update }).catch(fail).finally(() => bar.end());
      await writeOut(process.stdout, `saved ${file}: snapshot at index ${info.index}, term ${info.term}, ${info.fileBytes} bytes (state ${info.payloadBytes} bytes), sha256 ${info.sha256}, from member ${info.memberId} of cluster ${info.clusterId}, in ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
      return 0;
    }
    case "status": {
      const p = parse("snapshot", rest, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, [1, 1]);
      if (p === null) return help("snapshot");
      let info: ReturnType<typeof backup.backupStatus>;
      try {
        info = backup.backupStatus(p.positionals[0]!);
      } catch (err) {
        return fail(err);
      }
      if (p.values.json === true) {
        const { file: _f, ...rest2 } = info;
        await writeOut(process.stdout, `${JSON.stringify({ file: p.positionals[0], ...rest2 })}\n`);
        return 0;
      }
      const rows: [string, string][] = [
        ["index", String(info.index)],
        ["term", String(info.term)],
        ["size", `${info.fileBytes} bytes (state machine snapshot: ${info.payloadBytes} bytes)`],
        ["sha256", info.sha256],
        ["cluster", info.clusterId],
        ["taken", `${info.createdAt} from member ${info.memberId}`],
        ["members", info.members.map((m) => `${m.id}=${m.url}${m.voter ? "" : " (learner)"}`).join(", ")],
        ["format", `version ${info.version}, every block checked`],
      ];
      await writeOut(process.stdout, rows.map(([k, x]) => `${k.padEnd(8)} ${x}`).join("\n") + "\n");
      return 0;
    }
    case "restore": {
      const p = parse("snapshot", rest, { data: { type: "string" }, id: { type: "string" }, members: { type: "string" }, listen: { type: "string" }, help: { type: "boolean", short: "h" } }, [1, 1]);
      if (p === null) return help("snapshot");
      const data = str(p.values, "data");
      const idArg = str(p.values, "id");
      const list = str(p.values, "members");
      if (data === undefined || idArg === undefined || list === undefined) throw usageError("snapshot", "restore needs --data, --id and --members");
      const id = checkMemberId(idArg);
      if (!id.ok) throw usageError("snapshot", id.error);
      const members: { id: string; url: string }[] = [];
      for (const item of list.split(",")) {
        const eq = item.indexOf("=");
        if (eq <= 0) throw usageError("snapshot", `Malformed member ${JSON.stringify(item)}: expected ID=URL`);
        const mid = checkMemberId(item.slice(0, eq));
        if (!mid.ok) throw usageError("snapshot", mid.error);
        const url = checkBaseUrl(item.slice(eq + 1), `URL of ${mid.value}`);
        if (!url.ok) throw usageError("snapshot", url.error);
        members.push({ id: mid.value, url: url.value });
      }
      let hp: { host: string; port: number } | null = null;
      const listen = str(p.values, "listen");
      if (listen !== undefined) {
        const c = checkHostPort(listen);
        if (!c.ok) throw usageError("snapshot", c.error);
        hp = c.value;
      }
      const { restoreBackup } = await import("./src/node/restore.ts");
      const r = await restoreBackup(p.positionals[0]!, { dataDir: data, id: id.value, members, ...(hp === null ? {} : hp) }).catch(fail);
      await writeOut(process.stdout, `restored snapshot ${r.index} (term ${r.term}, sha256 ${r.backup.sha256}) into ${data} for member ${id.value} of new cluster ${r.clusterId} (${r.members.map((m) => m.id).join(", ")}); start it with: raft start --data ${data}\n`);
      return 0;
    }
    case "take": {
      const p = parse("snapshot", rest, CLIENT_OPTIONS, [0, 0]);
      if (p === null) return help("snapshot");
      const { url, opts } = await oneMember("take", p.values);
      const t = await backup.takeSnapshotOf(url, opts).catch(fail);
      await writeOut(process.stdout, `${url}: snapshot at index ${t.index} (term ${t.term}, ${t.bytes} bytes); log compacted through index ${t.compactedThrough}\n`);
      return 0;
    }
    default:
      throw usageError("snapshot", `Unknown subcommand ${JSON.stringify(sub)}: use save, status, restore or take`);
  }
}

/**
 * The member side (RaftNode, storage, runtime adapter), loaded only by the
 * commands that run or prepare a member: client commands start faster
 * without it (measured on Node with tsx: 1.0-1.2 s -> 0.4 s).
 */
async function _nodeModules() {
  const node = await import("./src/node/raft-node.ts");
  return { RaftNode: node.RaftNode, bootstrapDataDir: node.bootstrapDataDir };
}

/** One line per log message or event on stderr, as text or JSON (see src/api/log-lines.ts). */
async function makeLogger(format: "text" | "json", member: string): Promise<{ line: (msg: string) => void; event: (ev: NodeEvent) => void }> {
  const { jsonEventLine, jsonMessageLine, textLine } = await import("./src/api/log-lines.ts");
  const write = (s: string) => process.stderr.write(s + "\n");
  if (format === "json") {
    return {
      line: (msg) => write(jsonMessageLine(new Date(), member, msg)),
      event: (ev) => write(jsonEventLine(new Date(), member, ev)),
    };
  }
  // The driver logs its own sentence for each event in text: events add nothing there.
  return { line: (msg) => write(textLine(new Date(), member, msg)), event: () => {} };
}

async function cmdStart(args: readonly string[]): Promise<number | null> {
  const p = parse("start", args, {
    id: { type: "string" },
    data: { type: "string" },
    listen: { type: "string" },
    "listen-client": { type: "string" },
    advertise: { type: "string" },
    bootstrap: { type: "boolean" },
    join: { type: "string" },
    "secret-file": { type: "string" },
    insecure: { type: "boolean" },
    "force-new-cluster": { type: "boolean" },
    "log-format": { type: "string" },
    "max-key-bytes": { type: "string" },
    "max-value-bytes": { type: "string" },
    "snapshot-log-bytes": { type: "string" },
    thread: { type: "string" },
    ...START_TLS_FLAGS,
    "request-timeout": { type: "string" },
    "max-client-requests": { type: "string" },
    "min-free-bytes": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, [0, 0]);
  if (p === null) return help("start");
  const v = p.values;
  const dataDir = str(v, "data");
  if (dataDir === undefined) throw usageError("start", "--data DIR is required");
  const format = str(v, "log-format") ?? "text";
  if (format !== "text" && format !== "json") throw usageError("start", `--log-format must be text or json, got ${JSON.stringify(format)}`);
  if (v.bootstrap === true && v.join !== undefined) throw usageError("start", "Give --bootstrap or --join, not both");
  const idArg = str(v, "id");
  if (idArg !== undefined && !checkMemberId(idArg).ok) throw usageError("start", (checkMemberId(idArg) as { error: string }).error);
  const listenArg = str(v, "listen");
  const listen = listenArg === undefined ? undefined : checkHostPort(listenArg);
  if (listen !== undefined && !listen.ok) throw usageError("start", listen.error);
  const listenClientArg = str(v, "listen-client");
  const listenClient = listenClientArg === undefined ? undefined : checkHostPort(listenClientArg);
  if (listenClient !== undefined && !listenClient.ok) throw usageError("start", listenClient.error);
  const advertiseArg = str(v, "advertise");
  const advertise = advertiseArg === undefined ? undefined : checkBaseUrl(advertiseArg, "--advertise URL");
  if (advertise !== undefined && !advertise.ok) throw usageError("start", advertise.error);
  const join: string[] = [];
  for (const u of (str(v, "join") ?? "").split(",").filter((s) => s.trim() !== "")) {
    const c = checkMemberAddress(u.trim(), "--join URL");
    if (!c.ok) throw usageError("start", c.error);
    join.push(c.value);
  }
  if (v.join !== undefined && join.length === 0) throw usageError("start", "--join needs at least one URL");
  const keyBytesMax = positiveNumber("start", "max-key-bytes", str(v, "max-key-bytes"), KEY_BYTES_MAX_DEFAULT);
  const valueBytesMax = positiveNumber("start", "max-value-bytes", str(v, "max-value-bytes"), VALUE_BYTES_MAX_DEFAULT);
  const snapshotArg = str(v, "snapshot-log-bytes");
  const snapshotLogBytes = snapshotArg === undefined ? undefined : positiveNumber("start", "snapshot-log-bytes", snapshotArg, 0);
  const requestTimeoutArg = str(v, "request-timeout");
  const requestTimeoutMs = requestTimeoutArg === undefined ? undefined : Math.round(positiveNumber("start", "request-timeout", requestTimeoutArg, 30) * 1000);
  const maxClientArg = str(v, "max-client-requests");
  const maxClientRequests = maxClientArg === undefined ? undefined : Math.floor(positiveNumber("start", "max-client-requests", maxClientArg, 1024));
  const secret = readSecret("start", str(v, "secret-file"));

  const { readIdentity } = await import("./src/node/identity.ts");
  const saved = fs.existsSync(dataDir) ? await readIdentity(path.resolve(dataDir)) : null;
  if (saved === null) {
    if (idArg === undefined || listen === undefined) throw usageError("start", `${dataDir} holds no member yet: give --id and --listen (and --bootstrap or --join)`);
    if (v.bootstrap !== true && join.length === 0) throw usageError("start", `${dataDir} holds no member yet: give --bootstrap (a new cluster) or --join URL (an existing one)`);
  }
  const host = listen?.ok ? listen.value.host : saved!.host;
  let tlsFiles: TlsFiles | null;
  try {
    tlsFiles = memberTlsFiles(v, saved);
  } catch (err) {
    throw usageError("start", (err as Error).message);
  }
  for (const h of [host, ...(listenClient?.ok ? [listenClient.value.host] : [])]) {
    if (secret === null && tlsFiles === null && !isLoopbackHost(h) && v.insecure !== true) {
      throw usageError("start", `Refusing to listen on ${h} without TLS or --secret-file: anyone who can reach it could read and write; give --cert-file and --key-file (with --trusted-ca-file), or --secret-file FILE, or --insecure`);
    }
  }
  let tls: TlsOptions | null = null;
  try {
    if (tlsFiles !== null) tls = readMemberTls(tlsFiles).tls;
  } catch (err) {
    throw new CliExit(2, (err as Error).message);
  }

  const { RaftNode } = await _nodeModules();
  const member = idArg ?? saved!.id;
  const log = await makeLogger(format, member);
  const secretBytes = secret === null ? undefined : new TextEncoder().encode(secret);
  const opts: { -readonly [K in keyof RaftNodeOptions]: RaftNodeOptions[K] } = {
    dataDir,
    // The built-in store runs where the consensus loop runs (the worker by default): a write crosses no thread.
    logger: log.line,
  };
  const kvOptions = {
    keyBytesMax,
    valueBytesMax,
    ...(requestTimeoutMs === undefined ? {} : { bodyTimeoutMs: requestTimeoutMs }),
    ...(secretBytes === undefined ? {} : { secret: secretBytes }),
  };
  if (listenClient?.ok) {
    // The client listener serves the KV routes from this thread: the store runs here, beside them.
    const { kvService } = await import("./src/kv/service.ts");
    const svc = kvService(kvOptions);
    opts.stateMachine = svc.stateMachine;
    opts.routes = svc.routes;
  } else {
    // The built-in store runs where the consensus loop runs (the worker by default): a write crosses no thread.
    opts.kv = kvOptions;
  }
  if (requestTimeoutMs !== undefined) {
    opts.connectionLimits = { requestTimeoutMs, headersTimeoutMs: Math.min(10_000, requestTimeoutMs), idleTimeoutMs: Math.min(5_000, requestTimeoutMs) };
  }
  if (idArg !== undefined) opts.id = idArg;
  if (listen?.ok) {
    opts.host = listen.value.host;
    opts.port = listen.value.port;
  }
  if (advertise?.ok) opts.advertiseUrl = advertise.value;
  if (v.bootstrap === true) opts.bootstrap = true;
  if (join.length > 0) opts.join = join;
  if (secretBytes !== undefined) opts.secret = secretBytes;
  if (v.insecure === true) opts.insecure = true;
  if (v["force-new-cluster"] === true) {
    if (saved === null || v.bootstrap === true || join.length > 0) throw usageError("start", "--force-new-cluster restarts a member that exists: give --data DIR of a member, without --bootstrap or --join");
    opts.forceNewCluster = true;
  }
  if (listenClient?.ok) opts.listenClient = listenClient.value;
  if (maxClientRequests !== undefined) opts.maxClientRequests = maxClientRequests;
  const minFree = str(v, "min-free-bytes");
  if (minFree !== undefined) {
    if (!/^[0-9]+$/.test(minFree) || !Number.isSafeInteger(Number(minFree))) throw usageError("start", `--min-free-bytes needs a whole number of bytes, got ${JSON.stringify(minFree)}`);
    opts.diskFreeBytesMin = Number(minFree);
  }
  if (snapshotLogBytes !== undefined) opts.snapshotLogBytes = Math.floor(snapshotLogBytes);
  if (tls !== null) opts.tls = tls;
  const thread = str(v, "thread");
  if (thread !== undefined) {
    if (thread !== "worker" && thread !== "caller") throw usageError("start", `--thread must be worker or caller, not ${thread}`);
    opts.thread = thread;
  }

  let node: RaftNode;
  try {
    node = await RaftNode.start(opts);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new CliExit(2, err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new CliExit(1, `Cannot listen on ${host}:${listen?.ok ? listen.value.port : saved?.port}: the address is in use`);
    throw new CliExit(1, err instanceof Error ? err.message : String(err));
  }
  if (tlsFiles !== null) {
    if (JSON.stringify(tlsFiles) !== JSON.stringify(saved?.tls ?? null)) {
      const { saveIdentityTls } = await import("./src/node/identity.ts");
      await saveIdentityTls(path.resolve(dataDir), tlsFiles);
    }
    reloadTlsOnChange(node, tlsFiles, log.line);
  }
  const st = node.status();
  log.line(`member ${node.id} serving the KV store at ${node.url} (cluster ${st.clusterId}, data ${path.resolve(dataDir)}, runtime ${st.runtime})`);
  log.line(`dashboard: ${node.url}/ui`);
  if (node.clientPort !== null && listenClient?.ok) {
    const h = listenClient.value.host;
    log.line(`serving clients at ${tls === null ? "http" : "https"}://${h.includes(":") ? `[${h}]` : h}:${node.clientPort}`);
  }

  let stopping = false;
  const stop = async (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    log.line(why);
    await node.close().catch((err) => log.line(`close failed: ${(err as Error).message}`));
    process.exit(code);
  };
  node.on((ev) => {
    log.event(ev);
    if (ev.type === "removed") void stop(0, "removed from the cluster: stopping");
    if (ev.type === "stopped" && ev.error !== null) void stop(1, `stopped: ${ev.error.message}`);
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(130);
      void stop(0, `${sig}: closing`);
    });
  }
  return null;
}

function help(cmd: string): number {
  process.stdout.write(USAGE[cmd]! + "\n");
  return 0;
}

const COMMANDS: Record<string, (args: readonly string[]) => Promise<number | null>> = {
  start: cmdStart,
  bootstrap: cmdBootstrap,
  snapshot: cmdSnapshot,
  status: cmdStatus,
  health: cmdHealth,
  members: cmdMembers,
  transfer: cmdTransfer,
  leave: cmdLeave,
  put: cmdPut,
  get: cmdGet,
  del: cmdDel,
  cas: cmdCas,
  token: cmdToken,
};

async function main(argv: readonly string[]): Promise<number | null> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw usageError("raft", "Missing command");
  if (cmd === "--help" || cmd === "-h" || cmd === "help") return help(rest[0] !== undefined && USAGE[rest[0]] !== undefined ? rest[0] : "raft");
  if (cmd === "--version" || cmd === "version") {
    await writeOut(process.stdout, `raft ${VERSION}\n`);
    return 0;
  }
  const run = COMMANDS[cmd];
  if (run === undefined) throw usageError("raft", `Unknown command ${JSON.stringify(cmd)}`);
  return await run(rest);
}

main(process.argv.slice(2)).then(
  async (code) => {
    if (code === null) return; // a running member: it exits on a signal or when removed
    await writeOut(process.stdout, "");
    process.exit(code);
  },
  async (err: unknown) => {
    if (err instanceof CliExit) {
      const usage = err.usageOf === null ? "" : `\n${USAGE[err.usageOf] ?? USAGE.raft}`;
      await writeOut(process.stderr, `raft: ${err.message.replace(/\n/g, " ")}${usage}\n`);
      process.exit(err.code);
    }
    await writeOut(process.stderr, `raft: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
