/**
 * A member's TLS, as a wrapped `RuntimeAdapter`: its `serve` serves HTTPS
 * with the member's certificate and its `httpClient` trusts the member's CA
 * and presents the member's certificate, so the driver, the peer transport
 * and joining use TLS without knowing about it. With a CA, a gate in front
 * of the app refuses peer routes (`/raft/...`: RPCs, info, join) to clients
 * that did not present a certificate from that CA, and, with
 * `requireClientCert`, every other route too; each refusal is a 403 whose
 * message says why, and a (rate-limited) line in the member's log.
 *
 * `reload` takes new certificates without a restart: new connections use
 * them (etcd likewise reloads per connection); open ones keep theirs.
 *
 * @module
 */
import { CLUSTER_ID_HEADER } from "../api/http.ts";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { HttpClient, HttpRequest, HttpResponse, HttpServer, RuntimeAdapter, TlsApp, TlsClientOptions, TlsEnv, TlsHttpServer, TlsServerOptions } from "../../adapters/types.ts";
import { isPeerUrl } from "../../adapters/shared/peer-route.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { TlsOptions } from "./types.ts";

/** Validated TLS material as PEM text. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | null;
  readonly requireClientCert: boolean;
  /** The parsed certificate (for expiry and name checks). */
  readonly x509: X509Certificate;
}

/** What the option fields are called in messages (the CLI passes its file names). */
export interface TlsNames {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

const _OPTION_NAMES: TlsNames = { cert: "tls.cert", key: "tls.key", ca: "tls.ca" };
const _decoder = new TextDecoder();
const _text = (v: string | Uint8Array): string => (typeof v === "string" ? v : _decoder.decode(v));
const _firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0]!;

/**
 * Checks and converts `tls`: the certificate and CA parse, the key parses
 * and belongs to the certificate.
 *
 * @throws InvalidArgumentError naming the field (or file) that is wrong
 */
export function tlsMaterial(tls: TlsOptions, names: TlsNames = _OPTION_NAMES): TlsMaterial {
  const cert = _text(tls.cert);
  const key = _text(tls.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new InvalidArgumentError(`The certificate in ${names.cert} is not a PEM certificate: ${_firstLine(err)}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new InvalidArgumentError(`The key in ${names.key} is not a PEM private key: ${_firstLine(err)}`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new InvalidArgumentError(`The key in ${names.key} does not belong to the certificate in ${names.cert} (${x509.subject.replace(/\n/g, ", ")})`);
  }
  let ca: string | null = null;
  if (tls.ca !== undefined) {
    ca = _text(tls.ca);
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new InvalidArgumentError(`The CA certificate in ${names.ca} is not a PEM certificate: ${_firstLine(err)}`);
    }
  }
  const requireClientCert = tls.requireClientCert === true;
  if (requireClientCert && ca === null) throw new InvalidArgumentError("Client certificate authentication needs a trusted CA to check them against (tls.ca, --trusted-ca-file)");
  return { cert, key, ca, requireClientCert, x509 };
}

/**
 * What an operator should hear about a certificate before peers refuse it:
 * expired, not valid yet, or not naming the host it is reached at.
 */
export function tlsWarnings(m: TlsMaterial, host: string, nowMs: number, certName = "the certificate"): string[] {
  const out: string[] = [];
  const notAfter = Date.parse(m.x509.validTo);
  const notBefore = Date.parse(m.x509.validFrom);
  if (notAfter < nowMs) out.push(`${certName} expired on ${new Date(notAfter).toISOString()}: peers and clients will refuse this member; renew it`);
  else if (notBefore > nowMs) out.push(`${certName} is not valid before ${new Date(notBefore).toISOString()}: peers and clients will refuse this member until then (check the clock)`);
  const bare = host.replace(/^\[|\]$/g, "");
  const named = /^[0-9.]+$|:/.test(bare) ? m.x509.checkIP(bare) !== undefined : m.x509.checkHost(bare) !== undefined;
  if (!named) out.push(`${certName} does not name ${bare} (its subjectAltName: ${m.x509.subjectAltName ?? "none"}): peers and clients reaching this member at ${bare} will refuse it`);
  return out;
}

/** Logs each distinct key at most once per interval. */
function _rateLimited(logger: (line: string) => void, intervalMs: number): (key: string, line: string) => void {
  const last = new Map<string, number>();
  return (key, line) => {
    const now = Date.now();
    const at = last.get(key);
    if (at !== undefined && now - at < intervalMs) return;
    if (last.size > 1000) last.clear();
    last.set(key, now);
    logger(line);
  };
}

const _REFUSAL_LOG_MS = 10_000;

/**
 * A client whose TLS settings can be replaced: requests already sent finish
 * on the old connections, which close once idle; new ones use the new settings.
 */
class _ReloadableClient implements HttpClient {
  #current: { client: HttpClient; inflight: number; retired: boolean };
  readonly #onClose: () => void;

  constructor(client: HttpClient, onClose: () => void) {
    this.#current = { client, inflight: 0, retired: false };
    this.#onClose = onClose;
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const g = this.#current;
    g.inflight++;
    return g.client.request(req).finally(() => {
      g.inflight--;
      if (g.retired && g.inflight === 0) g.client.close();
    });
  }

  swap(next: HttpClient): void {
    const old = this.#current;
    old.retired = true;
    if (old.inflight === 0) old.client.close();
    this.#current = { client: next, inflight: 0, retired: false };
  }

  close(): void {
    this.#current.client.close();
    this.#onClose();
  }
}

/** A member's TLS (see the module comment). */
export interface MemberTls {
  /** The adapter to use: serving and peer clients with TLS when it is on. */
  readonly runtime: RuntimeAdapter;
  /** "https" with TLS, else "http". */
  readonly scheme: "http" | "https";
  /**
   * Checks the member's URL against its TLS settings: https exactly when TLS
   * is on; logs a warning when the certificate does not name its host.
   * @throws InvalidArgumentError on a mismatch
   */
  checkUrl(url: string, dataDir: string): void;
  /** Replaces the certificates for new connections. @throws InvalidArgumentError for bad material, or a member without TLS */
  reload(tls: TlsOptions): Promise<void>;
  /** The cluster this member serves: its refusals carry the member header (`X-Raft-Cluster-Id`), as every answer does. */
  setClusterId(id: string): void;
}

/** Wraps `rt` for a member with `tls` (or returns it as is without). */
export function memberTls(rt: RuntimeAdapter, tls: TlsOptions | undefined, logger: (line: string) => void): MemberTls {
  if (tls === undefined) {
    return {
      runtime: rt,
      scheme: "http",
      checkUrl(url, dataDir) {
        if (url.startsWith("https:")) {
          throw new InvalidArgumentError(`Member URL ${url} is https:// but no TLS certificate was given: start it with its certificate and key (tls, --cert-file and --key-file; the URL is saved in ${dataDir})`);
        }
      },
      reload: () => Promise.reject(new InvalidArgumentError("This member was started without TLS: there is no certificate to reload")),
      setClusterId() {},
    };
  }
  let m = tlsMaterial(tls);
  let clusterId: string | null = null;
  const limited = _rateLimited(logger, _REFUSAL_LOG_MS);
  const servers = new Set<TlsHttpServer>();
  const clients = new Set<_ReloadableClient>();
  const serverOptions = (): TlsServerOptions => {
    const o: { -readonly [K in keyof TlsServerOptions]: TlsServerOptions[K] } = {
      cert: m.cert,
      key: m.key,
      onHandshakeError: (remote, reason) => limited(`hs ${remote.replace(/:\d+$/, "")} ${reason}`, `TLS handshake with ${remote} failed: ${reason}`),
    };
    if (m.ca !== null) o.ca = m.ca;
    return o;
  };
  const clientOptions = (): TlsClientOptions => (m.ca === null ? {} : { ca: m.ca, cert: m.cert, key: m.key });

  const refuse = (req: Request, env: TlsEnv, peerRoute: boolean): Response => {
    const p = env.tlsPeer;
    const why = p?.error ?? "no client certificate";
    const path = new URL(req.url).pathname;
    const who = `${p?.remote ?? "a client"}${p?.subject === null || p?.subject === undefined ? "" : ` (${p.subject})`}`;
    limited(`refuse ${p?.remote.replace(/:\d+$/, "") ?? ""} ${peerRoute} ${why}`, `refused ${req.method} ${path} from ${who}: ${why}; ${peerRoute ? "peer requests need a certificate from this member's trusted CA" : "clients need a certificate from this member's trusted CA (client certificate authentication is on)"}`);
    const error = peerRoute
      ? `This member accepts peer requests only with a client certificate signed by its trusted CA (mutual TLS between members): ${why}`
      : `This member requires a client certificate signed by its trusted CA (give --cert and --key): ${why}`;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (clusterId !== null) headers[CLUSTER_ID_HEADER] = clusterId;
    return new Response(JSON.stringify({ error }), { status: 403, headers });
  };
  /** Lets a request through when its client proved what its route needs. */
  const gate = (app: TlsApp): TlsApp => ({
    fetch(req, env) {
      if (m.ca === null || env.tlsPeer?.verified === true) return app.fetch(req, env);
      const peerRoute = isPeerUrl(req.url);
      if (!peerRoute && !m.requireClientCert) return app.fetch(req, env);
      return refuse(req, env, peerRoute);
    },
  });

  const runtime: RuntimeAdapter = {
    ...rt,
    async serve(app, host, port, limits): Promise<HttpServer> {
      const server = await rt.serveTls(gate(app as unknown as TlsApp), host, port, serverOptions(), limits);
      servers.add(server);
      return {
        port: server.port,
        close: async () => {
          servers.delete(server);
          await server.close();
        },
      };
    },
    httpClient(): HttpClient {
      const c = new _ReloadableClient(rt.httpClient(clientOptions()), () => clients.delete(c));
      clients.add(c);
      return c;
    },
  };
  return {
    runtime,
    scheme: "https",
    setClusterId(id) {
      clusterId = id;
    },
    checkUrl(url, dataDir) {
      if (!url.startsWith("https:")) {
        throw new InvalidArgumentError(`Member URL ${url} is plain http:// but TLS is on: use https://, or for a member created without TLS (its URL is saved in ${dataDir}) remove it and add it again`);
      }
      for (const w of tlsWarnings(m, new URL(url).hostname, Date.now())) logger(`warning: ${w}`);
    },
    async reload(next) {
      const fresh = tlsMaterial(next);
      if ((fresh.ca === null) !== (m.ca === null)) throw new InvalidArgumentError("A reload cannot turn mutual TLS on or off (the CA was added or removed): restart the member instead");
      m = fresh;
      await Promise.all([...servers].map((s) => s.setTls(serverOptions())));
      for (const c of clients) c.swap(rt.httpClient(clientOptions()));
    },
  };
}
