import { promotable, proposeConfChange } from './membership';
import { Raft } from './raft';
import { maybeStartReadRound, readRoundPending, recordRead } from './read-index';
import { appendsPending, flushAppends, maybeCommit } from './replication';
import { compact, snapshotOf } from './snapshot';
import { transferLeadership } from './transfer';
import type { LogCacheStats } from './raft-log';
import {
  EntryType,
  LeadershipTransferInProgressError,
  MessageType,
  NotLeaderError,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type RaftStatus,
  type ReadContext,
  type Ready,
  type Snapshot,
  type SoftState,
} from './types';

export { applyConfChange } from './membership';

/**
 * Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and the thesis)
 * as a pure deterministic state machine in the style of etcd's raft package: inputs are `tick()`,
 * `step(msg)`, `propose(data)` and `campaign()`; outputs are collected in a `Ready`; the driver
 * persists, sends, applies and calls `advance(rd)`. No timers, I/O or ambient randomness.
 *
 * Durability: a node acknowledges entries (AppendResponse) and votes (VoteResponse) only in the
 * `messages` of the Ready whose `entries`/`hardState` contain them, and the driver sends messages
 * only after persisting; the leader counts its own entries toward commit only once `advance()`
 * reports them persisted (etcd's MsgStorageAppendResp). With `asyncStorageWrites` the driver
 * keeps stepping inputs while its writes run: each write's completion comes back through
 * `persisted(index, term)`, and a Ready splits its messages into those that leave at once and
 * those that wait for the write (`Ready.messagesAfterPersist`).
 *
 * Optional: pre-vote (thesis §9.6, `preVote`), CheckQuorum with a leader lease on votes
 * (etcd, `checkQuorum`), ReadIndex (thesis §6.4, `readIndex()` → `Ready.readStates`) and
 * leadership transfer (thesis §3.10, `transferLeadership()`). See docs/raft.md.
 *
 * Membership: single-server changes (thesis §4.1) through `proposeConfChange()`, with learners
 * for the catch-up phase (§4.2.1) and removal of the leader (§4.2.2). See docs/raft.md.
 *
 * Log compaction (Raft §7): `compact()`, and `MessageType.Snapshot` (InstallSnapshot) for followers that
 * need a compacted entry; a Cairn replica snapshot is metadata only (index, term, configuration).
 */
export class RaftNode {
  readonly id: NodeId;
  /** The node's state and role logic (raft.ts); this class adds the Ready cycle around it. */
  private readonly r: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;

  /** @throws Error `RaftConfigInvalid` / `RestoredStateInvalid` on bad config or restored state. */
  constructor(config: RaftConfig) {
    validateConfig(config);
    this.id = config.id;
    this.r = new Raft(config);
    this.prevHard = this.r.hardState();
    this.prevSoft = this.r.softState();
  }

  // ---- inputs ---------------------------------------------------------------------------

  /**
   * One logical clock tick: election timeout for followers/candidates (§5.2; with `preVote` the
   * timeout starts a pre-vote round, thesis §9.6), heartbeats for the leader, and the leader's
   * CheckQuorum and leadership-transfer deadlines (both one `electionTicks`).
   */
  tick(): void {
    this.assertNotOutstanding('tick');
    this.r.tick();
  }

  /**
   * How many `tick()` calls from now the first one that may act falls (≥ 1): a follower's or
   * candidate's election timeout, a leader's next heartbeat, CheckQuorum or transfer deadline;
   * Infinity when no tick would act (a learner or a removed node, which never campaigns). The
   * ticks before it only count (election and lease bookkeeping read at the next input), so a
   * driver may sleep until then and apply the elapsed ticks in a batch before its next input
   * (apps/consensus Replica) with the same outcome as one by one. Read-only; an input
   * (step, propose, readIndex) may move it either way, so ask again after each.
   */
  ticksUntilDue(): number {
    return this.r.ticksUntilDue();
  }

  /**
   * Delivers a message addressed to this node. Term rules (Raft §5.1): a higher term turns this
   * node into a follower of that term first (vote cleared); a lower-term Append/Heartbeat is
   * answered with a rejecting AppendResponse carrying the current term (so the stale leader steps
   * down), a lower-term Vote with a rejecting VoteResponse; other stale messages are ignored.
   * @throws Error `MessageMisrouted` if `msg.to !== id`; `ElectionSafety` on a same-term Append to a leader.
   */
  step(m: Message): void {
    this.assertNotOutstanding('step');
    this.r.step(m);
  }

  /**
   * Leader only: appends one Normal entry per element at contiguous indexes in the current term.
   * They go into the next Ready's `entries`, and Appends are sent at `ready()` so proposals made
   * between two Readies are batched into as few Appends as the size bounds allow.
   * @throws NotLeaderError (with the known leader id) on a follower/candidate;
   *   LeadershipTransferInProgressError (a NotLeaderError hinting the target) during a transfer
   *   (thesis §3.10); RangeError on an empty array.
   */
  propose(data: Uint8Array[]): { firstIndex: number; lastIndex: number; term: number } {
    this.assertNotOutstanding('propose');
    const r = this.r;
    if (r.role !== 'leader') throw new NotLeaderError(r.leaderId);
    if (r.leadTransferee !== null) throw new LeadershipTransferInProgressError(r.leadTransferee);
    if (data.length === 0) throw new RangeError('ProposalEmpty: propose() needs at least one entry');
    const firstIndex = r.log.lastIndex() + 1;
    r.log.append(data.map((d, i) => ({ index: firstIndex + i, term: r.term, type: EntryType.Normal, data: d })));
    return { firstIndex, lastIndex: r.log.lastIndex(), term: r.term };
  }

  /**
   * Single-server membership change (thesis §4.1), leader only: appends one `EntryType.Config`
   * entry holding the whole new configuration, in effect at once on this node (and on each
   * follower as it appends it). Removing a learner or a voter, the leader itself included: a
   * removed leader keeps replicating without counting itself in quorums until the entry commits,
   * then hands leadership to an up-to-date voter (TimeoutNow) and steps down (thesis §4.2.2).
   * Adding a voter that lags makes it count in quorums before it holds the log: add it as a
   * learner first and promote it once caught up (thesis §4.2.1).
   * @returns the config entry's index and term; it is committed once `commit` reaches `index`.
   * @throws NotLeaderError on a follower/candidate; LeadershipTransferInProgressError during a
   *   transfer; ConfChangeInProgressError while a change is uncommitted or before this leader
   *   committed an entry of its term; ConfChangeInvalidError if the change does not apply.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number; conf: ConfState } {
    this.assertNotOutstanding('proposeConfChange');
    return proposeConfChange(this.r, cc);
  }

  /**
   * Log compaction (Raft §7): forgets the entries up to `index`, keeping their last index, term
   * and the configuration in effect there. The driver calls it once nothing needs those entries
   * any more (Cairn: every storage node durably applied them) and drops them from its own storage;
   * a follower that still needs them later gets a `MessageType.Snapshot` instead.
   * @throws RangeError `CompactInvalid` when `index` > the applied index.
   */
  compact(index: number): void {
    this.assertNotOutstanding('compact');
    compact(this.r, index);
  }

  /** The compacted prefix (index 0 when nothing was compacted). */
  snapshot(): Snapshot {
    return snapshotOf(this.r);
  }

  /**
   * Starts an election now (Raft §5.2): term+1, vote for self, Vote to all; with `preVote`, a
   * pre-vote round first (thesis §9.6). No-op on a leader.
   */
  campaign(): void {
    this.assertNotOutstanding('campaign');
    if (this.r.role === 'leader' || !promotable(this.r)) return;
    this.r.startElection(false);
  }

  /**
   * ReadIndex (thesis §6.4), leader only: records a linearizable read request. The leader
   * confirms it is still leader with a heartbeat round (every request recorded before the next
   * `ready()` shares one round, its number carried in `Message.context`); once a quorum
   * acknowledged that round (or a later one) and an entry of the leader's term is committed, the
   * request comes out in `Ready.readStates` as `{ index, ctx }`, index = the commit index when it
   * was recorded (or when the term's first entry committed, if later). Serve the read once the
   * applied index reaches `index`. If the node stops being leader first, the request comes out in
   * `Ready.readStatesFailed`. A single-voter cluster confirms at the next `ready()`.
   * Not answered by a leader that cannot reach a quorum (no stale reads from a deposed leader).
   * @throws NotLeaderError on a follower/candidate (forward the read to `leaderId`);
   *   ReadIndexPendingFullError with `readIndexPendingMax` requests pending.
   */
  readIndex(ctx: ReadContext): void {
    this.assertNotOutstanding('readIndex');
    recordRead(this.r, ctx);
  }

  /**
   * Leadership transfer (thesis §3.10), leader only. The leader stops accepting proposals
   * (`propose()` throws LeadershipTransferInProgressError), brings `to` up to date, then sends it
   * TimeoutNow; `to` campaigns at once, skipping pre-vote and the voters' lease. If `to` has not
   * taken over within `electionTicks` ticks the transfer aborts and proposals are accepted again.
   * A second call with another target replaces the transfer; with the same target, or `to` = this
   * node, it is a no-op.
   * @throws NotLeaderError on a follower/candidate; RangeError `TransferTargetUnknown` if `to` is not a voter.
   */
  transferLeadership(to: NodeId): void {
    this.assertNotOutstanding('transferLeadership');
    transferLeadership(this.r, to);
  }

  // ---- Ready cycle ----------------------------------------------------------------------

  /** Whether `ready()` would return anything. False while a Ready is outstanding (not yet advanced). */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.r;
    return (
      r.pendingSnapshot !== null ||
      r.msgs.length > 0 ||
      r.reads.confirmed.length > 0 ||
      r.reads.failed.length > 0 ||
      readRoundPending(r) ||
      r.log.unstableFrom <= r.log.lastIndex() ||
      this.appliableIndex() > r.applied ||
      !sameHard(r.hardState(), this.prevHard) ||
      !sameSoft(r.softState(), this.prevSoft) ||
      appendsPending(r)
    );
  }

  /**
   * Everything pending since the last `advance()`. Calling it again before `advance()` returns the
   * same Ready. Inputs (`tick/step/propose/campaign`) are refused until `advance(rd)`.
   */
  ready(): Ready {
    if (this.outstanding) return this.outstanding;
    const r = this.r;
    if (r.role === 'leader') {
      maybeStartReadRound(r);
      flushAppends(r);
    }
    const soft = r.softState();
    const hard = r.hardState();
    const [messages, messagesAfterPersist] = this.asyncWrites ? splitAfterPersist(r.msgs, r.pendingSnapshot !== null || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote) : [r.msgs, []];
    const rd: Ready = {
      softState: sameSoft(soft, this.prevSoft) ? null : soft,
      hardState: sameHard(hard, this.prevHard) ? null : hard,
      snapshot: r.pendingSnapshot,
      entries: r.log.unstableEntries(),
      messages,
      messagesAfterPersist,
      committedEntries: r.log.slice(r.applied + 1, this.appliableIndex()),
      readStates: r.reads.confirmed,
      readStatesFailed: r.reads.failed,
    };
    r.msgs = [];
    r.pendingSnapshot = null;
    r.reads.confirmed = [];
    r.reads.failed = [];
    r.log.unstableFrom = r.log.lastIndex() + 1;
    this.prevSoft = soft;
    this.prevHard = hard;
    this.outstanding = rd;
    return rd;
  }

  /**
   * The driver persisted `rd.hardState` + `rd.entries`, sent `rd.messages` and handled
   * `rd.committedEntries`. The leader now counts its persisted entries toward commit (a
   * single-voter cluster commits here). With `asyncStorageWrites`: the driver has started the
   * write, sent `rd.messages` and handled `rd.committedEntries`; nothing counts as persisted
   * until `persisted()`.
   * @throws Error `ReadyMismatch` if `rd` is not the Ready last returned by `ready()`.
   */
  advance(rd: Ready): void {
    if (!this.outstanding || rd !== this.outstanding) throw new Error('ReadyMismatch: advance() called with a Ready that is not the outstanding one');
    this.outstanding = null;
    const r = this.r;
    if (rd.entries.length && !this.asyncWrites) {
      const last = rd.entries[rd.entries.length - 1];
      if (!r.log.matchTerm(last.index, last.term)) throw new Error(`ReadyMismatch: persisted entry ${last.index} no longer in the log`);
      r.log.persistedIndex = Math.max(r.log.persistedIndex, last.index);
    }
    if (rd.committedEntries.length) {
      const first = rd.committedEntries[0].index;
      if (first !== r.applied + 1) throw new Error(`AppliedNotContiguous: committed entries start at ${first}, applied is ${r.applied}`);
      r.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    }
    r.log.evict(r.applied);
    if (r.role === 'leader') {
      r.prs().get(r.id)!.maybeUpdate(r.log.persistedIndex);
      maybeCommit(r);
    }
  }

  /**
   * `asyncStorageWrites` only: the write of the Ready whose last entry is `index` (of `term`)
   * is durable, and so is every earlier one (etcd's MsgStorageAppendResp, the leader's message to
   * itself). The leader counts its own entries up to `index` toward commit from here on
   * (Raft §5.4.2: a commit needs a majority of durable copies, its own included only once
   * durable). Ignored when the entry at `index` is no longer of `term` (a later Ready replaced
   * it: that Ready's own report covers it) or when `index` is already persisted.
   * @throws Error `ReadyOutstanding` between `ready()` and `advance()`; `PersistedBeyondReady`
   *   when `index` was never handed out in a Ready; `AsyncStorageWritesOff` without the option.
   */
  persisted(index: number, term: number): void {
    this.assertNotOutstanding('persisted');
    if (!this.asyncWrites) throw new Error('AsyncStorageWritesOff: persisted() needs RaftConfig.asyncStorageWrites (advance() reports writes otherwise)');
    const r = this.r;
    // Stale first: a write may complete after a new leader's entries replaced its own (the
    // truncation moved unstableFrom back below it); its entries are not in the log any more.
    if (index <= r.log.persistedIndex || !r.log.matchTerm(index, term)) return;
    if (index >= r.log.unstableFrom) throw new Error(`PersistedBeyondReady: persisted(${index}) but only entries below ${r.log.unstableFrom} were handed out`);
    r.log.persistedIndex = index;
    if (r.role === 'leader') {
      r.prs().get(r.id)!.maybeUpdate(index);
      maybeCommit(r);
    }
  }

  // ---- observation ----------------------------------------------------------------------

  status(): RaftStatus {
    const r = this.r;
    let progress: Record<NodeId, ProgressStatus> | null = null;
    if (r.progress) {
      progress = {};
      for (const [id, pr] of r.progress) progress[id] = pr.status();
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      leaderId: r.leaderId,
      vote: r.vote,
      commit: r.commit,
      applied: r.applied,
      lastIndex: r.log.lastIndex(),
      lastTerm: r.log.lastTerm(),
      persistedIndex: r.log.persistedIndex,
      progress,
      preCandidate: r.preCandidate,
      leadTransferee: r.leadTransferee,
      readIndexPending: r.reads.pending.length,
      firstIndex: r.log.firstIndex(),
      conf: { voters: [...r.conf.voters], learners: [...r.conf.learners], storage: [...r.conf.storage] },
      confIndex: r.confIndex,
    };
  }

  /** What the bounded log cache (RaftConfig.logCache) holds and has read back from storage. */
  logCacheStats(): LogCacheStats {
    return this.r.log.cacheStats();
  }

  /** Copy of log entries lo..hi inclusive (tests and safety checkers). @throws on an index outside the log. */
  entries(lo = this.r.log.firstIndex(), hi = this.r.log.lastIndex()): Entry[] {
    return this.r.log.slice(lo, hi);
  }

  private get asyncWrites(): boolean {
    return this.r.cfg.asyncStorageWrites === true;
  }

  /** Highest index `committedEntries` may reach: the commit index, and with async writes no further than what is durable here (etcd). */
  private appliableIndex(): number {
    const r = this.r;
    return this.asyncWrites ? Math.min(r.commit, r.log.persistedIndex) : r.commit;
  }

  private assertNotOutstanding(op: string): void {
    if (this.outstanding) throw new Error(`ReadyOutstanding: ${op}() called between ready() and advance()`);
  }
}

/**
 * A Ready's messages as [send at once, send after the write] under async storage writes: answers
 * that acknowledge durable state (AppendResponse, VoteResponse, PreVoteResponse, as etcd's
 * msgsAfterAppend) wait; all of them wait when the Ready changes the term or vote or carries a
 * snapshot (`holdAll`), since every message carries the term.
 */
function splitAfterPersist(msgs: Message[], holdAll: boolean): [Message[], Message[]] {
  if (holdAll) return [[], msgs];
  const now: Message[] = [];
  const after: Message[] = [];
  for (const m of msgs) (m.type === MessageType.AppendResponse || m.type === MessageType.VoteResponse || m.type === MessageType.PreVoteResponse ? after : now).push(m);
  return [now, after];
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId && a.term === b.term;
}

function validateConfig(c: RaftConfig): void {
  const bad = (why: string): never => {
    throw new Error(`RaftConfigInvalid: ${why}`);
  };
  if (!c.id) bad('id is empty');
  if (new Set(c.voters).size !== c.voters.length) bad(`voters ${JSON.stringify(c.voters)} has duplicates`);
  if ((c.learners ?? []).some((l) => c.voters.includes(l))) bad(`learners ${JSON.stringify(c.learners)} overlap voters ${JSON.stringify(c.voters)}`);
  for (const [k, v] of [
    ['electionTicks', c.electionTicks],
    ['heartbeatTicks', c.heartbeatTicks],
    ['inflightMsgsMax', c.inflightMsgsMax],
    ['entriesPerMsgMax', c.entriesPerMsgMax],
    ['msgBytesMax', c.msgBytesMax],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) bad(`${k} must be a positive integer, got ${v}`);
  }
  if (c.heartbeatTicks >= c.electionTicks) bad(`heartbeatTicks ${c.heartbeatTicks} must be < electionTicks ${c.electionTicks}`);
  if (typeof c.random !== 'function') bad('random must be a function returning [0,1)');
}
