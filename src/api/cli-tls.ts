/**
 * The command line's TLS, kept out of cli.ts: client flags (`--cacert`,
 * `--cert`, `--key`, `--insecure-skip-tls-verify`, etcdctl's names) to client
 * options; a member's flags (`--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth`, etcd's names) or the paths
 * saved with its identity to checked TLS options; and reloading them on
 * SIGHUP and when the files change. Errors are `InvalidArgumentError`s
 * naming the flag or file.
 *
 * @module
 */
import * as path from "node:path";
import process from "node:process";
import type { TlsClientOptions } from "../../adapters/types.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { NodeIdentity, TlsFiles } from "../node/identity.ts";
import { tlsMaterial } from "../node/member-tls.ts";
import { readPemFile, readTlsFiles, watchTlsFiles } from "../node/tls-files.ts";
import type { TlsOptions } from "../node/types.ts";

/** Parsed flag values, as `node:util` parseArgs gives them. */
type Values = Readonly<Record<string, string | boolean | undefined>>;

const _str = (v: Values, name: string) => (typeof v[name] === "string" ? v[name] as string : undefined);

/** The client TLS flags (parseArgs options), shared by every client command. */
export const CLIENT_TLS_FLAGS = {
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "insecure-skip-tls-verify": { type: "boolean" },
} as const;

/** The member TLS flags of `raft start` (parseArgs options). */
export const START_TLS_FLAGS = {
  "cert-file": { type: "string" },
  "key-file": { type: "string" },
  "trusted-ca-file": { type: "string" },
  "client-cert-auth": { type: "boolean" },
} as const;

/** What a client command trusts and presents, or null for the defaults. @throws InvalidArgumentError */
export function clientTlsFromFlags(v: Values): TlsClientOptions | null {
  const cacert = _str(v, "cacert");
  const cert = _str(v, "cert");
  const key = _str(v, "key");
  const skip = v["insecure-skip-tls-verify"] === true;
  if ((cert === undefined) !== (key === undefined)) throw new InvalidArgumentError("--cert and --key go together");
  if (cacert === undefined && cert === undefined && !skip) return null;
  const tls: { -readonly [K in keyof TlsClientOptions]: TlsClientOptions[K] } = {};
  if (cacert !== undefined) tls.ca = readPemFile(cacert, "CA certificate (--cacert)");
  if (cert !== undefined && key !== undefined) {
    tls.cert = readPemFile(cert, "client certificate (--cert)");
    tls.key = readPemFile(key, "client key (--key)");
  }
  if (skip) tls.insecureSkipVerify = true;
  return tls;
}

/** The member's TLS files from the flags, else the ones saved with its identity, else null. @throws InvalidArgumentError */
export function memberTlsFiles(v: Values, saved: NodeIdentity | null): TlsFiles | null {
  const certFile = _str(v, "cert-file");
  const keyFile = _str(v, "key-file");
  const caFile = _str(v, "trusted-ca-file");
  const clientCertAuth = v["client-cert-auth"] === true;
  if (certFile === undefined && keyFile === undefined && caFile === undefined && !clientCertAuth) return saved?.tls ?? null;
  if (certFile === undefined || keyFile === undefined) throw new InvalidArgumentError("TLS needs both --cert-file and --key-file");
  if (clientCertAuth && caFile === undefined) throw new InvalidArgumentError("--client-cert-auth needs --trusted-ca-file (the CA client certificates must be signed by)");
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile), caFile: caFile === undefined ? null : path.resolve(caFile), clientCertAuth };
}

/** Reads and checks the member's TLS files. @throws InvalidArgumentError naming the file that is missing, unreadable or wrong */
export function readMemberTls(files: TlsFiles): { tls: TlsOptions; summary: string } {
  const tls = readTlsFiles(files);
  const m = tlsMaterial(tls, { cert: files.certFile, key: files.keyFile, ca: files.caFile ?? "" });
  return { tls, summary: `${m.x509.subject.replace(/\n/g, ", ")}, valid until ${m.x509.validTo}` };
}

/**
 * Re-reads the member's TLS files on SIGHUP and when they change on disk
 * (see ./../node/tls-files.ts), and hands them to the running member; a
 * failure is logged and the previous certificate stays.
 */
export function reloadTlsOnChange(node: { reloadTls(tls: TlsOptions): Promise<void> }, files: TlsFiles, log: (line: string) => void): void {
  let running = Promise.resolve();
  const reload = (why: string) => {
    running = running.then(async () => {
      try {
        const { tls, summary } = readMemberTls(files);
        await node.reloadTls(tls);
        log(`reloaded the TLS certificate (${why}): ${summary}`);
      } catch (err) {
        log(`TLS reload (${why}) failed: ${(err as Error).message}; still using the previous certificate`);
      }
    });
  };
  process.on("SIGHUP", () => reload("SIGHUP"));
  watchTlsFiles(files, () => reload(`${files.certFile} or its key or CA changed`));
}
