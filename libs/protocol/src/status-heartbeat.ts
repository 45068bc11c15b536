/**
 * Status heartbeats: each process publishes its own every `STATUS_INTERVAL_MS` on the
 * `status.*` subjects. JSON on purpose: control plane, a few messages per second per process.
 * Gateways use them to track the leader and the storage nodes' applied indexes.
 * Format: docs/protocol.md, "Control-plane messages (JSON)".
 */
export const STATUS_INTERVAL_MS = 100;

/**
 * A consensus replica whose status did not change since its last heartbeat (everything but `atMs`)
 * publishes it again once this long has passed since that one, ms, at its next `STATUS_INTERVAL_MS`
 * check (so every 300–400 ms): an idle replica sends about 3 a second instead of 10, and a consumer
 * that counts a process as down after 1,000 ms without a heartbeat (the gateway's STATUS_STALE_MS)
 * still hears from a live one well within that. A change (role, term, leader, an index, the log's
 * size, the configuration) goes out at the next check, as before.
 */
export const STATUS_REFRESH_MS = 300;

export interface ConsensusStatus {
  kind: 'consensus';
  id: string;
  role: 'follower' | 'candidate' | 'leader';
  term: number;
  leaderId: string | null;
  /** Highest log index known committed (Raft §5.3). */
  commitIndex: number;
  /** Index of the last entry in this replica's log. */
  lastIndex: number;
  /** Highest index handed to the state machine side (replied and shipped). */
  appliedIndex: number;
  /** Bytes of the Raft log on disk. */
  logBytes: number;
  /** First index still in the Raft log (earlier ones were compacted, Raft §7). Optional: older replicas lack it. */
  firstIndex?: number;
  /**
   * The configuration this replica has in effect (thesis §4.1: the last config entry in its log,
   * committed or not) and that entry's index (0 = the initial configuration from the config file).
   * Optional: heartbeats of older replicas lack it.
   */
  conf?: { voters: string[]; learners: string[]; storage: string[] };
  confIndex?: number;
  /** Unix time of the heartbeat, ms. */
  atMs: number;
}

export interface StorageStatus {
  kind: 'storage';
  id: string;
  /** Highest index applied to the engine and durable. */
  appliedIndex: number;
  /** Highest commit index this node has heard of. */
  knownCommitIndex: number;
  keys: number;
  dataBytes: number;
  /** The auth revision: the Raft index of the last applied auth change (0 = none; libs/protocol auth.ts). Optional: older nodes lack it. */
  authRevision?: number;
  atMs: number;
}

export function encodeStatus(s: ConsensusStatus | StorageStatus): Uint8Array {
  return Buffer.from(JSON.stringify(s));
}

/** @returns the status, or null when the payload is not a status heartbeat. */
export function decodeStatus(data: Uint8Array): ConsensusStatus | StorageStatus | null {
  try {
    const s = JSON.parse(Buffer.from(data).toString('utf8')) as ConsensusStatus | StorageStatus;
    if ((s.kind === 'consensus' || s.kind === 'storage') && typeof s.id === 'string') return s;
  } catch {
    // fall through: a foreign or garbled message on the subject is ignored, not fatal
  }
  return null;
}
