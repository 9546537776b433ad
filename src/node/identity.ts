/**
 * The member's identity, saved in the data directory on first start so that
 * `raft start --data DIR` alone can restart it: its id, the URL peers use,
 * where it listens, and the cluster it belongs to. Written atomically
 * (tmp + fsync + rename + directory fsync) and framed with a checksum;
 * JSON inside is fine here: it is read once at start-up, never on a hot path.
 *
 * @module
 */
import { atomicWriteFile, frameSmallFile, readSmallFile, unframeSmallFile } from "../storage/atomic-file.ts";
import { type FileLayer, nodeFileLayer } from "../storage/file-layer.ts";
import { InvalidArgumentError, StorageCorruptError } from "../errors.ts";
import * as path from "node:path";
import { MEMBER_ID_RE } from "../raft/limits.ts";

/** The identity file's name inside the data directory. */
export const IDENTITY_FILE_NAME = "IDENTITY";
const _MAGIC = 0x52494430; // "RID0"

/**
 * Where a CLI-started member's TLS files are, so that `raft start --data
 * DIR` alone restarts it with TLS on. Paths as given (resolved to absolute).
 */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | null;
  readonly clientCertAuth: boolean;
}

/** Who this member is. */
export interface NodeIdentity {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly clusterId: string;
  /** Absent for a member without TLS (and for one started through the library, which passes PEM text). */
  readonly tls?: TlsFiles;
}

/** Ids: 1-64 characters from a conservative set (they appear in URLs, file names and logs). */
export const NODE_ID_RE = MEMBER_ID_RE;

/** @throws InvalidArgumentError when `id` is not a valid member id */
export function checkNodeId(id: string): void {
  if (!NODE_ID_RE.test(id)) {
    throw new InvalidArgumentError(`Member id ${JSON.stringify(id)} is invalid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** @throws InvalidArgumentError when `url` is not an absolute http(s) URL without a path */
export function checkMemberUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`Member URL ${JSON.stringify(url)} is not a valid URL; use e.g. http://127.0.0.1:7001`);
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || (u.pathname !== "/" && u.pathname !== "") || u.search !== "" || u.hash !== "") {
    throw new InvalidArgumentError(`Member URL ${JSON.stringify(url)} must be http(s)://HOST:PORT with no path`);
  }
}

/** Reads the identity, or null for a data directory that has none yet. */
export async function readIdentity(dataDir: string, fs: FileLayer = nodeFileLayer): Promise<NodeIdentity | null> {
  const bytes = await readSmallFile(dataDir, IDENTITY_FILE_NAME, fs);
  if (bytes === null) return null;
  const file = path.join(dataDir, IDENTITY_FILE_NAME);
  const payload = unframeSmallFile(_MAGIC, bytes, file);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new StorageCorruptError(file, 8, "the identity is not valid JSON");
  }
  const o = v as Record<string, unknown>;
  if (
    typeof o.id !== "string" || typeof o.url !== "string" || typeof o.host !== "string" ||
    typeof o.port !== "number" || !Number.isInteger(o.port) || typeof o.clusterId !== "string"
  ) {
    throw new StorageCorruptError(file, 8, "the identity lacks id, url, host, port or clusterId");
  }
  const identity = { id: o.id, url: o.url, host: o.host, port: o.port, clusterId: o.clusterId };
  if (o.tls === undefined) return identity;
  const t = o.tls as Record<string, unknown> | null;
  if (
    typeof t !== "object" || t === null || typeof t.certFile !== "string" || typeof t.keyFile !== "string" ||
    (t.caFile !== null && typeof t.caFile !== "string") || typeof t.clientCertAuth !== "boolean"
  ) {
    throw new StorageCorruptError(file, 8, "the identity's tls field lacks certFile, keyFile, caFile or clientCertAuth");
  }
  return { ...identity, tls: { certFile: t.certFile, keyFile: t.keyFile, caFile: t.caFile as string | null, clientCertAuth: t.clientCertAuth } };
}

/**
 * Records (or, with null, forgets) where the member's TLS files are, keeping
 * the rest of the identity. @throws InvalidArgumentError when `dataDir` holds no identity yet
 */
export async function saveIdentityTls(dataDir: string, tls: TlsFiles | null): Promise<void> {
  const current = await readIdentity(dataDir);
  if (current === null) throw new InvalidArgumentError(`Data directory ${dataDir} holds no member yet`);
  const { tls: _old, ...rest } = current;
  await writeIdentity(dataDir, tls === null ? rest : { ...rest, tls });
}

/** Saves the identity durably (atomic replace). */
export async function writeIdentity(dataDir: string, identity: NodeIdentity, fs: FileLayer = nodeFileLayer): Promise<void> {
  const payload = new TextEncoder().encode(JSON.stringify(identity));
  await atomicWriteFile(dataDir, IDENTITY_FILE_NAME, frameSmallFile(_MAGIC, payload), fs);
}
