/**
 * Outgoing traffic to the other members: one `PeerClient` per member,
 * created and dropped as the membership changes, messages grouped by
 * destination so one request carries everything a turn produced for a peer.
 * Replies to a member that is holding a request open for them go back in
 * that request's response instead (`ReplySlots`, reply-slots.ts); replies
 * that come back in our own requests' responses go to `onReplies`.
 *
 * @module
 */
import type { HttpClient } from "../../adapters/types.ts";
import type { Message, MsgSnap, NodeId } from "../raft/types.ts";
import { TlsError } from "../errors.ts";
import { PeerClient } from "../transport/peer-client.ts";
import type { ReplySlots } from "../transport/reply-slots.ts";
import type { NodeCounters } from "./metrics.ts";
import type { SnapshotChunks, Transport } from "./transport.ts";

/** How often the same refusal of the same peer is logged again. */
const _REFUSAL_LOG_MS = 60_000;

/** What `Peers` needs to know. */
export interface PeersOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly secret: Uint8Array | null;
  readonly http: HttpClient;
  readonly requestTimeoutMs: number;
  readonly counters: NodeCounters;
  readonly onUnreachable: (id: NodeId, reason: string) => void;
  /** `id` answered 410: it saw this member's removal commit. */
  readonly onGone?: (id: NodeId) => void;
  readonly logger: (line: string) => void;
  /** Responses held open by the peer routes: replies to their senders go there first. Its owner closes it (before the server). */
  readonly replySlots?: ReplySlots;
  /** Replies that came back in the responses to our requests (the driver's `receive`). Without it, none are asked for. */
  readonly onReplies?: (msgs: Message[]) => void;
}

/** The set of peer clients (see the module comment): the production `Transport`. */
export class Peers implements Transport {
  readonly #o: PeersOptions;
  readonly #clients = new Map<NodeId, PeerClient>();
  /** Every URL we know a member by (config members, join info), even outside the config. */
  readonly #urls = new Map<NodeId, string>();
  readonly #unknownLogged = new Set<NodeId>();
  readonly #refusalLogged = new Map<NodeId, { line: string; atMs: number }>();
  readonly #goneLogged = new Set<NodeId>();

  constructor(opts: PeersOptions) {
    this.#o = opts;
  }

  /** Records where `id` is reached; replaces its client if the URL changed. */
  setUrl(id: NodeId, url: string): void {
    if (id === this.#o.nodeId) return;
    if (this.#urls.get(id) === url) return;
    this.#urls.set(id, url);
    const old = this.#clients.get(id);
    if (old !== undefined) {
      old.close();
      this.#clients.delete(id);
    }
  }

  /** The URL `id` is reached at, if known. */
  url(id: NodeId): string | undefined {
    return this.#urls.get(id);
  }

  /** The client for `id`, created on first use; undefined if its URL is unknown. */
  client(id: NodeId): PeerClient | undefined {
    let c = this.#clients.get(id);
    if (c !== undefined) return c;
    const url = this.#urls.get(id);
    if (url === undefined) {
      if (!this.#unknownLogged.has(id)) {
        this.#unknownLogged.add(id);
        this.#o.logger(`no URL known for member ${id}; its messages are dropped until one is`);
      }
      return undefined;
    }
    c = new PeerClient({
      peerId: id,
      peerUrl: url,
      clusterId: this.#o.clusterId,
      nodeId: this.#o.nodeId,
      secret: this.#o.secret,
      http: this.#o.http,
      requestTimeoutMs: this.#o.requestTimeoutMs,
      ...(this.#o.onReplies === undefined ? {} : { onReplies: this.#o.onReplies }),
      onUnreachable: (peer, reason, error) => {
        this.#logRefusal(peer, url, reason, error);
        this.#o.onUnreachable(peer, reason);
      },
      onGone: (peer) => {
        this.#o.onGone?.(peer);
        if (this.#goneLogged.has(peer)) return;
        this.#goneLogged.add(peer);
        this.#o.logger(`member ${peer} answers 410: this member was removed from the cluster; stop it, and wipe its data directory before adding it again`);
      },
    });
    this.#clients.set(id, c);
    return c;
  }

  /**
   * Logs why `peer` cannot be talked to when the reason is one an operator
   * must fix (TLS: an untrusted, expired or misnamed certificate; a 403: the
   * peer refused our certificate), once per peer until the reason changes or
   * a minute has passed; other failures (a peer that is down) stay quiet.
   */
  #logRefusal(peer: NodeId, url: string, reason: string, error: unknown): void {
    let line: string;
    if (error instanceof TlsError) line = error.message;
    else if (/^HTTP 403 /.test(reason)) line = reason.replace(/^HTTP 403 from \S+: /, "refused (HTTP 403): ");
    else return;
    const last = this.#refusalLogged.get(peer);
    const now = Date.now();
    if (last !== undefined && last.line === line && now - last.atMs < _REFUSAL_LOG_MS) return;
    this.#refusalLogged.set(peer, { line, atMs: now });
    this.#o.logger(`cannot talk to member ${peer} at ${url}: ${line}`);
  }

  /** Sends `msgs` grouped by destination (a MsgSnap goes through `sendSnapshot`, with its bytes). */
  send(msgs: readonly Message[]): void {
    if (msgs.length === 1) {
      this.#sendTo(msgs[0]!.to, msgs);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      let list = byPeer.get(m.to);
      if (list === undefined) byPeer.set(m.to, (list = []));
      list.push(m);
    }
    for (const [to, list] of byPeer) this.#sendTo(to, list);
  }

  #sendTo(to: NodeId, msgs: readonly Message[]): void {
    const rest = this.#o.replySlots?.take(to, msgs) ?? msgs;
    this.#o.counters.rpcsSent += msgs.length - rest.length;
    this.#o.counters.rpcsSentInResponses += msgs.length - rest.length;
    if (rest.length === 0) return;
    const c = this.client(to);
    if (c === undefined) return;
    c.send(rest);
    this.#o.counters.rpcsSent += rest.length;
  }

  /** Streams a snapshot to `msg.to`. */
  sendSnapshot(msg: MsgSnap, chunks: SnapshotChunks, totalBytes: number, onProgress: (bytes: number) => void): Promise<void> {
    const c = this.client(msg.to);
    if (c === undefined) return Promise.reject(new Error(`no URL known for member ${msg.to}`));
    return c.sendSnapshot(msg, chunks, { totalBytes, onProgress });
  }

  /** Drops clients of members no longer known. */
  retain(ids: ReadonlySet<NodeId>): void {
    for (const [id, c] of this.#clients) {
      if (!ids.has(id)) {
        c.close();
        this.#clients.delete(id);
      }
    }
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
