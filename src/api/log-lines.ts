/**
 * The lines `raft start` writes on stderr, as text or JSON (`--log-format`).
 * A node event (`NodeEvent`) becomes a line with its level, its type as
 * `event`, its fields, and a sentence; a plain log message becomes a line
 * with a level guessed from its words. Pure: the caller gives the time.
 *
 * JSON line fields: `ts` (ISO 8601), `level` ("info" | "warn" | "error"),
 * `member` (this member's id), `msg`; for events also `event` and the
 * event's own fields (`role`, `term`, `leader`, `members`, `round`, `lag`,
 * `reason`, `what`, `index`, `peer`, `error`), where the member an event is
 * about (a catch-up's `id`) is named `peer` so that it never reads as this
 * member.
 *
 * @module
 */
import type { NodeEvent } from "../node/types.ts";

/** A log line's severity. */
export type LogLevel = "info" | "warn" | "error";

/** Words that make a plain message a warning: it reports something that failed or was refused. */
const _WARN_RE = /\b(fail(ed|s|ure)?|error|refus(ed|ing)|cannot|could not|corrupt|lost|unreachable|dropped|aborted|timed out|gave up|giving up)\b/i;

/** The level of a plain log message: "warn" when it reports a failure or refusal, else "info". */
export function messageLevel(msg: string): LogLevel {
  if (/^(stopped: |FATAL: )/.test(msg)) return "error";
  return _WARN_RE.test(msg) ? "warn" : "info";
}

/** The level of an event: a stop with an error is "error"; a failed catch-up or a removal "warn". */
export function eventLevel(ev: NodeEvent): LogLevel {
  if (ev.type === "stopped") return ev.error === null ? "info" : "error";
  if (ev.type === "catch-up-failed" || ev.type === "removed") return "warn";
  return "info";
}

/** The event's fields for a JSON line (`type` becomes `event`; a catch-up's `id` becomes `peer`; an error its message). */
export function eventFields(ev: NodeEvent): Record<string, unknown> {
  switch (ev.type) {
    case "role":
      return { event: ev.type, role: ev.role, term: ev.term, leader: ev.leader };
    case "membership":
      return { event: ev.type, members: ev.members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })) };
    case "catch-up":
      return { event: ev.type, peer: ev.id, round: ev.round, lag: ev.lag };
    case "catch-up-failed":
      return { event: ev.type, peer: ev.id, reason: ev.reason };
    case "snapshot":
      return { event: ev.type, what: ev.what, index: ev.index, ...(ev.peer === undefined ? {} : { peer: ev.peer }) };
    case "stopped":
      return { event: ev.type, error: ev.error === null ? null : ev.error.message };
    default:
      return { event: ev.type };
  }
}

/** The event in one sentence (the `msg` of its line). */
export function eventMessage(ev: NodeEvent): string {
  switch (ev.type) {
    case "role":
      if (ev.role === "leader") return `leader in term ${ev.term}`;
      return `${ev.role} in term ${ev.term}, ${ev.leader === null ? "no leader known" : `leader ${ev.leader}`}`;
    case "membership":
      return `membership: ${ev.members.map((m) => (m.voter ? m.id : `${m.id} (learner)`)).join(", ")}`;
    case "catch-up":
      return `catching up ${ev.id}: round ${ev.round}, ${ev.lag} entries behind`;
    case "catch-up-failed":
      return `catching up ${ev.id} failed: ${ev.reason}`;
    case "snapshot":
      return ev.what === "taken" ? `snapshot taken at index ${ev.index}` : ev.what === "sent" ? `snapshot at index ${ev.index} sent to ${ev.peer ?? "?"}` : `snapshot at index ${ev.index} installed`;
    case "removed":
      return "removed from the cluster";
    case "closing":
      return "closing";
    case "stopped":
      return ev.error === null ? "stopped" : `stopped: ${ev.error.message}`;
  }
}

/** One JSON line for a plain message. */
export function jsonMessageLine(ts: Date, member: string, msg: string): string {
  return JSON.stringify({ ts: ts.toISOString(), level: messageLevel(msg), member, msg });
}

/** One JSON line for an event. */
export function jsonEventLine(ts: Date, member: string, ev: NodeEvent): string {
  return JSON.stringify({ ts: ts.toISOString(), level: eventLevel(ev), member, msg: eventMessage(ev), ...eventFields(ev) });
}

/** One text line: time, member, message. */
export function textLine(ts: Date, member: string, msg: string): string {
  return `${ts.toISOString()} ${member} ${msg}`;
}
