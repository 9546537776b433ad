/**
 * TLS failures in words an operator can act on. Each runtime reports a failed
 * handshake its own way (Node and Bun: OpenSSL codes such as
 * `CERT_HAS_EXPIRED`; Deno: rustls messages such as "invalid peer
 * certificate: Expired"); these functions map all of them to one short
 * reason, the same on every runtime.
 *
 * - `explainHttpError`: a failed client request becomes a `TlsError` when TLS
 *   is why (certificate not trusted, expired, wrong name; or one side speaks
 *   plain HTTP): probing the port with a TLS handshake tells a plain-HTTP
 *   request to an HTTPS member from a member that is down.
 * - `handshakeReason`: why a server-side handshake failed.
 * - `peerCertificateReason`: why a client certificate was not accepted.
 *
 * @module
 */
import { TlsError } from "../../src/errors.ts";

/** Every code and message on an error and its causes, as one string to match against. */
function _text(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== null && e !== undefined && depth < 4; depth++) {
    if (typeof e !== "object") {
      parts.push(String(e));
      break;
    }
    const o = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof o.code === "string") parts.push(o.code);
    if (typeof o.message === "string") parts.push(o.message);
    e = o.cause;
  }
  return parts.join(" | ");
}

/** Certificate verification failures, by OpenSSL code and rustls wording. */
const _REASONS: readonly [RegExp, (host: string) => string][] = [
  [/CERT_HAS_EXPIRED|certificate has expired|invalid peer certificate: Expired/i, () => "its certificate has expired"],
  [/CERT_NOT_YET_VALID|certificate is not yet valid|NotValidYet/i, () => "its certificate is not valid yet (check the clocks)"],
  [/ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match|certificate not valid for name|NotValidForName/i, (host) => `its certificate does not name ${host} (subjectAltName)`],
  [
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_SIGNATURE_FAILURE|UnknownIssuer|BadSignature|unable to verify the first certificate|self[- ]signed certificate/i,
    () => "its certificate is not signed by a CA this side trusts (check --trusted-ca-file / --cacert)",
  ],
  [/CERTIFICATE_REQUIRED|CertificateRequired/i, () => "it requires a client certificate (give one signed by its CA)"],
  [/ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_EXPIRED|fatal alert: (BadCertificate|UnknownCA|CertificateExpired)/i, () => "it refused this side's client certificate"],
];

/** One side speaks TLS, the other not (or the handshake broke for a reason the runtime does not name). */
const _NOT_TLS = /WRONG_VERSION_NUMBER|wrong version number|InvalidContentType|Does the server speak TLS|EPROTO|packet length too long|unknown protocol/i;

/** Answers that say nothing was listening, or that there was simply no answer in time. */
const _NOT_THERE = /ECONNREFUSED|Connection refused|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|TimeoutError|AbortError|timed out|aborted/i;

/**
 * Turns a failed request into a `TlsError` when TLS is why; otherwise
 * returns `err` unchanged. `speaksTls` probes the port (see
 * `RuntimeAdapter.speaksTls`); it is only called when the error alone is
 * ambiguous, so the peer hot path pays nothing while requests succeed.
 */
export async function explainHttpError(url: string, err: unknown, speaksTls: (host: string, port: number) => Promise<boolean>): Promise<unknown> {
  if (err instanceof TlsError) return err;
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return err;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return err;
  }
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const port = u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port);
  const text = _text(err);
  if (u.protocol === "https:") {
    for (const [re, reason] of _REASONS) if (re.test(text)) return new TlsError(url, reason(host), err);
    if (!_NOT_TLS.test(text)) return err;
    const tls = await speaksTls(host, port).catch(() => false);
    return new TlsError(
      url,
      tls ? `the TLS handshake failed (${text.split(" | ")[0]})` : `it does not speak TLS on port ${port} (a plain-HTTP member? use http://${u.host})`,
      err,
    );
  }
  // Plain HTTP that got no answer: a TLS server drops such a connection without a word.
  if (_NOT_THERE.test(text)) return err;
  if (await speaksTls(host, port).catch(() => false)) {
    return new TlsError(url, `it speaks HTTPS (TLS), not plain HTTP: use https://${u.host}`, err);
  }
  return err;
}

/** Why a server-side TLS handshake failed (a node:tls `tlsClientError`), in one line. */
export function handshakeReason(err: unknown): string {
  const text = _text(err);
  if (/HTTP_REQUEST|http request/i.test(text)) return "the client spoke plain HTTP to this HTTPS port (it should use https://)";
  if (/ALERT_UNKNOWN_CA|UnknownCA|ALERT_UNKNOWN_CERTIFICATE/i.test(text)) return "the client does not trust this member's certificate (alert: unknown CA)";
  if (/ALERT_CERTIFICATE_EXPIRED|CertificateExpired/i.test(text)) return "the client says this member's certificate has expired";
  if (/ALERT_BAD_CERTIFICATE|BadCertificate/i.test(text)) return "the client refused this member's certificate (does it name the address the client dialled?)";
  if (/ECONNRESET|socket hang up/i.test(text)) return "the client closed the connection during the handshake (it may not trust this member's certificate)";
  if (_NOT_TLS.test(text)) return "the client does not speak TLS (plain HTTP to this HTTPS port? it should use https://)";
  return `the handshake failed (${text.split(" | ")[0] ?? "unknown error"})`;
}

/** Why a client certificate was not accepted, from node:tls's `authorizationError` (a code string or an Error). */
export function peerCertificateReason(authorizationError: unknown, presented: boolean): string {
  if (!presented) return "no client certificate";
  const text = _text(authorizationError);
  const code = text.split(" | ")[0] ?? "unknown error";
  if (/EXPIRED/i.test(text)) return `its certificate has expired (${code})`;
  if (/NOT_YET_VALID/i.test(text)) return `its certificate is not valid yet (${code})`;
  return `its certificate is not signed by this member's trusted CA (${code})`;
}
