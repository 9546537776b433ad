/**
 * `raft status`: asks every member for its `/status`, puts the answers side
 * by side, and says in words what is wrong (no quorum reachable, a member
 * that cannot keep up, a membership change waiting, ...). Pure formatting
 * apart from `gatherStatus`, which takes the fetching function.
 *
 * @module
 */
import type { StatusBody, StatusMember } from "./cluster-routes.ts";

/** One member's row. */
export interface MemberRow {
  readonly id: string;
  readonly url: string;
  readonly voter: boolean;
  /** Its own `/status`, or null if it did not answer. */
  readonly status: StatusBody | null;
  /** Why it did not answer. */
  readonly error: string | null;
  /** Entries behind the leader (leader's view), or estimated from commit indexes; null if unknown. */
  readonly lag: number | null;
  /** Snapshot or catch-up progress, in words; "" if none. */
  readonly progress: string;
  /** The leader's view of this member (match index, lag, reachability, catch-up, snapshot transfer); null without a leader. */
  readonly leaderView: StatusMember | null;
}

/** The cluster as `raft status` shows it. */
export interface ClusterReport {
  readonly clusterId: string | null;
  /** A member that answered and says it leads (highest term wins); null if none. */
  readonly leader: { readonly id: string; readonly url: string; readonly term: number } | null;
  readonly rows: readonly MemberRow[];
  /** What is wrong, in sentences; empty when all is well. */
  readonly problems: readonly string[];
}

/** A member further behind than this "cannot keep up". */
export const LAG_ENTRIES_WARN = 1000;

/** Fetches one member's `/status`: the body, or why not (`notMember`: the error already names the URL: it is some other server). */
export type StatusFetcher = (baseUrl: string) => Promise<{ ok: true; value: StatusBody } | { ok: false; error: string; notMember?: true }>;

function _isStatus(v: unknown): v is StatusBody {
  const s = v as StatusBody;
  return typeof v === "object" && v !== null && typeof s.id === "string" && typeof s.role === "string" && typeof s.term === "number" && Array.isArray(s.members);
}

/** Wraps a JSON fetcher into a `StatusFetcher` that checks the shape. */
export function statusFetcher(getJson: (url: string) => Promise<{ ok: true; value: unknown; status: number } | { ok: false; error: string; notMember?: true }>): StatusFetcher {
  return async (base) => {
    const r = await getJson(base.replace(/\/+$/, "") + "/status");
    if (!r.ok) return r;
    if (r.status !== 200 || !_isStatus(r.value)) return { ok: false, error: `answered ${r.status} without a member status` };
    return { ok: true, value: r.value };
  };
}

function _mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}

function _progress(m: StatusMember | undefined): string {
  if (m === undefined) return "";
  if (m.snapshotTransfer !== null) {
    const t = m.snapshotTransfer;
    return t.totalBytes === null || t.totalBytes === 0
      ? `snapshot ${_mib(t.sentBytes)} MiB sent`
      : `snapshot ${Math.floor((100 * t.sentBytes) / t.totalBytes)}% (${_mib(t.sentBytes)}/${_mib(t.totalBytes)} MiB)`;
  }
  if (m.catchUp !== null && m.catchUp !== undefined) {
    return m.catchUp.failed !== null ? `catch-up failed: ${m.catchUp.failed}` : `catch-up round ${m.catchUp.round}, ${m.catchUp.lag} behind`;
  }
  if (!m.voter) return "learner";
  return "";
}

/**
 * Asks `entryUrls` (any members) for the membership, then every member for
 * its status, and builds the report. Null if no member answered at all.
 */
export async function gatherStatus(fetchStatus: StatusFetcher, entryUrls: readonly string[]): Promise<{ report: ClusterReport } | { unreachable: string }> {
  const answers = new Map<string, Awaited<ReturnType<StatusFetcher>>>();
  const ask = async (url: string) => {
    const key = url.replace(/\/+$/, "");
    let a = answers.get(key);
    if (a === undefined) {
      a = await fetchStatus(key);
      answers.set(key, a);
    }
    return a;
  };
  let first: StatusBody | null = null;
  const errors: string[] = [];
  let notMembers = 0;
  for (const url of entryUrls) {
    const a = await ask(url);
    if (a.ok) {
      first = a.value;
      break;
    }
    if (a.notMember === true) notMembers++;
    errors.push(a.notMember === true ? a.error : `${url}: ${a.error}`);
  }
  if (first === null) return { unreachable: notMembers === errors.length ? errors.join("; ") : `Cannot reach the cluster (${errors.join("; ")})` };

  // The leader's member list is authoritative; ask it if the entry member knows it.
  let membersFrom = first;
  if (first.leader !== null && first.leader.id !== first.id) {
    const l = await ask(first.leader.url);
    if (l.ok && l.value.role === "leader") membersFrom = l.value;
  }
  const members = membersFrom.members;
  await Promise.all(members.map((m) => ask(m.url)));

  let leader: ClusterReport["leader"] = null;
  let leaderStatus: StatusBody | null = null;
  for (const m of members) {
    const a = answers.get(m.url.replace(/\/+$/, ""));
    if (a?.ok && a.value.role === "leader" && (leader === null || a.value.term > leader.term)) {
      leader = { id: a.value.id, url: a.value.url, term: a.value.term };
      leaderStatus = a.value;
    }
  }
  const maxCommit = Math.max(0, ...[...answers.values()].map((a) => (a.ok ? a.value.commitIndex : 0)));

  const rows: MemberRow[] = members.map((m) => {
    const a = answers.get(m.url.replace(/\/+$/, ""))!;
    const inLeader = leaderStatus?.members.find((x) => x.id === m.id);
    const lag = inLeader?.lag ?? (a.ok ? Math.max(0, maxCommit - a.value.commitIndex) : null);
    return { id: m.id, url: m.url, voter: m.voter, status: a.ok ? a.value : null, error: a.ok ? null : a.error, lag, progress: _progress(inLeader ?? m), leaderView: inLeader ?? null };
  });

  return { report: { clusterId: first.clusterId ?? null, leader, rows, problems: _diagnose(rows, leader, leaderStatus) } };
}

function _diagnose(rows: readonly MemberRow[], leader: ClusterReport["leader"], leaderStatus: StatusBody | null): string[] {
  const problems: string[] = [];
  const voters = rows.filter((r) => r.voter);
  const need = Math.floor(voters.length / 2) + 1;
  const reachableVoters = voters.filter((r) => r.status !== null).length;
  if (leader === null) {
    const believed = rows.map((r) => r.status?.leader).find((l) => l !== null && l !== undefined);
    if (reachableVoters < need) {
      problems.push(`No quorum reachable: ${reachableVoters} of ${voters.length} voters answer and a leader needs ${need}; bring the others back (or check the network)`);
    } else if (believed !== undefined) {
      problems.push(`No leader answers: the members still follow ${believed.id} (${believed.url}), which does not answer as leader; they elect a new one once their election timeout passes (${reachableVoters} of ${voters.length} voters answer, ${need} needed)`);
    } else {
      problems.push(`No leader known, though ${reachableVoters} of ${voters.length} voters answer: an election is probably under way; retry in a moment`);
    }
  }
  for (const r of rows) {
    if (r.status === null) {
      problems.push(`Member ${r.id} (${r.url}) does not answer: ${r.error ?? "unknown error"}`);
      continue;
    }
    const inLeader = leaderStatus?.members.find((x) => x.id === r.id);
    if (inLeader?.catchUp?.failed) problems.push(`Member ${r.id} could not be caught up: ${inLeader.catchUp.failed}`);
    else if (!r.voter) problems.push(`Member ${r.id} is a learner: it is being caught up and will then be promoted to voter`);
    if (r.lag !== null && r.lag > LAG_ENTRIES_WARN) problems.push(`Member ${r.id} cannot keep up: ${r.lag} entries behind the leader`);
    if (inLeader?.reachable === false && r.id !== leader?.id) problems.push(`The leader cannot reach member ${r.id} (it answers this command, so check the network between members)`);
    if (leaderStatus !== null && r.status.clusterId !== leaderStatus.clusterId) {
      problems.push(`Member ${r.id} belongs to another cluster (${r.status.clusterId}, the leader's is ${leaderStatus.clusterId})`);
    }
  }
  if (leaderStatus?.pendingConfigChange === true) {
    problems.push("A membership change is waiting: it is appended but not yet committed by a quorum of the new configuration");
  }
  return problems;
}

/** Renders rows as aligned columns under a header row (as `raft status` and `raft members` print them). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** The report as `raft status` prints it. */
export function formatStatus(report: ClusterReport): string {
  const head = report.leader === null
    ? `cluster ${report.clusterId ?? "?"}: NO LEADER`
    : `cluster ${report.clusterId ?? "?"}: leader ${report.leader.id} (${report.leader.url}), term ${report.leader.term}`;
  const rows = report.rows.map((r) => {
    const s = r.status;
    const role = s === null ? "-" : s.role;
    return [
      r.id,
      r.url,
      role,
      s === null ? "-" : String(s.term),
      s === null ? "-" : String(s.commitIndex),
      s === null ? "-" : String(s.lastApplied),
      r.lag === null ? "-" : String(r.lag),
      s === null ? "no" : "yes",
      r.progress,
    ];
  });
  const table = formatTable(["ID", "URL", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "REACHABLE", "PROGRESS"], rows);
  const problems = report.problems.length === 0 ? "" : "\n\nproblems:\n" + report.problems.map((p) => `  - ${p}`).join("\n");
  return `${head}\n\n${table}${problems}\n`;
}

/** The report as `raft status --json` prints it. */
export function statusJson(report: ClusterReport): unknown {
  return {
    clusterId: report.clusterId,
    leader: report.leader,
    members: report.rows.map((r) => ({
      id: r.id,
      url: r.url,
      voter: r.voter,
      reachable: r.status !== null,
      error: r.error,
      role: r.status?.role ?? null,
      term: r.status?.term ?? null,
      commitIndex: r.status?.commitIndex ?? null,
      lastApplied: r.status?.lastApplied ?? null,
      lag: r.lag,
      progress: r.progress === "" ? null : r.progress,
      version: typeof r.status?.version === "string" ? r.status.version : null,
      uptimeSeconds: typeof r.status?.uptimeSeconds === "number" ? r.status.uptimeSeconds : null,
    })),
    problems: report.problems,
  };
}
