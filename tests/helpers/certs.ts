/**
 * Certificates for the TLS tests, made at test time with `openssl` (none are
 * committed): a CA, a second CA nobody trusts, and leaf certificates signed
 * by them. Leaves carry `subjectAltName` IP:127.0.0.1 and DNS:localhost
 * (unless the point is a wrong name) and are good for both server and
 * client authentication, as etcd's member certificates are. EC P-256 keys:
 * the whole set takes a few tens of milliseconds.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A certificate and its key, as PEM text and as files. */
export interface TestPem {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** The set one test file uses. */
export interface TestCerts {
  readonly dir: string;
  /** The CA every member trusts (`--trusted-ca-file`, `--cacert`). */
  readonly ca: TestPem;
  /** Another CA, trusted by nobody. */
  readonly otherCa: TestPem;
  /** A member certificate for 127.0.0.1, signed by `ca`. */
  readonly member: TestPem;
  /** A second member certificate from `ca` (CN=renewed), for reload tests. */
  readonly renewed: TestPem;
  /** A client certificate (CN=client) signed by `ca`. */
  readonly client: TestPem;
  /** A member certificate for 127.0.0.1 signed by `otherCa`. */
  readonly otherMember: TestPem;
  /** Signed by `ca`, expired yesterday. */
  readonly expired: TestPem;
  /** Signed by `ca` for DNS:elsewhere.example only. */
  readonly wrongName: TestPem;
  /** Removes the directory. */
  remove(): void;
}

function _openssl(args: readonly string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error !== undefined) {
    throw new Error(`The TLS tests need openssl (Debian: apt-get install -y openssl; .ci/run installs it): ${r.error.message}`);
  }
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
}

const _KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

function _pem(dir: string, name: string): TestPem {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}-key.pem`);
  return { cert: fs.readFileSync(certFile, "utf8"), key: fs.readFileSync(keyFile, "utf8"), certFile, keyFile };
}

function _ca(dir: string, name: string): TestPem {
  _openssl(["req", "-x509", ..._KEY, "-keyout", `${name}-key.pem`, "-out", `${name}.pem`, "-days", "30", "-subj", `/CN=${name}`], dir);
  return _pem(dir, name);
}

function _leaf(dir: string, name: string, ca: string, san: string, days: number): TestPem {
  _openssl(["req", ..._KEY, "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
  const serial = `0x${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  // -days -1 makes notAfter a day before notBefore: an expired certificate, with no fake clock.
  _openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}-key.pem`, "-set_serial", serial, "-out", `${name}.pem`, "-days", String(days), "-extfile", `${name}.ext`], dir);
  return _pem(dir, name);
}

/** Makes a fresh set under a new temp directory. */
export function makeTestCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raft-certs-"));
  const loopback = "IP:127.0.0.1,DNS:localhost";
  const ca = _ca(dir, "ca");
  const otherCa = _ca(dir, "other-ca");
  return {
    dir,
    ca,
    otherCa,
    member: _leaf(dir, "member", "ca", loopback, 30),
    renewed: _leaf(dir, "renewed", "ca", loopback, 30),
    client: _leaf(dir, "client", "ca", "DNS:client", 30),
    otherMember: _leaf(dir, "other-member", "other-ca", loopback, 30),
    expired: _leaf(dir, "expired", "ca", loopback, -1),
    wrongName: _leaf(dir, "wrong-name", "ca", "DNS:elsewhere.example", 30),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
