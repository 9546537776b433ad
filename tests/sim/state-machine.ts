/**
 * The simulator's replicated state machine: a running 32-bit hash over every
 * applied entry, so two replicas agree on their whole history iff they agree
 * on (index, hash). Cheap to snapshot (a few numbers), which is what lets the
 * simulator copy a leader's state for InstallSnapshot and compact logs at any
 * applied index.
 *
 * Client writes carry a proposal id in their first 4 bytes (see
 * {@link encodeProposal}); the checker uses it to tell acknowledged writes
 * apart and to catch an entry committed twice.
 *
 * @module
 */
import type { Entry } from "../../src/raft/types.ts";

/** The state after applying every entry up to `index`. Immutable. */
export interface SmState {
  /** Last applied index; 0 before anything. */
  readonly index: number;
  /** Term of the entry at `index` (the snapshot's term for a restored state). */
  readonly term: number;
  /** Running hash over every applied entry (see {@link entryId}). */
  readonly hash: number;
  /** Number of "normal" entries applied. */
  readonly writes: number;
}

/** The state of an empty machine. */
export const emptySm: SmState = { index: 0, term: 0, hash: 0x811c_9dc5, writes: 0 };

/** FNV-1a step over one 32-bit word. */
function _mix(h: number, word: number): number {
  let x = h;
  for (let k = 0; k < 4; k++) {
    x ^= (word >>> (k * 8)) & 0xff;
    x = Math.imul(x, 0x0100_0193) >>> 0;
  }
  return x;
}

/** A 32-bit identity of an entry's content (type and data; not its position). */
export function entryId(entry: Entry): number {
  let h = entry.type === "normal" ? 0x1234_5678 : entry.type === "noop" ? 0x0bad_cafe : 0x0c0f_1900;
  const d = entry.data;
  for (let i = 0; i < d.length; i++) {
    h ^= d[i] as number;
    h = Math.imul(h, 0x0100_0193) >>> 0;
  }
  return _mix(h, d.length);
}

/** The state after applying `entry` to `s`. Invariant: entry.index === s.index + 1 (checked by the caller). */
export function applyEntry(s: SmState, entry: Entry): SmState {
  const h = _mix(_mix(_mix(s.hash, entry.index), entry.term), entryId(entry));
  return { index: entry.index, term: entry.term, hash: h, writes: s.writes + (entry.type === "normal" ? 1 : 0) };
}

/**
 * A client write: 4 bytes of proposal id, 4 random bytes, then `padBytes`
 * bytes of filler so entries differ in size (exercises byte-based flow control).
 */
export function encodeProposal(proposalId: number, salt: number, padBytes: number): Uint8Array {
  const out = new Uint8Array(8 + padBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, proposalId, true);
  view.setUint32(4, salt >>> 0, true);
  for (let i = 8; i < out.length; i++) out[i] = (salt + i) & 0xff;
  return out;
}

/** The proposal id of a client write, or -1 if `data` is not one. */
export function decodeProposalId(data: Uint8Array): number {
  if (data.length < 8) return -1;
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
}
