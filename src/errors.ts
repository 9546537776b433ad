/**
 * The closed set of errors the module raises. Every error a caller can see is
 * one of these classes, so callers branch on `instanceof`, never on message
 * text. Messages name the thing that failed and what to do about it.
 *
 * @module
 */

/** Base class of every error this module raises on purpose. */
export class RaftError extends Error {
  override name = "RaftError";
}

/**
 * The operation needs the leader and this member is not it. Carries the
 * leader's id and URL when one is known, so a client can redirect.
 */
export class NotLeaderError extends RaftError {
  override name = "NotLeaderError";
  /** The leader's id, or null while no leader is known. */
  readonly leaderId: string | null;
  /** The leader's URL, or null while no leader is known. */
  readonly leaderUrl: string | null;
  constructor(leaderId: string | null, leaderUrl: string | null) {
    super(
      leaderId === null
        ? "This member is not the leader and no leader is known yet; retry shortly"
        : `This member is not the leader; the leader is ${leaderId} at ${leaderUrl ?? "an unknown URL"}`,
    );
    this.leaderId = leaderId;
    this.leaderUrl = leaderUrl;
  }
}

/**
 * A file in the data directory does not hold what was written to it. The node
 * refuses to start rather than guess; `file` and `offset` say where to look.
 */
export class StorageCorruptError extends RaftError {
  override name = "StorageCorruptError";
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super(`Corrupt data in ${file} at byte offset ${offset}: ${detail}. The node will not start; restore this member from a snapshot or remove and re-add it`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * A backup file (`raft snapshot save`) is missing, truncated, damaged or not
 * a backup: nothing is restored from it. `file` and `offset` say where.
 */
export class BackupCorruptError extends RaftError {
  override name = "BackupCorruptError";
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super(`Backup file ${file} is unusable at byte offset ${offset}: ${detail}`);
    this.file = file;
    this.offset = offset;
  }
}

/**
 * A write, fsync, rename or truncate failed. The store stops for good: after a
 * failed fsync the kernel may have dropped the dirty pages, so retrying and
 * assuming success could report lost data as durable ("fsyncgate").
 */
export class StorageFailedError extends RaftError {
  override name = "StorageFailedError";
  readonly file: string;
  constructor(file: string, operation: string, cause: unknown) {
    super(`Storage failed: ${operation} on ${file}: ${cause instanceof Error ? cause.message : String(cause)}. The node has stopped; nothing after this point was made durable`, { cause });
    this.file = file;
  }
}

/** The data directory is locked by another live process. */
export class LockedError extends RaftError {
  override name = "LockedError";
  readonly dir: string;
  readonly holderPid: number | null;
  constructor(dir: string, holderPid: number | null) {
    super(
      `Data directory ${dir} is locked by another process${holderPid === null ? "" : ` (pid ${holderPid})`}; stop it or use another directory`,
    );
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/**
 * A proposal, read or membership change did not complete: the node shut down,
 * lost leadership, or the entry was overwritten by a new leader. Whether the
 * operation took effect is stated by `outcome`.
 */
export class ProposalDroppedError extends RaftError {
  override name = "ProposalDroppedError";
  /** "not-applied": certainly had no effect; "unknown": it may still commit. */
  readonly outcome: "not-applied" | "unknown";
  constructor(reason: string, outcome: "not-applied" | "unknown") {
    super(`${reason} (${outcome === "unknown" ? "outcome unknown: it may still commit" : "it was not applied"})`);
    this.outcome = outcome;
  }
}

/** A membership change was refused or could not finish (reason in the message). */
export class MembershipChangeError extends RaftError {
  override name = "MembershipChangeError";
}

/** A configuration value, argument or input is invalid. */
export class InvalidArgumentError extends RaftError {
  override name = "InvalidArgumentError";
}

/** The node has been closed, or stopped after a fatal error; no call can succeed. */
export class ClosedError extends RaftError {
  override name = "ClosedError";
}

/** A network request or an operation did not finish within its deadline. */
export class TimeoutError extends RaftError {
  override name = "TimeoutError";
}

/** The data directory's file system is below the configured free-space minimum: new proposals are refused. */
export class DiskSpaceError extends RaftError {
  override name = "DiskSpaceError";
}

/**
 * A TLS connection could not be made: the other side's certificate is not
 * trusted, has expired or does not name the host; or one side speaks TLS and
 * the other plain HTTP. `reason` says which, in words an operator can act on.
 */
export class TlsError extends RaftError {
  override name = "TlsError";
  /** The URL that was asked for. */
  readonly url: string;
  /** One line, e.g. "its certificate has expired". */
  readonly reason: string;
  constructor(url: string, reason: string, cause?: unknown) {
    super(`TLS: ${reason}`, cause === undefined ? undefined : { cause });
    this.url = url;
    this.reason = reason;
  }
}

/**
 * A request from a peer or a client was refused before it changed anything;
 * `status` is the HTTP status that says why (403: not a member, 409: stale,
 * 410: a removed member, 413: too large, 503: busy, retry, 507: no room).
 */
export class RefusedError extends RaftError {
  override name = "RefusedError";
  /** The HTTP status to answer with. */
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
