/**
 * Wire-level and driver-facing types of `@cairn/raft`. Shapes follow etcd's raftpb (flat
 * `Message`, `HardState`, `Entry`) so a binary codec can encode every field of every message.
 */

/** A member's id (stable across restarts), e.g. `c1`. */
export type NodeId = string;

export enum EntryType {
  /** A client command; `data` is opaque to Raft. */
  Normal = 0,
  /** Empty entry a new leader appends at the start of its term so it can commit earlier-term entries (Raft §8, thesis §6.4). */
  Noop = 1,
}

/** One log entry. `index` starts at 1 and is contiguous; `term` never decreases along the log (Raft §5.3). */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/**
 * The state Raft requires on stable storage before answering any RPC (Raft Figure 2):
 * `term` (currentTerm), `vote` (votedFor, null = none in this term) and `commit` (commit index,
 * persisted so committed entries are not re-delivered after restart; losing it is safe).
 */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export enum MessageType {
  /** RequestVote RPC (Raft §5.2). */
  Vote = 1,
  VoteResponse = 2,
  /** AppendEntries RPC carrying entries (possibly none) (Raft §5.3). */
  Append = 3,
  AppendResponse = 4,
  /** Empty AppendEntries that only asserts leadership and carries a safe commit index (Raft §5.2). */
  Heartbeat = 5,
  HeartbeatResponse = 6,
}

/**
 * A flat Raft message like etcd's raftpb.Message. Unused fields are 0 / false / [].
 *
 * - `logTerm`: Vote: candidate's last log term. Append: term of the entry at `index` (prevLogTerm).
 *   AppendResponse reject: hint term = term of the follower's entry at `rejectHint` (0 if none).
 * - `index`: Vote: candidate's last log index. Append: prevLogIndex. AppendResponse success: the
 *   follower's match index; reject: the rejected prevLogIndex (0 for a stale-term reject).
 * - `entries`: Append only. `commit`: Append (leader commit) / Heartbeat (min(commit, follower match)).
 * - `reject`: VoteResponse / AppendResponse.
 * - `rejectHint`: AppendResponse reject: the follower's suggested next index for the leader
 *   (its lastIndex+1 if its log is too short, else the first index of its conflicting term).
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
}

export type Role = 'follower' | 'candidate' | 'leader';

/** Volatile state the driver may want to observe (not persisted). */
export interface SoftState {
  role: Role;
  leaderId: NodeId | null;
  term: number;
}

/**
 * Everything the driver must do since the last `advance()` (etcd raft's Ready). Order: persist
 * `hardState` + `entries` (fsync) → send `messages` → apply `committedEntries` → `advance(rd)`.
 */
export interface Ready {
  /** Set when role/leader/term changed since the last Ready. */
  softState: SoftState | null;
  /** Set when term/vote/commit changed: persist (fsync) BEFORE sending messages. */
  hardState: HardState | null;
  /**
   * Entries to persist durably BEFORE sending messages, contiguous. If `entries[0].index <=` the
   * persisted last index, the persisted suffix from `entries[0].index` on is replaced (truncate, then append).
   */
  entries: Entry[];
  /** To send after persisting. */
  messages: Message[];
  /**
   * Newly committed entries in index order, each delivered exactly once across Readies. They may
   * include entries of this same Ready's `entries` (hence: apply only after persisting).
   */
  committedEntries: Entry[];
}

export interface RaftConfig {
  id: NodeId;
  /** All voting members including `id` (static membership; single-server changes, thesis §4, can come later). */
  voters: NodeId[];
  /** Minimum election timeout, ticks; each timeout is drawn uniformly in [electionTicks, 2*electionTicks) (Raft §5.2). */
  electionTicks: number;
  /** Leader heartbeat interval, ticks; must be < electionTicks. */
  heartbeatTicks: number;
  /** Max Append messages in flight per follower in replicate state (pipelining window). */
  inflightMsgsMax: number;
  /** Max entries per Append message. */
  entriesPerMsgMax: number;
  /** Max total entry data bytes per Append message; at least one entry always fits. */
  msgBytesMax: number;
  /** Seeded PRNG returning [0,1), injected for determinism (see `mulberry32`). */
  random: () => number;
  /** What the driver read back from disk (durable log, indexes 1..n contiguous). Undefined/empty = fresh node. */
  restored?: { hardState: HardState; entries: Entry[] };
  /**
   * Highest index the driver has already applied (default: `restored.hardState.commit`, or 0).
   * After a restart, `committedEntries` start at `applied + 1`; must be <= the restored commit.
   */
  applied?: number;
  /**
   * etcd's CheckQuorum (default false): a leader that has not heard from a quorum (itself
   * included) within each electionTicks period steps down to follower, so an isolated leader
   * stops accepting proposals. Safe without leases: it only ever gives up leadership.
   */
  checkQuorum?: boolean;
}

/** Per-follower replication state as seen by the leader (etcd's tracker.Progress). */
export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate';
  inflight: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leaderId: NodeId | null;
  vote: NodeId | null;
  commit: number;
  /** Highest index handed to the driver in `committedEntries` and advanced. */
  applied: number;
  lastIndex: number;
  lastTerm: number;
  /** Highest index the driver has persisted (acknowledged by `advance`). */
  persistedIndex: number;
  /** Leader only (includes the leader itself, whose match is its persisted index); null otherwise. */
  progress: Record<NodeId, ProgressStatus> | null;
}

/** `propose()` on a non-leader. `leaderId` is the leader this node knows for its term, or null. */
export class NotLeaderError extends Error {
  readonly code = 'NOT_LEADER';
  constructor(readonly leaderId: NodeId | null) {
    super(leaderId ? `not the leader; the leader is ${leaderId}` : 'not the leader; no leader known');
    this.name = 'NotLeaderError';
  }
}

/** Builds a message with every unused field zeroed (codecs encode all fields always). */
export function makeMessage(m: Pick<Message, 'type' | 'from' | 'to' | 'term'> & Partial<Message>): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m };
}
