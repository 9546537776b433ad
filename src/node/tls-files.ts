/**
 * TLS certificate files for the command line: read them (a missing or
 * unreadable file is named in the error), and notice when they change on
 * disk so a renewed certificate is reloaded without a restart.
 *
 * Changes are found by polling each file's mtime, size and inode every few
 * seconds rather than with `fs.watch`: polling behaves the same on Node,
 * Deno and Bun, and survives the rename-into-place that certificate tools
 * (and Kubernetes secret mounts) use, which an inotify watch on the old
 * inode would miss.
 *
 * @module
 */
import * as fs from "node:fs";
import { InvalidArgumentError } from "../errors.ts";
import type { TlsFiles } from "./identity.ts";
import type { TlsOptions } from "./types.ts";

/** Reads a PEM file. @throws InvalidArgumentError naming the file */
export function readPemFile(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`Cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) throw new InvalidArgumentError(`The ${what} file ${file} holds no PEM block (-----BEGIN ...)`);
  return text;
}

/** The member's TLS options from its files. @throws InvalidArgumentError naming a file that cannot be read */
export function readTlsFiles(files: TlsFiles): TlsOptions {
  const tls: { -readonly [K in keyof TlsOptions]: TlsOptions[K] } = {
    cert: readPemFile(files.certFile, "TLS certificate"),
    key: readPemFile(files.keyFile, "TLS key"),
  };
  if (files.caFile !== null) tls.ca = readPemFile(files.caFile, "trusted CA");
  if (files.clientCertAuth) tls.requireClientCert = true;
  return tls;
}

function _signature(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ""}`;
  }
}

/**
 * Calls `onChange` when any of the files changes (checked every
 * `intervalMs`); returns the function that stops watching. The timer does
 * not keep the process alive.
 */
export function watchTlsFiles(files: TlsFiles, onChange: () => void, intervalMs = 2000): () => void {
  const paths = [files.certFile, files.keyFile, ...(files.caFile === null ? [] : [files.caFile])];
  let last = paths.map(_signature).join("|");
  const timer = setInterval(() => {
    const now = paths.map(_signature).join("|");
    if (now === last) return;
    last = now;
    onChange();
  }, intervalMs);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
