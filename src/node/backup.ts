/**
 * The client side of backups (`raft snapshot save`, `raft snapshot take`,
 * `raft snapshot status`), for the CLI and the library: downloads a backup
 * file from a member's `GET /cluster/snapshot` into `FILE.part`, makes it
 * durable, checks it whole, renames it to `FILE` and fsyncs the directory;
 * asks a member to snapshot and compact now; reads a backup's header.
 *
 * Over plain HTTP the file is streamed to disk as it arrives; over HTTPS it
 * is read into memory first (the runtime adapters' TLS client returns whole
 * bodies), then written.
 *
 * @module
 */
import * as path from "node:path";
import { runtime as defaultRuntime } from "../../adapters/mod.ts";
import type { RuntimeAdapter, TlsClientOptions } from "../../adapters/types.ts";
import { RaftError } from "../errors.ts";
import { SNAPSHOT_PATH } from "../api/backup-routes.ts";
import { type BackupInfo, readBackupInfo } from "../storage/backup-file.ts";
import { nodeFileLayer } from "../storage/file-layer.ts";
import { clientTokenFor } from "../transport/credentials.ts";
import { describeNetworkError } from "../transport/network-error.ts";
import type { SnapshotTaken } from "./types.ts";

/** How to reach a member. */
export interface MemberClientOptions {
  /** The client token (`raft token`), or the cluster secret to derive it from. */
  readonly token?: string;
  readonly secret?: Uint8Array;
  /** What to trust and present for https:// URLs. */
  readonly tls?: TlsClientOptions;
  /** Give up after this long. Default 10 minutes for a save, 2 minutes for a take. */
  readonly timeoutMs?: number;
  readonly runtime?: RuntimeAdapter;
}

/** Options of `saveBackup`. */
export interface SaveBackupOptions extends MemberClientOptions {
  /** Called as bytes arrive: received so far, and the whole file's size (null when unknown). */
  readonly onProgress?: (receivedBytes: number, totalBytes: number | null) => void;
}

function _headers(o: MemberClientOptions): Record<string, string> {
  const token = o.token ?? (o.secret === undefined ? undefined : clientTokenFor(o.secret));
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

function _base(source: string | { readonly url: string }): string {
  return (typeof source === "string" ? source : source.url).replace(/\/+$/, "");
}

function _refusal(url: string, status: number, body: Uint8Array): RaftError {
  let why = new TextDecoder().decode(body).trim().slice(0, 500);
  try {
    const e = (JSON.parse(why) as { error?: unknown }).error;
    if (typeof e === "string") why = e;
  } catch {
    // not JSON: the text itself
  }
  return new RaftError(`${url} answered HTTP ${status}: ${why}`);
}

/**
 * Saves a backup of the state machine of the member at `source` (a URL,
 * or a running `RaftNode`, reached at its URL) into `file`: written to
 * `file.part`, fsynced, checked whole, renamed to `file`, directory fsynced.
 * Resolves with what the file holds.
 *
 * @throws RaftError when the member refuses (401, 501 for a state machine without snapshot()) or cannot be reached
 * @throws BackupCorruptError when what arrived is short or damaged (`file.part` is removed)
 */
export async function saveBackup(source: string | { readonly url: string }, file: string, opts: SaveBackupOptions = {}): Promise<BackupInfo> {
  const url = `${_base(source)}${SNAPSHOT_PATH}`;
  const target = path.resolve(file);
  const part = `${target}.part`;
  const fsl = nodeFileLayer;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const out = await fsl.open(part, "replace");
  let ok = false;
  try {
    let at = 0;
    if (url.startsWith("https:")) {
      const client = (opts.runtime ?? defaultRuntime).httpClient(opts.tls);
      try {
        let res;
        try {
          res = await client.request({ method: "GET", url, headers: _headers(opts), timeoutMs });
        } catch (err) {
          throw new RaftError(`Cannot reach ${url}: ${describeNetworkError(err)}`);
        }
        if (res.status !== 200) throw _refusal(url, res.status, res.body);
        opts.onProgress?.(0, res.body.length);
        await fsl.pwrite(out, res.body, 0);
        at = res.body.length;
        opts.onProgress?.(at, at);
      } finally {
        client.close();
      }
    } else {
      let res: Response;
      try {
        res = await fetch(url, { headers: _headers(opts), signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        throw new RaftError(`Cannot reach ${url}: ${describeNetworkError(err)}`);
      }
      if (res.status !== 200) throw _refusal(url, res.status, new Uint8Array(await res.arrayBuffer()));
      const len = Number(res.headers.get("content-length"));
      const total = Number.isSafeInteger(len) && len > 0 ? len : null;
      opts.onProgress?.(0, total);
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          await fsl.pwrite(out, chunk, at);
          at += chunk.length;
          opts.onProgress?.(at, total);
        }
      } catch (err) {
        // Keep what arrived: the check below names where it ends.
        if (err instanceof RaftError) throw err;
      }
    }
    await fsl.fdatasync(out);
    await fsl.close(out);
    const info = readBackupInfo(part);
    await fsl.rename(part, target);
    const d = await fsl.openDir(path.dirname(target));
    try {
      await fsl.fsyncDir(d);
    } finally {
      await fsl.close(d);
    }
    ok = true;
    return { ...info, file: target };
  } finally {
    if (!ok) {
      await fsl.close(out).catch(() => {});
      await fsl.unlink(part).catch(() => {});
    }
  }
}

/**
 * Reads and checks a backup file whole (header, every block, the trailer).
 *
 * @throws BackupCorruptError naming the file and the offset when it is missing, truncated, damaged or not a backup
 */
export function backupStatus(file: string): BackupInfo {
  return readBackupInfo(path.resolve(file));
}

/**
 * Asks the member at `source` to take a built-in snapshot now and compact
 * its log up to it (`POST /cluster/snapshot`).
 *
 * @throws RaftError when it refuses (501: its state machine has no snapshot()/restore()) or cannot be reached
 */
export async function takeSnapshotOf(source: string | { readonly url: string }, opts: MemberClientOptions = {}): Promise<SnapshotTaken> {
  const url = `${_base(source)}${SNAPSHOT_PATH}`;
  const client = (opts.runtime ?? defaultRuntime).httpClient(opts.tls);
  try {
    let res;
    try {
      res = await client.request({ method: "POST", url, headers: _headers(opts), timeoutMs: opts.timeoutMs ?? 120_000 });
    } catch (err) {
      throw new RaftError(`Cannot reach ${url}: ${describeNetworkError(err)}`);
    }
    if (res.status !== 200) throw _refusal(url, res.status, res.body);
    return JSON.parse(new TextDecoder().decode(res.body)) as SnapshotTaken;
  } finally {
    client.close();
  }
}
