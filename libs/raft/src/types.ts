/**
 * Wire-level and driver-facing types of `@cairn/raft`. Shapes follow etcd's raftpb (flat
 * `Message`, `HardState`, `Entry`) so a binary codec can encode every field of every message.
 *
 * One definition of each wire message: the fields of `Message` and `Entry` are declared once, in
 * `@cairn/protocol` (`WireRaftMessage`, `WireEntry`, next to their byte layout). Raft narrows
 * them (its enums for `type`) instead of re-declaring them. The dependency points this way so
 * that protocol stays free of other packages and can be packed alone for third-party clients;
 * the import is type-only, so raft has no runtime dependency.
 */
import type { WireEntry, WireRaftMessage } from '@cairn/protocol';

/** A member's id (stable across restarts), e.g. `c1`. */
export type NodeId = string;

export enum EntryType {
  /** A client command; `data` is opaque to Raft. */
  Normal = 0,
  /** Empty entry a new leader appends at the start of its term so it can commit earlier-term entries (Raft §8, thesis §6.4). */
  Noop = 1,
  /**
   * A cluster configuration (thesis §4.1): `data` is the whole new `ConfState`
   * (`encodeConfState`), not a delta, so any node reading the log knows the configuration
   * without the ones before it. In effect on every node as soon as it is in its log, committed
   * or not; a truncated config entry reverts to the previous one.
   */
  Config = 2,
}

/**
 * A cluster configuration (thesis §4). `voters` elect and form quorums; `learners` receive the
 * log but neither vote nor count toward commit (etcd learners; thesis §4.2.1 catch-up phase);
 * `storage` lists the storage nodes that consume committed entries by log shipping: Raft ignores
 * them, the list travels with the configuration so it too changes through the log.
 * Each list is sorted; a node is in at most one of voters/learners.
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  storage: NodeId[];
}

/** One single-server change (thesis §4.1): at most one is pending (uncommitted) at a time. */
export interface ConfChange {
  /**
   * - `addLearner`: a new node that receives the log without voting (catch it up, then `addVoter`);
   * - `addVoter`: promote a learner, or add a node as voter directly;
   * - `removeNode`: remove a voter (the leader included: it steps down once the change commits,
   *   thesis §4.2.2) or a learner;
   * - `addStorage` / `removeStorage`: change the storage-node list.
   */
  type: 'addLearner' | 'addVoter' | 'removeNode' | 'addStorage' | 'removeStorage';
  node: NodeId;
}

/** `ConfState` as the data of an `EntryType.Config` entry: UTF-8 JSON `{"voters":[..],"learners":[..],"storage":[..]}`. */
export function encodeConfState(c: ConfState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ voters: c.voters, learners: c.learners, storage: c.storage }));
}

/** @throws Error `ConfStateInvalid` when `data` is not an encoded ConfState. */
export function decodeConfState(data: Uint8Array): ConfState {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (e) {
    throw new Error(`ConfStateInvalid: ${(e as Error).message}`);
  }
  const o = v as Partial<ConfState> | null;
  const list = (x: unknown): x is string[] => Array.isArray(x) && x.every((y) => typeof y === 'string' && y.length > 0);
  if (!o || !list(o.voters) || !list(o.learners) || !list(o.storage)) throw new Error('ConfStateInvalid: expected {voters, learners, storage} string arrays');
  return { voters: [...o.voters], learners: [...o.learners], storage: [...o.storage] };
}

/**
 * One log entry (fields: `WireEntry` in @cairn/protocol). `index` starts at 1 and is contiguous;
 * `term` never decreases along the log (Raft §5.3).
 */
export interface Entry extends WireEntry {
  type: EntryType;
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
  /**
   * Pre-vote request (thesis §9.6): like Vote but at `term` = candidate's term + 1, which the
   * candidate has NOT adopted; receivers never change their own term or vote on it.
   */
  PreVote = 7,
  /** Answer to PreVote: granted at the PreVote's term, rejected at the responder's term. */
  PreVoteResponse = 8,
  /** Leader → transfer target: campaign now, skipping pre-vote and the leader lease (thesis §3.10). */
  TimeoutNow = 9,
  /**
   * InstallSnapshot (Raft §7) to a follower whose next entry the leader compacted away: `index` /
   * `logTerm` = the snapshot's last index and term, `entries` = one `EntryType.Config` entry at
   * that index holding the configuration in effect there, `commit` = the leader's commit. Answered
   * with an AppendResponse (success at `index`). A Cairn consensus replica keeps no state machine
   * of its own (storage nodes do, with their own snapshots), so its snapshot is only this
   * metadata: it always fits one message.
   */
  Snapshot = 10,
}

/** A compacted log prefix (Raft §7): everything up to `index` (whose term is `term`) is gone; `conf` was in effect at `index`. */
export interface Snapshot {
  index: number;
  term: number;
  conf: ConfState;
}

/** `Message.context` on a Vote/PreVote sent because of a leadership transfer (etcd's campaignTransfer): voters skip the lease check. */
export const CONTEXT_CAMPAIGN_TRANSFER = 1;

/**
 * A flat Raft message like etcd's raftpb.Message (fields: `WireRaftMessage` in @cairn/protocol;
 * their Raft meaning here). Unused fields are 0 / false / [].
 *
 * - `logTerm`: Vote: candidate's last log term. Append: term of the entry at `index` (prevLogTerm).
 *   AppendResponse reject: hint term = term of the follower's entry at `rejectHint` (0 if none).
 * - `index`: Vote: candidate's last log index. Append: prevLogIndex. AppendResponse success: the
 *   follower's match index; reject: the rejected prevLogIndex (0 for a stale-term reject).
 * - `entries`: Append only. `commit`: Append (leader commit) / Heartbeat (min(commit, follower match)).
 * - `reject`: VoteResponse / AppendResponse.
 * - `rejectHint`: AppendResponse reject: the follower's suggested next index for the leader
 *   (its lastIndex+1 if its log is too short, else the first index of its conflicting term).
 * - PreVote / PreVoteResponse use `logTerm`, `index`, `reject` exactly like Vote / VoteResponse.
 * - `context` (optional, u64 on the wire, absent = 0): Heartbeat: the leader's ReadIndex round
 *   number (thesis §6.4; 0 = no read round yet); HeartbeatResponse: echoes the Heartbeat's
 *   context. Vote/PreVote: `CONTEXT_CAMPAIGN_TRANSFER` (1) when the campaign comes from a
 *   leadership transfer (thesis §3.10), else 0. The internal codec always carries it (docs/protocol.md);
 *   a transport that dropped it would leave reads never confirmed and transfers honouring the lease.
 */
export interface Message extends WireRaftMessage {
  type: MessageType;
  entries: Entry[];
}

/**
 * Whether a decoded wire message is a Raft `Message` this version knows: its `type` is a
 * `MessageType` and each entry's `type` an `EntryType`. Drivers check it at the network boundary
 * and drop what fails (a lost message, which Raft tolerates), because `RaftNode.step` treats an
 * unknown type as a broken invariant (throws `MessageTypeUnknown`).
 */
export function isRaftMessage(m: WireRaftMessage): m is Message {
  return MessageType[m.type] !== undefined && m.entries.every((e) => EntryType[e.type] !== undefined);
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
   * Set when this follower installed a leader's snapshot (Raft §7): persist it (atomically)
   * BEFORE `hardState` and `entries`, and discard the whole stored log; the log now starts at
   * `snapshot.index + 1` and the applied index jumps to `snapshot.index`.
   */
  snapshot: Snapshot | null;
  /**
   * Entries to persist durably BEFORE sending messages, contiguous. If `entries[0].index <=` the
   * persisted last index, the persisted suffix from `entries[0].index` on is replaced (truncate, then append).
   */
  entries: Entry[];
  /**
   * To send after persisting; with `RaftConfig.asyncStorageWrites`, to send at once (the leader's
   * Append, Heartbeat and Snapshot messages, a follower's HeartbeatResponse: none of them claims
   * anything about this node's disk).
   */
  messages: Message[];
  /**
   * With `RaftConfig.asyncStorageWrites` only (else always []): to send once this Ready's
   * `hardState` + `entries` and those of every earlier Ready are durable (etcd's
   * msgsAfterAppend): AppendResponse (a follower acknowledges entries only after its fsync, Raft
   * Figure 2), VoteResponse and PreVoteResponse; and every message of a Ready that changes the
   * term or vote or carries a snapshot.
   */
  messagesAfterPersist: Message[];
  /**
   * Newly committed entries in index order, each delivered exactly once across Readies. They may
   * include entries of this same Ready's `entries` (hence: apply only after persisting). With
   * `RaftConfig.asyncStorageWrites`, only entries this node reported durable (`persisted`), as
   * etcd's raft does with its async storage writes.
   */
  committedEntries: Entry[];
  /**
   * ReadIndex requests confirmed by this leader (thesis §6.4), in request order. Serve each one
   * once the applied index reaches `index`; it is then linearizable. Always [] unless
   * `readIndex()` was called.
   */
  readStates: ReadState[];
  /**
   * ReadIndex requests this node will never confirm because it stopped being leader (stepped
   * down, or deposed by a higher term) before a quorum confirmed them. Answer them NOT_LEADER
   * (retry on the new leader). Always [] unless `readIndex()` was called.
   */
  readStatesFailed: ReadStateFailed[];
}

/** Opaque to Raft: what the driver needs to find the client request again (request id, or bytes). */
export type ReadContext = Uint8Array | number;

/** A confirmed ReadIndex request: reads are linearizable once the applied index is >= `index`. */
export interface ReadState {
  /** The leader's commit index when the request was recorded (or when its term's first entry committed, if later). */
  index: number;
  ctx: ReadContext;
}

/** A ReadIndex request dropped because this node is no longer leader. */
export interface ReadStateFailed {
  ctx: ReadContext;
}

export interface RaftConfig {
  id: NodeId;
  /**
   * The initial (bootstrap) voters, in effect until the log holds an `EntryType.Config` entry;
   * afterwards the last config entry in the log rules (thesis §4.1). `id` need not be a member:
   * a node joining a running cluster starts outside the configuration, never campaigns, and
   * learns its configuration from the log the leader replicates to it.
   */
  voters: NodeId[];
  /** Initial learners (default none); see `ConfState`. */
  learners?: NodeId[];
  /** Initial storage-node list (default none); see `ConfState`. */
  storage?: NodeId[];
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
  /**
   * What the driver read back from disk: hard state, the durable log (contiguous, starting at
   * `snapshot.index + 1`, or 1 without a snapshot) and the last snapshot (compacted prefix).
   * Undefined/empty = fresh node. With `logCache`, `onDisk` may stand for the durable entries
   * `snapshot.index + 1 .. onDisk.lastIndex` (left on disk, read back on demand) and `entries`
   * then continue at `onDisk.lastIndex + 1`.
   */
  restored?: { hardState: HardState; entries: Entry[]; snapshot?: Snapshot; onDisk?: LogOnDisk };
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
  /**
   * Pre-vote (thesis §9.6, default false): on election timeout a node first asks for pre-votes at
   * term+1 without incrementing its term; only a quorum of grants starts the real election. A node
   * grants a pre-vote only if the candidate's log is up to date (§5.4.1) and it has not heard from
   * a leader within `electionTicks` (so a rejoining partitioned node cannot depose a healthy
   * leader). Combine with `checkQuorum` so a leader cut off from a quorum steps down and lets the
   * followers that still hear it grant pre-votes again.
   */
  preVote?: boolean;
  /** Most ReadIndex requests pending confirmation at once (default 4096); beyond, `readIndex()` throws ReadIndexPendingFullError. */
  readIndexPendingMax?: number;
  /**
   * Lease-based reads (thesis §6.4.1, etcd `ReadOnlyLeaseBased`), ticks; 0 or absent = off. A
   * leader whose heartbeat round started at tick T was acknowledged by a quorum answers
   * `readIndex()` at once, without a new round, until tick T + readLeaseTicks: every node of that
   * quorum heard from it at or after T and, under `checkQuorum`, refuses other candidates' votes
   * for `electionTicks` after that, so no other leader can exist before then. Assumes clocks whose
   * rates differ by less than (electionTicks − readLeaseTicks) / electionTicks. Forfeited for the
   * rest of the term once a leadership transfer starts (TimeoutNow bypasses that refusal) and
   * while a configuration change is uncommitted. Requires `checkQuorum`, and 0 < readLeaseTicks <
   * electionTicks; with it on, a node refuses votes for its first `electionTicks` after start
   * (it may have acknowledged a round before it restarted). @throws RangeError at construction otherwise.
   */
  readLeaseTicks?: number;
  /**
   * A bounded in-memory log (etcd's raftLog over its Storage): once the entries held in memory
   * cost more than `logCache.bytesMax` (data bytes + ENTRY_OVERHEAD_BYTES each), the oldest ones
   * that are persisted and applied leave memory, and reading them (an Append to a lagging
   * follower, a membership or compaction lookup) goes to `logCache.storage`, at most the message
   * bounds (`entriesPerMsgMax`, `msgBytesMax`) per read. Entries not yet persisted or applied
   * always stay, so the cache may hold more than `bytesMax` while they do. Absent: every entry
   * stays in memory until compacted (Raft §7).
   */
  logCache?: LogCache;
  /**
   * Async storage writes (Raft thesis §10.2.1; etcd raft's `AsyncStorageWrites`), default false.
   * The driver may take the next Ready (and step inputs) while earlier Readies' writes are still
   * running: `advance(rd)` no longer means "persisted", the driver reports each write's
   * completion with `persisted(index, term)`, in write order. `Ready.messages` leave at once and
   * `Ready.messagesAfterPersist` after the write (and every earlier one) is durable; the leader
   * counts its own entries toward commit only from `persisted`, and `committedEntries` stop at
   * the persisted index. The driver must let a Ready that changes the term or vote or carries a
   * snapshot finish its write before it sends any later Ready's messages (Raft Figure 2: no
   * message reflects a term or vote not yet durable), and may not reorder writes.
   */
  asyncStorageWrites?: boolean;
  /**
   * Whether a leader whose commit index advanced sends each follower it has nothing else for an
   * empty Append carrying the new commit index at the next `ready()` (etcd raft's `bcastAppend`
   * after `maybeCommit`), default true. False: a follower learns the commit index from the next
   * Append or Heartbeat (within `heartbeatTicks`), which saves each follower, per commit with no
   * entries behind it, a message, a Ready and an AppendResponse; followers' commit indexes lag
   * the leader's by up to a heartbeat interval, and nothing in safety depends on them (a commit is
   * a majority's durable copies, Raft §5.4).
   */
  broadcastCommit?: boolean;
}

/**
 * The driver's durable log as the bounded log cache reads it back (etcd `Storage.Entries`):
 * synchronous, because Raft's step functions are.
 */
export interface LogStorage {
  /**
   * Entries `lo..hi` (inclusive) in index order, stopping before the entry that would take their
   * data bytes over `bytesMax` (at least one). Only asked for persisted entries above the
   * snapshot index; the answer must be what was persisted (RaftLog asserts index and count:
   * Error `LogStorageMismatch`).
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
}

export interface LogCache {
  storage: LogStorage;
  /** Bytes of entries kept in memory beyond what must stay (not yet persisted or applied), bytes. */
  bytesMax: number;
}

/** A run of log entries with one term: entries from `index` up to the next run's start have `term`. */
export interface TermRun {
  index: number;
  term: number;
}

/**
 * What a node restored with a bounded log cache keeps of the durable entries it does not load:
 * their last index, their terms as runs (ascending; terms change only at elections, so a few
 * numbers for millions of entries) and the indexes of the configuration entries among them.
 */
export interface LogOnDisk {
  lastIndex: number;
  termRuns: TermRun[];
  confIndexes: number[];
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
  /** True while a candidate is only collecting pre-votes (thesis §9.6): term not yet incremented. */
  preCandidate: boolean;
  /** Leader only: the target of the leadership transfer in progress (thesis §3.10), else null. */
  leadTransferee: NodeId | null;
  /** Leader only: ReadIndex requests waiting for confirmation. */
  readIndexPending: number;
  /** First index still in the log (1 + the snapshot index): earlier entries were compacted (Raft §7). */
  firstIndex: number;
  /** The configuration in effect (the last config entry in the log, or the initial one). */
  conf: ConfState;
  /** Index of the config entry in effect; 0 = the initial configuration. Pending while > `commit`. */
  confIndex: number;
}

/** `propose()` on a non-leader. `leaderId` is the leader this node knows for its term, or null. */
export class NotLeaderError extends Error {
  readonly code = 'NOT_LEADER';
  constructor(readonly leaderId: NodeId | null) {
    super(leaderId ? `not the leader; the leader is ${leaderId}` : 'not the leader; no leader known');
    this.name = 'NotLeaderError';
  }
}

/**
 * `propose()` on a leader that is transferring leadership (thesis §3.10): proposals are refused
 * until the transfer completes or aborts (after an election timeout). A NotLeaderError whose
 * `leaderId` hint is the transfer target, so drivers that map NotLeaderError to NOT_LEADER redirect
 * clients to the next leader; `code` stays 'NOT_LEADER'.
 */
export class LeadershipTransferInProgressError extends NotLeaderError {
  constructor(readonly transferee: NodeId) {
    super(transferee);
    this.message = `leadership transfer to ${transferee} in progress; proposals are refused until it completes or aborts`;
    this.name = 'LeadershipTransferInProgressError';
  }
}

/**
 * `proposeConfChange()` refused: another change is pending (its entry is not committed yet), or
 * the leader has not committed an entry of its own term yet (thesis §4.1, and the fix to the
 * single-server bug in Ongaro's 2015 raft-dev post). Retry later.
 */
export class ConfChangeInProgressError extends Error {
  readonly code = 'CONF_CHANGE_IN_PROGRESS';
  constructor(why: string) {
    super(`configuration change refused: ${why}`);
    this.name = 'ConfChangeInProgressError';
  }
}

/** `proposeConfChange()` with a change that does not apply to the current configuration (e.g. removing a non-member, removing the last voter). */
export class ConfChangeInvalidError extends Error {
  readonly code = 'CONF_CHANGE_INVALID';
  constructor(why: string) {
    super(`invalid configuration change: ${why}`);
    this.name = 'ConfChangeInvalidError';
  }
}

/** `readIndex()` with `readIndexPendingMax` requests already waiting for confirmation. */
export class ReadIndexPendingFullError extends Error {
  readonly code = 'READ_INDEX_PENDING_FULL';
  constructor(readonly pendingMax: number) {
    super(`${pendingMax} ReadIndex requests already pending confirmation`);
    this.name = 'ReadIndexPendingFullError';
  }
}

/** Builds a message with every unused field zeroed (codecs encode all fields always). */
export function makeMessage(m: Pick<Message, 'type' | 'from' | 'to' | 'term'> & Partial<Message>): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: 0, ...m };
}
