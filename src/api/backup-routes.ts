/**
 * The backup and snapshot routes on every member's port, served where the
 * consensus loop runs (for any state machine with `snapshot()`, not only
 * the KV store), behind the client token when the member has a secret:
 *
 * - `GET /cluster/snapshot`: a backup file (`../storage/backup-file.ts`) of
 *   this member's state machine as of one committed index, streamed
 *   (`Content-Length` is the whole file; `X-Raft-Snapshot-Index` its index).
 *   Served by the member asked, leader or not: what it has applied is
 *   committed.
 * - `POST /cluster/snapshot`: takes a built-in snapshot on this member now
 *   and compacts its log up to it; answers `{index, term, bytes,
 *   compactedThrough}`.
 *
 * They are not under `/raft/` so that with mutual TLS between members a
 * client (not a member) may call them.
 *
 * @module
 */
import type { Hono } from "hono";
import { RaftError } from "../errors.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { BACKUP_BLOCK_BYTES, backupFileBytes, encodeBackup, encodeBackupHead } from "../storage/backup-file.ts";
import { bearerOk } from "../node/cluster-routes.ts";
import type { SnapshotTaken } from "../node/types.ts";
import { errorReply, failureReply } from "./http.ts";

/** Path of both routes. */
export const SNAPSHOT_PATH = "/cluster/snapshot";
/** The response header carrying the backup's index. */
export const SNAPSHOT_INDEX_HEADER = "x-raft-snapshot-index";

/** What the routes need from the driver. */
export interface BackupSourceNode {
  readonly id: string;
  readonly clusterId: string;
  readonly serving: boolean;
  takeSnapshot(): Promise<SnapshotTaken>;
  backupSnapshot(): Promise<{ meta: SnapshotMeta; byteLength: number; chunks: AsyncIterable<Uint8Array>; release: () => Promise<void> }>;
}

function _noSnapshot(err: unknown): Response | null {
  if (err instanceof RaftError && /has no snapshot\(\)/.test(err.message)) return errorReply(501, err.message);
  return null;
}

/** Mounts `GET` and `POST /cluster/snapshot` (see the module comment). */
export function backupRoutes(app: Hono, opts: { getNode: () => BackupSourceNode; secret: Uint8Array | null; logger: (line: string) => void }): void {
  const refuse = (header: string | undefined): Response | null => {
    if (!bearerOk(header, opts.secret)) return errorReply(401, "a valid Authorization: Bearer <client token> header is required", {}, { connection: "close" });
    if (!opts.getNode().serving) return errorReply(503, "Member is starting (replaying its log); retry shortly", {}, { "retry-after": "1" });
    return null;
  };

  app.get(SNAPSHOT_PATH, async (c) => {
    const no = refuse(c.req.header("authorization"));
    if (no !== null) return no;
    const node = opts.getNode();
    let src: Awaited<ReturnType<BackupSourceNode["backupSnapshot"]>>;
    try {
      src = await node.backupSnapshot();
    } catch (err) {
      return _noSnapshot(err) ?? failureReply(c, err, "read");
    }
    const header = {
      index: src.meta.index,
      term: src.meta.term,
      members: src.meta.membership,
      clusterId: node.clusterId,
      memberId: node.id,
      payloadBytes: src.byteLength,
      createdAt: new Date().toISOString(),
    };
    const headBytes = encodeBackupHead(header).length - 20;
    const total = backupFileBytes(headBytes, src.byteLength, BACKUP_BLOCK_BYTES);
    const it = encodeBackup(header, src.chunks)[Symbol.asyncIterator]();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      void src.release();
    };
    opts.logger(`streaming a backup of snapshot ${src.meta.index} (${total} bytes)`);
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        try {
          const r = await it.next();
          if (r.done === true) {
            ctl.close();
            release();
          } else {
            ctl.enqueue(r.value);
          }
        } catch (err) {
          // The client sees a short body, which it refuses (the length and checksums say so).
          opts.logger(`backup stream failed: ${(err as Error).message}`);
          ctl.error(err);
          release();
        }
      },
      cancel() {
        void it.return?.();
        release();
      },
    });
    return new Response(body, {
      status: 200,
      headers: { "content-type": "application/octet-stream", "content-length": String(total), [SNAPSHOT_INDEX_HEADER]: String(src.meta.index), "cache-control": "no-store" },
    });
  });

  app.post(SNAPSHOT_PATH, async (c) => {
    const no = refuse(c.req.header("authorization"));
    if (no !== null) return no;
    try {
      const taken = await opts.getNode().takeSnapshot();
      return c.json(taken);
    } catch (err) {
      return _noSnapshot(err) ?? failureReply(c, err, "read");
    }
  });
}
