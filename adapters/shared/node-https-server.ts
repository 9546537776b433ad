/**
 * HTTPS on `node:https` through `@hono/node-server`: the Node adapter's TLS
 * server, and Deno's and Bun's when client certificates are asked for
 * (mutual TLS). `Deno.serve` cannot ask for client certificates at all
 * (denoland/deno#26825), and `Bun.serve` can but tells the handler nothing
 * about them per request; on `node:https` both runtimes report
 * `socket.authorized` and `authorizationError` like Node (checked on Deno
 * 2.9 and Bun 1.4).
 *
 * Client certificates are asked for but never required at the handshake:
 * the request reaches the app with `env.tlsPeer` saying what was proved, so
 * a member can accept clients without certificates and still require them
 * on peer routes, on one port, and refuse with a message instead of a reset.
 *
 * @module
 */
import { closeNodeServer, listenNodeServer, nodeServerOptions, type ServeLimits, serveLimits } from "./serve-limits.ts";
import type * as http from "node:http";
import * as https from "node:https";
import type * as net from "node:net";
import type * as tls from "node:tls";
import { createAdaptorServer } from "@hono/node-server";
import type { TlsApp, TlsEnv, TlsHttpServer, TlsPeer, TlsServerOptions } from "../types.ts";
import { relisten } from "./relisten.ts";
import { handshakeReason, peerCertificateReason } from "./tls-errors.ts";
import { turnGate } from "./turn-gate.ts";

/** How the runtime lets the certificate change on a running server. */
export type TlsReload = "in-place" | "relisten";

const _NO_PEER: TlsEnv = { tlsPeer: null };
const _peers = new WeakMap<object, TlsPeer>();

/** What the connection proved, computed once per connection. */
function _peerOf(socket: tls.TLSSocket): TlsPeer {
  let p = _peers.get(socket);
  if (p !== undefined) return p;
  const remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  const cert = socket.getPeerCertificate?.() as Partial<tls.PeerCertificate> | undefined;
  const cn = cert?.subject?.CN;
  const subject = typeof cn === "string" ? `CN=${cn}` : null;
  if (socket.authorized === true) {
    p = { verified: true, error: null, subject, remote };
  } else {
    // Without a certificate OpenSSL reports UNABLE_TO_GET_ISSUER_CERT (on all three runtimes); Bun leaves the subject out.
    const err = socket.authorizationError as unknown;
    const presented = (cert !== undefined && cert !== null && Object.keys(cert).length > 0) || !/^UNABLE_TO_GET_ISSUER_CERT$/.test(String((err as { code?: string })?.code ?? err));
    p = { verified: false, error: peerCertificateReason(err, presented), subject, remote };
  }
  _peers.set(socket, p);
  return p;
}

function _secureOptions(t: TlsServerOptions): https.ServerOptions {
  const o: https.ServerOptions = { cert: t.cert, key: t.key };
  if (t.ca !== undefined) {
    o.ca = t.ca;
    o.requestCert = true;
    o.rejectUnauthorized = false;
  }
  return o;
}

function _listen(app: TlsApp, host: string, port: number, t: TlsServerOptions, overrideGlobalObjects: boolean, limits: ServeLimits): Promise<https.Server> {
  const withPeer = t.ca !== undefined;
  const server = createAdaptorServer({
    fetch: (req: Request, env: { incoming: http.IncomingMessage }) => app.fetch(req, withPeer ? { tlsPeer: _peerOf(env.incoming.socket as tls.TLSSocket) } : _NO_PEER),
    hostname: host,
    port,
    createServer: (options: https.ServerOptions, listener: http.RequestListener) => https.createServer(options, turnGate(listener)),
    serverOptions: { ..._secureOptions(t), ...nodeServerOptions(limits) },
    overrideGlobalObjects,
  } as unknown as Parameters<typeof createAdaptorServer>[0]) as https.Server;
  server.on("tlsClientError", (err: Error, socket: net.Socket) => {
    // By now the TLS socket may have let go of its address; Deno keeps it on the TCP socket under it, Node not always.
    const raw = (socket as { _parent?: net.Socket })._parent ?? socket;
    t.onHandshakeError?.(raw.remoteAddress === undefined ? "a client (address no longer known)" : `${raw.remoteAddress}:${raw.remotePort ?? "?"}`, handshakeReason(err));
  });
  return listenNodeServer(server, host, port, limits, true).then(() => server);
}

/**
 * Serves `app` over HTTPS. `reload` says how `setTls` swaps certificates:
 * "in-place" with `setSecureContext` (Node, Deno), "relisten" by opening a
 * new listener on the same port after closing the old one (Bun, whose
 * node:https has no `setSecureContext`); open connections keep going either way.
 */
export async function serveNodeHttps(app: TlsApp, host: string, port: number, tls: TlsServerOptions, opts: { reload: TlsReload; overrideGlobalObjects: boolean }, limits: ServeLimits = serveLimits()): Promise<TlsHttpServer> {
  let server = await _listen(app, host, port, tls, opts.overrideGlobalObjects, limits);
  const bound = (server.address() as net.AddressInfo).port;
  const retired: https.Server[] = [];
  return {
    port: bound,
    async setTls(next) {
      if (opts.reload === "in-place") {
        server.setSecureContext(_secureOptions(next));
        return;
      }
      const old = server;
      retired.push(old);
      // Stop listening (the port frees at once); connections still open finish on the old certificate.
      old.close();
      old.closeIdleConnections();
      server = await relisten(() => _listen(app, host, bound, next, opts.overrideGlobalObjects, limits));
    },
    async close() {
      await Promise.all([server, ...retired].map((s) => closeNodeServer(s)));
    },
  };
}
