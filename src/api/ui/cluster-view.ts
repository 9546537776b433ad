/**
 * What the dashboard shows of the cluster, made from the report `raft
 * status` prints (src/api/status-report.ts): the same rows and the same
 * problems in words, with the facts the page draws from (the leader's view
 * of each member, the last time any member heard from it) laid out flat.
 *
 * @module
 */
import type { ApiRole, CatchUpProgress } from "../cluster-routes.ts";
import type { ClusterReport } from "../status-report.ts";

/** One member as the page shows it. */
export interface DashboardMember {
  readonly id: string;
  readonly url: string;
  readonly voter: boolean;
  /** Its own answer; "down" when it did not answer. */
  readonly role: ApiRole | "down";
  /** Why it did not answer (null when it did). */
  readonly error: string | null;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly lastApplied: number | null;
  /** Entries behind the leader (the leader's view, else estimated). */
  readonly lag: number | null;
  /** The leader's view: heard from within an election timeout. */
  readonly reachableFromLeader: boolean | null;
  /** The leader's view: highest index known replicated there. */
  readonly matchIndex: number | null;
  /** The latest time any member that answered received a message from it (ms since the epoch). */
  readonly lastHeardAtMs: number | null;
  readonly catchUp: CatchUpProgress | null;
  readonly snapshotTransfer: { readonly sentBytes: number; readonly totalBytes: number | null } | null;
  /** Catch-up or snapshot progress in words, as `raft status` prints it. */
  readonly progress: string;
}

/** The cluster as the page shows it (the `report` message of `/events`). */
export interface DashboardReport {
  readonly clusterId: string | null;
  readonly leader: { readonly id: string; readonly url: string; readonly term: number } | null;
  /** The leader's last log index (the end of a catch-up bar); null without a leader. */
  readonly leaderLastIndex: number | null;
  /** Highest term any member that answered is in. */
  readonly term: number | null;
  readonly pendingConfigChange: boolean;
  readonly members: readonly DashboardMember[];
  /** What is wrong, in the words of `raft status`. */
  readonly problems: readonly string[];
}

/** Lays out a `ClusterReport` for the page. */
export function dashboardReport(report: ClusterReport): DashboardReport {
  const answered = report.rows.filter((r) => r.status !== null).map((r) => r.status!);
  const leaderRow = report.leader === null ? undefined : report.rows.find((r) => r.id === report.leader!.id);
  const members = report.rows.map((r): DashboardMember => {
    const s = r.status;
    let heard: number | null = null;
    for (const a of answered) {
      const t = a.members.find((m) => m.id === r.id)?.lastHeardAtMs ?? null;
      if (t !== null && (heard === null || t > heard)) heard = t;
    }
    return {
      id: r.id,
      url: r.url,
      voter: r.voter,
      role: s === null ? "down" : s.role,
      error: r.error,
      term: s?.term ?? null,
      commitIndex: s?.commitIndex ?? null,
      lastApplied: s?.lastApplied ?? null,
      lag: r.lag,
      reachableFromLeader: r.leaderView?.reachable ?? null,
      matchIndex: r.leaderView?.matchIndex ?? null,
      lastHeardAtMs: heard,
      catchUp: r.leaderView?.catchUp ?? null,
      snapshotTransfer: r.leaderView?.snapshotTransfer ?? null,
      progress: r.progress,
    };
  });
  return {
    clusterId: report.clusterId,
    leader: report.leader,
    leaderLastIndex: leaderRow?.status?.lastIndex ?? null,
    term: answered.length === 0 ? null : Math.max(...answered.map((a) => a.term)),
    pendingConfigChange: leaderRow?.status?.pendingConfigChange ?? false,
    members,
    problems: report.problems,
  };
}
