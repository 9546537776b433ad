/**
 * The transport seam: how the driver's messages leave the node. Production
 * passes `Peers` (`./peers.ts`: HTTP peer clients); the simulator passes its
 * seeded network. What arrives goes the other way, into the driver's
 * `receive` and its snapshot sink, called by the peer routes or by the
 * simulated network.
 *
 * @module
 */
import type { Message, MsgSnap, NodeId } from "../raft/types.ts";

/** A snapshot's bytes from an offset (a resumed transfer restarts there). */
export type SnapshotChunks = (offset: number) => AsyncIterable<Uint8Array>;

/** Outgoing traffic to the other members. */
export interface Transport {
  /** Sends messages (never a MsgSnap), fire and forget: a lost one is Raft's to repair. */
  send(msgs: readonly Message[]): void;
  /**
   * Streams a snapshot to `msg.to`; resolves once the receiver has it
   * durably and has handed `msg` to its core, rejects if the transfer fails.
   */
  sendSnapshot(msg: MsgSnap, chunks: SnapshotChunks, totalBytes: number, onProgress: (sentBytes: number) => void): Promise<void>;
  /** Records where `id` is reached (from the membership, or join information). */
  setUrl(id: NodeId, url: string): void;
  /** The URL `id` is reached at, if known. */
  url(id: NodeId): string | undefined;
  /** Stops sending; transfers in flight reject. */
  close(): void;
}
