import { Progress } from './progress';
import { RaftLog } from './raft-log';
import {
  CONTEXT_CAMPAIGN_TRANSFER,
  ConfChangeInProgressError,
  ConfChangeInvalidError,
  EntryType,
  decodeConfState,
  encodeConfState,
  type ConfChange,
  type ConfState,
  LeadershipTransferInProgressError,
  MessageType,
  NotLeaderError,
  ReadIndexPendingFullError,
  makeMessage,
  type ReadContext,
  type ReadState,
  type ReadStateFailed,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type RaftStatus,
  type Ready,
  type Snapshot,
  type Role,
  type SoftState,
} from './types';

const EMPTY = new Uint8Array(0);
const READ_INDEX_PENDING_MAX_DEFAULT = 4096;

/** A ReadIndex request waiting on the leader (thesis §6.4). */
interface PendingRead {
  ctx: ReadContext;
  /** Commit index to serve at; -1 until the leader has committed an entry of its term. */
  index: number;
  /** The read round (Heartbeat context) whose quorum ack confirms it: the first round started after the request. */
  round: number;
}

/**
 * Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and the thesis)
 * as a pure deterministic state machine in the style of etcd's raft package: inputs are `tick()`,
 * `step(msg)`, `propose(data)` and `campaign()`; outputs are collected in a `Ready`; the driver
 * persists, sends, applies and calls `advance(rd)`. No timers, I/O or ambient randomness.
 *
 * Durability: a node acknowledges entries (AppendResponse) and votes (VoteResponse) only in the
 * `messages` of the Ready whose `entries`/`hardState` contain them, and the driver sends messages
 * only after persisting; the leader counts its own entries toward commit only once `advance()`
 * reports them persisted (etcd's MsgStorageAppendResp).
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
  private readonly cfg: RaftConfig;
  /** The configuration before any config entry in the log (RaftConfig voters/learners/storage). */
  private readonly initialConf: ConfState;
  /** The configuration in effect: the last config entry in the log, else `initialConf` (thesis §4.1). */
  private conf: ConfState;
  /** Index of the config entry `conf` came from; 0 = `initialConf`. */
  private confIndex = 0;
  /** The configuration in effect at the compacted prefix's last index (Raft §7), and where it came from. */
  private snapshotConf: ConfState;
  private snapshotConfIndex = 0;
  /** Follower: a leader's snapshot installed since the last Ready (for `Ready.snapshot`). */
  private pendingSnapshot: Snapshot | null = null;
  private readonly log: RaftLog;

  private term = 0;
  private vote: NodeId | null = null;
  private commit = 0;
  private applied: number;
  private role: Role = 'follower';
  private leaderId: NodeId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Candidate only: vote granted (true) / rejected (false) per voter. */
  private votes = new Map<NodeId, boolean>();
  /** Leader only: one entry per voter including this node. */
  private progress: Map<NodeId, Progress> | null = null;
  /** Leader: commit advanced since the last Append broadcast, so followers should learn it. */
  private commitBroadcastPending = false;
  /** Candidate only: collecting pre-votes at term+1 (thesis §9.6); the term is not incremented yet. */
  private preCandidate = false;

  /** Leader only: transfer target (thesis §3.10) and ticks since the transfer started. */
  private leadTransferee: NodeId | null = null;
  private transferElapsed = 0;

  /** ReadIndex (thesis §6.4). Rounds are numbered across terms so a round number is never reused. */
  private readRound = 0;
  /** Leader: requests waiting for a quorum ack of their round, in request order. */
  private readsPending: PendingRead[] = [];
  /** Leader: highest read round each voter acknowledged in this term (this node: always `readRound`). */
  private readAcks = new Map<NodeId, number>();
  /** Leader: an entry of the current term is committed, so `commit` covers every earlier commit (§6.4 step 1). */
  private committedInTerm = false;
  private readStates: ReadState[] = [];
  private readStatesFailed: ReadStateFailed[] = [];

  private msgs: Message[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;

  /** @throws Error `RaftConfigInvalid` / `RestoredStateInvalid` on bad config or restored state. */
  constructor(config: RaftConfig) {
    validateConfig(config);
    this.cfg = config;
    this.id = config.id;
    this.initialConf = normalizeConf({ voters: config.voters, learners: config.learners ?? [], storage: config.storage ?? [] });
    this.conf = this.initialConf;
    this.snapshotConf = this.initialConf;
    const restored = config.restored;
    const snap = restored?.snapshot;
    this.log = new RaftLog(restored?.entries ?? [], snap);
    if (snap) {
      this.snapshotConf = normalizeConf(snap.conf);
      this.snapshotConfIndex = snap.index;
    }
    this.refreshConf();
    if (restored) {
      const hs = restored.hardState;
      // Everything a snapshot covers is committed, even if the hard state saved before it says less.
      const commit = Math.max(hs.commit, snap?.index ?? 0);
      if (commit < 0 || commit > this.log.lastIndex()) {
        throw new Error(`RestoredStateInvalid: commit ${hs.commit} outside the restored log 0..${this.log.lastIndex()}`);
      }
      if (hs.term < this.log.lastTerm()) throw new Error(`RestoredStateInvalid: term ${hs.term} < last log term ${this.log.lastTerm()}`);
      this.term = hs.term;
      this.vote = hs.vote;
      this.commit = commit;
    }
    this.applied = Math.max(config.applied ?? this.commit, snap?.index ?? 0);
    if (this.applied < 0 || this.applied > this.commit) throw new Error(`RestoredStateInvalid: applied ${this.applied} outside 0..commit ${this.commit}`);
    this.prevHard = this.hardState();
    this.prevSoft = this.softState();
    this.resetElectionTimer();
  }

  // ---- inputs ---------------------------------------------------------------------------

  /**
   * One logical clock tick: election timeout for followers/candidates (§5.2; with `preVote` the
   * timeout starts a pre-vote round, thesis §9.6), heartbeats for the leader, and the leader's
   * CheckQuorum and leadership-transfer deadlines (both one `electionTicks`).
   */
  tick(): void {
    this.assertNotOutstanding('tick');
    if (this.role === 'leader') {
      this.electionElapsed++;
      if (this.leadTransferee !== null && ++this.transferElapsed >= this.cfg.electionTicks) {
        // Thesis §3.10: the target did not take over within an election timeout; resume service.
        this.abortLeadershipTransfer();
      }
      if (this.electionElapsed >= this.cfg.electionTicks) {
        this.electionElapsed = 0;
        if (this.cfg.checkQuorum && !this.quorumActive()) {
          // etcd CheckQuorum: a leader cut off from a quorum steps down so clients go elsewhere.
          this.becomeFollower(this.term, null);
          return;
        }
      }
      this.heartbeatElapsed++;
      if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.broadcastHeartbeat();
      }
      return;
    }
    this.electionElapsed++;
    // Only voters campaign: a learner, a joining node or a removed one just waits to be told.
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) this.startElection(false);
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
    if (m.to !== this.id) throw new Error(`MessageMisrouted: message to ${m.to} stepped into ${this.id}`);
    if (m.from === this.id) throw new Error(`MessageMisrouted: message from ${m.from} to itself`);
    if (m.term > this.term && m.type === MessageType.Vote && this.cfg.checkQuorum && this.inLease() && m.context !== CONTEXT_CAMPAIGN_TRANSFER) {
      // Leader lease (thesis §4.2.3, etcd): a node that heard from a leader within the minimum
      // election timeout neither adopts the term nor votes, unless the campaign is a transfer.
      // Only under checkQuorum: only then does a leader that lost its quorum step down, which is
      // what keeps honouring the lease live. (PreVote: handlePreVote, always.)
      return;
    }
    if (m.term > this.term && m.type === MessageType.PreVote) {
      // Never change our term for a PreVote (thesis §9.6): the candidate has not adopted it either.
      return this.handlePreVote(m);
    }
    if (m.term > this.term && m.type === MessageType.PreVoteResponse && !m.reject) {
      // A grant comes at the term we asked for (ours + 1); we adopt it only on a quorum.
      return this.handlePreVoteResponse(m);
    }
    if (m.term > this.term) {
      const fromLeader = m.type === MessageType.Append || m.type === MessageType.Heartbeat || m.type === MessageType.Snapshot;
      // Raft §5.2: the election timer restarts on hearing from a leader or granting a vote, not on
      // a mere higher-term Vote (else a candidate with a stale log, which can never win, would keep
      // resetting everyone's timer). handleVote resets it if the vote is granted.
      const resetTimer = m.type !== MessageType.Vote || this.role === 'leader';
      this.becomeFollower(m.term, fromLeader ? m.from : null, resetTimer);
    } else if (m.term < this.term) {
      if (m.type === MessageType.Append || m.type === MessageType.Heartbeat || m.type === MessageType.Snapshot) {
        // index 0 marks it stale for the receiver's reject handling (0 <= any match).
        this.send({ type: MessageType.AppendResponse, to: m.from, reject: true });
      } else if (m.type === MessageType.Vote) {
        this.send({ type: MessageType.VoteResponse, to: m.from, reject: true });
      } else if (m.type === MessageType.PreVote) {
        // Our higher term in the reject makes the stale pre-candidate catch up.
        this.send({ type: MessageType.PreVoteResponse, to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
        return this.handleVote(m);
      case MessageType.VoteResponse:
        return this.handleVoteResponse(m);
      case MessageType.PreVote:
        return this.handlePreVote(m);
      case MessageType.PreVoteResponse:
        return this.handlePreVoteResponse(m);
      case MessageType.TimeoutNow:
        return this.handleTimeoutNow(m);
      case MessageType.Append:
      case MessageType.Heartbeat:
      case MessageType.Snapshot:
        if (this.role === 'leader') throw new Error(`ElectionSafety: leader ${this.id} got ${MessageType[m.type]} from ${m.from} in its own term ${m.term}`);
        if (this.role === 'candidate' || this.leaderId !== m.from) this.becomeFollower(m.term, m.from);
        this.electionElapsed = 0;
        if (m.type === MessageType.Snapshot) return this.handleSnapshot(m);
        return m.type === MessageType.Append ? this.handleAppend(m) : this.handleHeartbeat(m);
      case MessageType.AppendResponse:
      case MessageType.HeartbeatResponse: {
        const pr = this.role === 'leader' ? this.progress!.get(m.from) : undefined;
        if (!pr) return;
        pr.recentActive = true;
        if (m.type === MessageType.AppendResponse) {
          this.handleAppendResponse(m, pr);
          this.maybeSendTimeoutNow(m.from);
          return;
        }
        this.handleHeartbeatResponse(m, pr);
        // An up-to-date target gets no AppendResponse: heartbeats repeat a lost TimeoutNow.
        this.maybeSendTimeoutNow(m.from);
        return;
      }
      default:
        throw new Error(`MessageTypeUnknown: ${String(m.type)}`);
    }
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
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (this.leadTransferee !== null) throw new LeadershipTransferInProgressError(this.leadTransferee);
    if (data.length === 0) throw new RangeError('ProposalEmpty: propose() needs at least one entry');
    const firstIndex = this.log.lastIndex() + 1;
    this.log.append(data.map((d, i) => ({ index: firstIndex + i, term: this.term, type: EntryType.Normal, data: d })));
    return { firstIndex, lastIndex: this.log.lastIndex(), term: this.term };
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
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (this.leadTransferee !== null) throw new LeadershipTransferInProgressError(this.leadTransferee);
    if (this.confIndex > this.commit) throw new ConfChangeInProgressError(`the change at index ${this.confIndex} is not committed yet (commit ${this.commit})`);
    // A new leader's earlier-term config entries may still be uncommitted without it knowing:
    // committing one entry of its own term first settles them (Ongaro, raft-dev 2015).
    if (!this.committedInTerm) throw new ConfChangeInProgressError(`leader of term ${this.term} has not committed an entry of its term yet`);
    const conf = applyConfChange(this.conf, cc);
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type: EntryType.Config, data: encodeConfState(conf) }]);
    this.setConf(conf, index);
    return { index, term: this.term, conf };
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
    if (index <= this.log.snapshotIndex) return;
    if (!Number.isSafeInteger(index) || index > this.applied) throw new RangeError(`CompactInvalid: compact to ${index} beyond the applied index ${this.applied}`);
    for (let i = index; i >= this.log.firstIndex(); i--) {
      const e = this.log.entry(i);
      if (e.type === EntryType.Config) {
        this.snapshotConf = decodeConfState(e.data);
        this.snapshotConfIndex = i;
        break;
      }
    }
    this.log.compact(index);
  }

  /** The compacted prefix (index 0 when nothing was compacted). */
  snapshot(): Snapshot {
    return { index: this.log.snapshotIndex, term: this.log.snapshotTerm, conf: this.snapshotConf };
  }

  /**
   * Starts an election now (Raft §5.2): term+1, vote for self, Vote to all; with `preVote`, a
   * pre-vote round first (thesis §9.6). No-op on a leader.
   */
  campaign(): void {
    this.assertNotOutstanding('campaign');
    if (this.role === 'leader' || !this.promotable()) return;
    this.startElection(false);
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
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    const max = this.cfg.readIndexPendingMax ?? READ_INDEX_PENDING_MAX_DEFAULT;
    if (this.readsPending.length >= max) throw new ReadIndexPendingFullError(max);
    this.readsPending.push({ ctx, index: this.committedInTerm ? this.commit : -1, round: this.readRound + 1 });
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
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (!this.voters.includes(to)) throw new RangeError(`TransferTargetUnknown: ${to} is not a voter of ${JSON.stringify(this.voters)}`);
    if (to === this.id || to === this.leadTransferee) return;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.progress!.get(to)!;
    if (pr.match === this.log.lastIndex()) return this.maybeSendTimeoutNow(to);
    // Catch the target up from its match index now rather than trusting the pipeline (Appends
    // in flight may be lost); the AppendResponse that shows match = lastIndex sends TimeoutNow.
    pr.becomeProbe(pr.match + 1);
    this.sendAppend(to, true);
  }

  // ---- Ready cycle ----------------------------------------------------------------------

  /** Whether `ready()` would return anything. False while a Ready is outstanding (not yet advanced). */
  hasReady(): boolean {
    if (this.outstanding) return false;
    return (
      this.pendingSnapshot !== null ||
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.readStatesFailed.length > 0 ||
      this.readRoundPending() ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      this.commit > this.applied ||
      !sameHard(this.hardState(), this.prevHard) ||
      !sameSoft(this.softState(), this.prevSoft) ||
      this.appendsPending()
    );
  }

  /**
   * Everything pending since the last `advance()`. Calling it again before `advance()` returns the
   * same Ready. Inputs (`tick/step/propose/campaign`) are refused until `advance(rd)`.
   */
  ready(): Ready {
    if (this.outstanding) return this.outstanding;
    if (this.role === 'leader') {
      this.maybeStartReadRound();
      this.flushAppends();
    }
    const soft = this.softState();
    const hard = this.hardState();
    const rd: Ready = {
      softState: sameSoft(soft, this.prevSoft) ? null : soft,
      hardState: sameHard(hard, this.prevHard) ? null : hard,
      snapshot: this.pendingSnapshot,
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: this.log.slice(this.applied + 1, this.commit),
      readStates: this.readStates,
      readStatesFailed: this.readStatesFailed,
    };
    this.msgs = [];
    this.pendingSnapshot = null;
    this.readStates = [];
    this.readStatesFailed = [];
    this.log.unstableFrom = this.log.lastIndex() + 1;
    this.prevSoft = soft;
    this.prevHard = hard;
    this.outstanding = rd;
    return rd;
  }

  /**
   * The driver persisted `rd.hardState` + `rd.entries`, sent `rd.messages` and handled
   * `rd.committedEntries`. The leader now counts its persisted entries toward commit (a
   * single-voter cluster commits here).
   * @throws Error `ReadyMismatch` if `rd` is not the Ready last returned by `ready()`.
   */
  advance(rd: Ready): void {
    if (!this.outstanding || rd !== this.outstanding) throw new Error('ReadyMismatch: advance() called with a Ready that is not the outstanding one');
    this.outstanding = null;
    if (rd.entries.length) {
      const last = rd.entries[rd.entries.length - 1];
      if (!this.log.matchTerm(last.index, last.term)) throw new Error(`ReadyMismatch: persisted entry ${last.index} no longer in the log`);
      this.log.persistedIndex = Math.max(this.log.persistedIndex, last.index);
    }
    if (rd.committedEntries.length) {
      const first = rd.committedEntries[0].index;
      if (first !== this.applied + 1) throw new Error(`AppliedNotContiguous: committed entries start at ${first}, applied is ${this.applied}`);
      this.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    }
    if (this.role === 'leader') {
      this.progress!.get(this.id)!.maybeUpdate(this.log.persistedIndex);
      this.maybeCommit();
    }
  }

  // ---- membership (thesis §4) -----------------------------------------------------------

  private get voters(): readonly NodeId[] {
    return this.conf.voters;
  }

  private isVoter(): boolean {
    return this.conf.voters.includes(this.id);
  }

  /**
   * Whether this node may campaign: it is a voter in its latest configuration, or that
   * configuration removed it but is not committed yet and it was a voter before. Thesis §4.2.2:
   * "a server that is not part of its own latest configuration should still start new elections,
   * as it might still be needed until the Cnew entry is committed" (else a removed leader that
   * lost leadership while holding the only copy of Cnew deadlocks the cluster); it does not count
   * its own vote.
   */
  private promotable(): boolean {
    if (this.isVoter()) return true;
    if (this.confIndex <= this.commit) return false;
    for (let i = this.confIndex - 1; i >= this.log.firstIndex(); i--) {
      const e = this.log.entry(i);
      if (e.type === EntryType.Config) return decodeConfState(e.data).voters.includes(this.id);
    }
    return this.snapshotConf.voters.includes(this.id);
  }

  /** Recomputes the configuration from the log: the last config entry, else the initial one. */
  private refreshConf(): void {
    for (let i = this.log.lastIndex(); i >= this.log.firstIndex(); i--) {
      const e = this.log.entry(i);
      if (e.type === EntryType.Config) return this.setConf(decodeConfState(e.data), i);
    }
    this.setConf(this.snapshotConf, this.snapshotConfIndex);
  }

  /** After appending `entries` (none truncated at or below `confIndex`): adopt the last config among them. */
  private adoptConfEntries(entries: Entry[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i].type === EntryType.Config) return this.setConf(decodeConfState(entries[i].data), entries[i].index);
    }
  }

  private setConf(conf: ConfState, index: number): void {
    this.conf = conf;
    this.confIndex = index;
    if (this.role !== 'leader') return;
    // Track every member. Removed ones stop counting at once (quorums are over `voters`) but
    // keep receiving the log until the change commits, so they usually learn they were removed
    // and stop campaigning (thesis §4.2.3); `pruneProgress` forgets them then.
    for (const id of [...conf.voters, ...conf.learners]) {
      if (!this.progress!.has(id)) this.progress!.set(id, new Progress(this.log.lastIndex() + 1, this.cfg.inflightMsgsMax));
    }
    if (index <= this.commit) this.pruneProgress();
    if (this.leadTransferee !== null && !conf.voters.includes(this.leadTransferee)) this.abortLeadershipTransfer();
  }

  /**
   * Leader: drops the progress of nodes the (committed) configuration no longer has, with a last
   * heartbeat telling each one that holds the change that it is committed, so it stops
   * campaigning (`promotable`); best effort, pre-vote covers a lost one (thesis §4.2.3).
   */
  private pruneProgress(): void {
    for (const [id, pr] of [...this.progress!]) {
      if (id !== this.id && !this.conf.voters.includes(id) && !this.conf.learners.includes(id)) {
        this.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(this.commit, pr.match), context: this.readRound });
        this.progress!.delete(id);
        this.readAcks.delete(id);
      }
    }
  }

  /**
   * Thesis §4.2.2: once the configuration that removed this leader commits, hand over to the
   * most up-to-date voter at once (TimeoutNow, as in a transfer) instead of leaving the others
   * to wait out an election timeout, and step down.
   */
  private stepDownRemoved(): void {
    let target: NodeId | null = null;
    let best = -1;
    for (const v of this.voters) {
      const m = this.progress!.get(v)?.match ?? 0;
      if (m > best) [target, best] = [v, m];
    }
    if (target !== null && best === this.log.lastIndex()) this.send({ type: MessageType.TimeoutNow, to: target });
    this.becomeFollower(this.term, null);
  }

  // ---- observation ----------------------------------------------------------------------

  status(): RaftStatus {
    let progress: Record<NodeId, ProgressStatus> | null = null;
    if (this.progress) {
      progress = {};
      for (const [id, pr] of this.progress) progress[id] = pr.status();
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leaderId: this.leaderId,
      vote: this.vote,
      commit: this.commit,
      applied: this.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      persistedIndex: this.log.persistedIndex,
      progress,
      preCandidate: this.preCandidate,
      leadTransferee: this.leadTransferee,
      readIndexPending: this.readsPending.length,
      firstIndex: this.log.firstIndex(),
      conf: { voters: [...this.conf.voters], learners: [...this.conf.learners], storage: [...this.conf.storage] },
      confIndex: this.confIndex,
    };
  }

  /** Copy of log entries lo..hi inclusive (tests and safety checkers). @throws on an index outside the log. */
  entries(lo = this.log.firstIndex(), hi = this.log.lastIndex()): Entry[] {
    return this.log.slice(lo, hi);
  }

  // ---- role transitions -----------------------------------------------------------------

  private becomeFollower(term: number, leaderId: NodeId | null, resetTimer = true): void {
    if (term < this.term) throw new Error(`TermDecreasing: ${this.id} asked to follow term ${term} < ${this.term}`);
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    if (this.role === 'leader') this.resetLeaderState();
    this.role = 'follower';
    this.preCandidate = false;
    this.leaderId = leaderId;
    this.progress = null;
    this.votes.clear();
    this.commitBroadcastPending = false;
    if (resetTimer) this.resetElectionTimer();
  }

  /** Leaving leadership: pending reads can no longer be confirmed by us (thesis §6.4), the transfer is over. */
  private resetLeaderState(): void {
    for (const r of this.readsPending) this.readStatesFailed.push({ ctx: r.ctx });
    this.readsPending = [];
    this.readAcks.clear();
    this.committedInTerm = false;
    this.leadTransferee = null;
    this.transferElapsed = 0;
  }

  /** Election timeout or campaign(): pre-vote first if configured, unless forced by a transfer (thesis §3.10). */
  private startElection(transfer: boolean): void {
    this.becomeCandidate(this.cfg.preVote === true && !transfer, transfer);
  }

  /**
   * Raft §5.2: term+1, vote for self, Vote to every voter. With `pre` (thesis §9.6) ask for
   * pre-votes at term+1 instead, touching neither term nor vote (nothing to persist), so a node
   * that cannot win (partitioned, stale log) never bumps the cluster's term. `transfer` marks the
   * Votes so voters skip their lease (thesis §3.10).
   */
  private becomeCandidate(pre: boolean, transfer = false): void {
    if (!pre) {
      this.term++;
      this.vote = this.id;
    }
    this.role = 'candidate';
    this.preCandidate = pre;
    this.leaderId = null;
    this.progress = null;
    // A node campaigning while its pending configuration excludes it does not vote for itself (thesis §4.2.2).
    this.votes = new Map(this.isVoter() ? [[this.id, true]] : []);
    this.resetElectionTimer();
    if (this.quorumReached(true)) return pre ? this.becomeCandidate(false) : this.becomeLeader();
    const type = pre ? MessageType.PreVote : MessageType.Vote;
    const context = transfer ? CONTEXT_CAMPAIGN_TRANSFER : 0;
    for (const to of this.voters) {
      if (to === this.id) continue;
      this.send({ type, to, term: pre ? this.term + 1 : this.term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  /** Raft §5.2/§8: progress next = lastIndex+1, match = 0, probe; then a Noop in the new term. */
  private becomeLeader(): void {
    this.role = 'leader';
    this.preCandidate = false;
    this.leaderId = this.id;
    this.readsPending = [];
    this.readAcks.clear();
    this.committedInTerm = false;
    this.leadTransferee = null;
    // The voters that granted this election were heard from in this check-quorum period: counting
    // them keeps a leader elected under load from stepping down at its first check only because
    // their first AppendResponses are slow (etcd counts only itself there).
    const granted = new Set([...this.votes].filter(([, g]) => g).map(([id]) => id));
    this.votes.clear();
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    const next = this.log.lastIndex() + 1;
    this.progress = new Map();
    for (const v of new Set([this.id, ...this.conf.voters, ...this.conf.learners])) {
      const pr = new Progress(next, this.cfg.inflightMsgsMax);
      if (v === this.id) {
        pr.match = this.log.persistedIndex;
        pr.becomeReplicate();
      }
      pr.recentActive = granted.has(v);
      this.progress.set(v, pr);
    }
    this.log.append([{ index: next, term: this.term, type: EntryType.Noop, data: EMPTY }]);
    this.progress.get(this.id)!.next = next + 1;
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    const n = this.cfg.electionTicks;
    this.randomizedElectionTimeout = n + Math.min(n - 1, Math.floor(this.cfg.random() * n));
  }

  // ---- elections (Raft §5.2, §5.4.1) ---------------------------------------------------

  private handleVote(m: Message): void {
    // One vote per term (persisted); no vote while a leader is known in this term.
    const canVote = this.vote === m.from || (this.vote === null && this.leaderId === null);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.vote = m.from;
      this.electionElapsed = 0;
      this.send({ type: MessageType.VoteResponse, to: m.from, reject: false });
    } else {
      this.send({ type: MessageType.VoteResponse, to: m.from, reject: true });
    }
  }

  private handleVoteResponse(m: Message): void {
    if (this.role !== 'candidate' || this.preCandidate || !this.voters.includes(m.from)) return;
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
    if (this.quorumReached(true)) this.becomeLeader();
    else if (this.quorumReached(false)) this.becomeFollower(this.term, null);
  }

  /**
   * Thesis §9.6: grant a pre-vote iff the candidate could win a real election now: its log is up
   * to date (§5.4.1), we could vote for it in its term, and we have not heard from a leader within
   * the minimum election timeout (so a healthy leader's followers never help depose it).
   * Grants carry the PreVote's term, rejects our own. Term and vote are never changed.
   */
  private handlePreVote(m: Message): void {
    const canVote = m.term > this.term || this.vote === m.from || (this.vote === null && this.leaderId === null);
    const inLease = this.inLease() && m.context !== CONTEXT_CAMPAIGN_TRANSFER;
    if (canVote && !inLease && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: MessageType.PreVoteResponse, to: m.from, term: m.term, reject: false });
    } else {
      this.send({ type: MessageType.PreVoteResponse, to: m.from, reject: true });
    }
  }

  /** Thesis §9.6: a quorum of grants starts the real election; a quorum of rejects ends the round. */
  private handlePreVoteResponse(m: Message): void {
    if (this.role !== 'candidate' || !this.preCandidate || !this.voters.includes(m.from)) return;
    if (!m.reject && m.term !== this.term + 1) return; // a grant for another round's term
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
    if (this.quorumReached(true)) this.becomeCandidate(false);
    else if (this.quorumReached(false)) this.becomeFollower(this.term, null);
  }

  /** Leader lease (etcd `inLease`): heard from a leader (or are it) within the minimum election timeout. */
  private inLease(): boolean {
    return this.leaderId !== null && this.electionElapsed < this.cfg.electionTicks;
  }

  /** Thesis §3.10: the leader says we are up to date; campaign now at term+1, skipping pre-vote. */
  private handleTimeoutNow(m: Message): void {
    if (this.role === 'leader') throw new Error(`ElectionSafety: leader ${this.id} got TimeoutNow from ${m.from} in its own term ${m.term}`);
    if (!this.promotable()) return;
    this.startElection(true);
  }

  private quorumReached(granted: boolean): boolean {
    let n = 0;
    for (const v of this.votes.values()) if (v === granted) n++;
    return n >= this.quorum();
  }

  /** CheckQuorum: were a quorum (counting this leader) heard from since the last check? Clears the marks. */
  private quorumActive(): boolean {
    let n = 0;
    for (const [id, pr] of this.progress!) {
      if (this.voters.includes(id) && (id === this.id || pr.recentActive)) n++;
      pr.recentActive = false;
    }
    return n >= this.quorum();
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  // ---- replication, follower side (Raft §5.3) -----------------------------------------

  /**
   * AppendEntries receiver (Raft Figure 2 / §5.3). On a log-matching failure it rejects with a
   * fast-backtracking hint: if its log is shorter than prevLogIndex, rejectHint = lastIndex+1 and
   * logTerm = 0; else the first index of its conflicting term (not below commit+1) and that term.
   */
  private handleAppend(m: Message): void {
    if (m.index < this.commit) {
      // Stale/reordered: everything up to commit is known to match the leader.
      this.send({ type: MessageType.AppendResponse, to: m.from, index: this.commit });
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      for (let i = 0; i < m.entries.length; i++) {
        if (m.entries[i].index !== m.index + 1 + i) throw new Error(`LogNotContiguous: Append from ${m.from} with prev ${m.index} carries entry ${m.entries[i].index} at position ${i}`);
      }
      const lastNew = m.index + m.entries.length;
      const ci = this.log.findConflict(m.entries);
      if (ci !== 0) {
        if (ci <= this.commit) throw new Error(`CommittedEntryConflict: entry ${ci} conflicts but commit is ${this.commit}`);
        const appended = m.entries.slice(ci - (m.index + 1));
        this.log.truncateAndAppend(appended);
        // A config entry is in effect once in the log; a truncated one reverts (thesis §4.1).
        if (ci <= this.confIndex) this.refreshConf();
        else this.adoptConfEntries(appended);
      }
      this.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: MessageType.AppendResponse, to: m.from, index: lastNew });
      return;
    }
    let hint: number;
    let hintTerm: number;
    if (m.index > this.log.lastIndex()) {
      hint = this.log.lastIndex() + 1;
      hintTerm = 0;
    } else {
      const conflictTerm = this.log.term(m.index)!;
      hint = Math.min(Math.max(this.log.firstIndexWithTermAtLeast(conflictTerm), this.commit + 1), m.index);
      hintTerm = this.log.term(hint)!;
    }
    this.send({ type: MessageType.AppendResponse, to: m.from, index: m.index, reject: true, rejectHint: hint, logTerm: hintTerm });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(commit, our match), which we hold; clamp defensively.
    this.commitTo(Math.min(m.commit, this.log.lastIndex()));
    // Echo the read round so the leader can confirm its ReadIndex requests (thesis §6.4).
    this.send({ type: MessageType.HeartbeatResponse, to: m.from, context: m.context ?? 0 });
  }

  /**
   * InstallSnapshot receiver (Raft §7). Already covered by our commit: just acknowledge. Our log
   * holds the snapshot's last entry: keep the log, commit up to it. Otherwise discard the whole log
   * and start after the snapshot, adopting its configuration; `Ready.snapshot` tells the driver.
   */
  private handleSnapshot(m: Message): void {
    const index = m.index;
    const term = m.logTerm;
    const confEntry = m.entries[0];
    if (!confEntry || confEntry.type !== EntryType.Config || confEntry.index !== index) throw new Error(`SnapshotInvalid: snapshot at ${index} from ${m.from} lacks its configuration entry`);
    if (index <= this.commit) {
      this.send({ type: MessageType.AppendResponse, to: m.from, index: this.commit });
      return;
    }
    if (this.log.matchTerm(index, term)) {
      this.commitTo(index);
      this.send({ type: MessageType.AppendResponse, to: m.from, index });
      return;
    }
    const conf = decodeConfState(confEntry.data);
    this.log.restore(index, term);
    this.snapshotConf = conf;
    this.snapshotConfIndex = index;
    this.commit = index;
    this.applied = index;
    this.pendingSnapshot = { index, term, conf };
    this.refreshConf();
    this.send({ type: MessageType.AppendResponse, to: m.from, index });
  }

  private commitTo(index: number): void {
    if (index <= this.commit) return;
    if (index > this.log.lastIndex()) throw new Error(`CommitBeyondLog: commit ${index} > last index ${this.log.lastIndex()}`);
    this.commit = index;
  }

  // ---- replication, leader side (Raft §5.3, etcd Progress flow control) ----------------

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // A reject of a prevLogIndex below match (or of a probe we no longer wait for) is stale.
      if (m.index < pr.match) return;
      if (m.index === pr.match) {
        // The follower rejects the very probe at its match index: its log now ends below what it
        // once acknowledged (its disk lost fsynced entries, e.g. a torn tail cut into them). etcd
        // drops this as stale and would probe at `match` forever; instead forget the lost
        // acknowledgements and probe from the end of its log. Lowering match never lowers commit.
        if (pr.state === 'probe' && m.index === pr.next - 1 && m.rejectHint <= pr.match) {
          pr.match = Math.max(0, m.rejectHint - 1);
          pr.becomeProbe(m.rejectHint);
          this.sendAppend(m.from, true);
        }
        return;
      }
      if (pr.state === 'probe' && m.index !== pr.next - 1) return;
      if (pr.state === 'replicate' && m.index >= pr.next) return;
      // Fast backtracking (Raft §5.3): skip the follower's whole conflicting term, or to its end.
      let next = m.rejectHint;
      if (m.logTerm > 0) {
        const j = this.log.lastIndexOfTerm(m.logTerm);
        if (j > 0) next = j + 1;
      }
      next = Math.min(Math.max(next, pr.match + 1), m.index);
      pr.becomeProbe(next);
      this.sendAppend(m.from, true);
      return;
    }
    if (m.index > this.log.lastIndex()) throw new Error(`MatchBeyondLog: ${m.from} acknowledged ${m.index} > leader last index ${this.log.lastIndex()}`);
    if (!pr.maybeUpdate(m.index)) return; // duplicate or reordered ack: harmless
    if (pr.state === 'probe') pr.becomeReplicate();
    else pr.freeLE(m.index);
    this.maybeCommit();
    // Further entries for this follower go out at the next ready() (flushAppends).
  }

  /** etcd: a heartbeat response unpauses a probe and re-sends what the follower lacks (lost Appends). */
  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    const round = m.context ?? 0;
    if (round > (this.readAcks.get(m.from) ?? 0)) {
      this.readAcks.set(m.from, round);
      this.releaseReads();
    }
    pr.probeSent = false;
    if (pr.match < this.log.lastIndex()) {
      if (pr.state === 'replicate' && pr.isPaused()) pr.freeFirstOne();
      this.sendAppend(m.from, true);
    }
  }

  private broadcastHeartbeat(): void {
    for (const [to, pr] of this.progress!) {
      if (to === this.id) continue;
      // Every heartbeat carries the latest read round, so a lost round is retried by the next one.
      this.send({ type: MessageType.Heartbeat, to, commit: Math.min(this.commit, pr.match), context: this.readRound });
    }
  }

  // ---- ReadIndex (thesis §6.4) ----------------------------------------------------------

  /** A recorded read still needs a heartbeat round started after it. */
  private readRoundPending(): boolean {
    const n = this.readsPending.length;
    return this.role === 'leader' && n > 0 && this.readsPending[n - 1].round > this.readRound;
  }

  /**
   * At ready(): one heartbeat round for every read recorded since the last round started (that is
   * the batching: N concurrent reads, one round). A quorum ack of round r (or later) proves we
   * were still leader after each read with `round <= r` was recorded.
   */
  private maybeStartReadRound(): void {
    if (!this.readRoundPending()) return;
    this.readRound++;
    this.heartbeatElapsed = 0;
    this.broadcastHeartbeat();
    this.releaseReads(); // a single voter is its own quorum
  }

  /** Moves reads whose round a quorum acknowledged, and whose index is known, to `readStates`. */
  private releaseReads(): void {
    if (this.readsPending.length === 0 || !this.committedInTerm) return;
    const acks = this.voters.map((v) => (v === this.id ? this.readRound : (this.readAcks.get(v) ?? 0))).sort((a, b) => b - a);
    const confirmed = acks[this.quorum() - 1];
    let n = 0;
    while (n < this.readsPending.length && this.readsPending[n].round <= confirmed) {
      const r = this.readsPending[n++];
      if (r.index < 0) throw new Error(`ReadIndexUnset: read confirmed before an entry of term ${this.term} committed`);
      this.readStates.push({ index: r.index, ctx: r.ctx });
    }
    if (n) this.readsPending.splice(0, n);
  }

  // ---- leadership transfer (thesis §3.10) -----------------------------------------------

  /** Sends TimeoutNow once the transfer target holds the leader's whole log (proposals are refused meanwhile). */
  private maybeSendTimeoutNow(to: NodeId): void {
    if (this.role !== 'leader' || this.leadTransferee !== to) return;
    if (this.progress!.get(to)!.match === this.log.lastIndex()) this.send({ type: MessageType.TimeoutNow, to });
  }

  private abortLeadershipTransfer(): void {
    this.leadTransferee = null;
    this.transferElapsed = 0;
  }

  /**
   * Sends one Append to `to` from its next index, bounded by entriesPerMsgMax/msgBytesMax.
   * Returns false if paused (probe with one in flight, or a full pipelining window) or if there is
   * nothing to send and `sendIfEmpty` is false.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress!.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    if (prevIndex < this.log.snapshotIndex) return this.sendSnapshot(to, pr);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) throw new Error(`ProgressBeyondLog: next ${pr.next} for ${to} > last index ${this.log.lastIndex()} + 1`);
    const entries = this.log.sliceBounded(pr.next, this.cfg.entriesPerMsgMax, this.cfg.msgBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.Append, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.commit });
    if (pr.state === 'probe') pr.probeSent = true;
    else if (entries.length) pr.sent(entries[entries.length - 1].index);
    return true;
  }

  /**
   * Raft §7: the follower needs entries we compacted. Send the snapshot (metadata and the
   * configuration at its index) and wait in probe for its answer (a lost one is re-sent after the
   * next heartbeat response, like a lost probe).
   */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.snapshot();
    const confEntry: Entry = { index: snap.index, term: snap.term, type: EntryType.Config, data: encodeConfState(snap.conf) };
    this.send({ type: MessageType.Snapshot, to, index: snap.index, logTerm: snap.term, entries: [confEntry], commit: this.commit });
    pr.becomeProbe(snap.index + 1);
    pr.probeSent = true;
    return true;
  }

  /** At ready(): send every follower what it lacks (as far as flow control allows), or the new commit. */
  private flushAppends(): void {
    for (const to of this.progress!.keys()) {
      if (to === this.id) continue;
      let sent = false;
      while (this.sendAppend(to, false)) sent = true;
      if (!sent && this.commitBroadcastPending) this.sendAppend(to, true);
    }
    this.commitBroadcastPending = false;
  }

  private appendsPending(): boolean {
    if (this.role !== 'leader') return false;
    if (this.commitBroadcastPending) return true;
    const last = this.log.lastIndex();
    for (const [to, pr] of this.progress!) if (to !== this.id && !pr.isPaused() && pr.next <= last) return true;
    return false;
  }

  /** Raft §5.4.2 / Figure 8: commit the quorum match index only if its entry is of the current term. */
  private maybeCommit(): void {
    // Voters only: learners do not count, nor does a leader its configuration removed (thesis §4.2.2).
    const matches = this.voters.map((v) => this.progress!.get(v)!.match).sort((a, b) => b - a);
    const mci = matches[this.quorum() - 1];
    if (mci > this.commit && this.log.term(mci) === this.term) {
      this.commitTo(mci);
      this.commitBroadcastPending = true;
      if (!this.committedInTerm) {
        // Thesis §6.4 step 1: only now does our commit index cover every entry committed before
        // our term, so reads recorded earlier are served at this commit index.
        this.committedInTerm = true;
        for (const r of this.readsPending) if (r.index < 0) r.index = this.commit;
        this.releaseReads();
      }
      if (this.confIndex <= this.commit) {
        this.pruneProgress();
        if (!this.isVoter()) this.stepDownRemoved();
      }
    }
  }

  // ---- helpers --------------------------------------------------------------------------

  private send(m: Pick<Message, 'type' | 'to'> & Partial<Message>): void {
    this.msgs.push(makeMessage({ from: this.id, term: this.term, ...m }));
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.commit };
  }

  private softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId, term: this.term };
  }

  private assertNotOutstanding(op: string): void {
    if (this.outstanding) throw new Error(`ReadyOutstanding: ${op}() called between ready() and advance()`);
  }
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

function normalizeConf(c: ConfState): ConfState {
  const sorted = (xs: NodeId[]) => [...new Set(xs)].sort();
  return { voters: sorted(c.voters), learners: sorted(c.learners), storage: sorted(c.storage) };
}

/** The configuration after `cc` (thesis §4.1: one server at a time). @throws ConfChangeInvalidError */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const { node } = cc;
  if (typeof node !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(node)) throw new ConfChangeInvalidError(`node id ${JSON.stringify(node)} must be 1-64 of [A-Za-z0-9_-]`);
  const isVoter = conf.voters.includes(node);
  const isLearner = conf.learners.includes(node);
  const without = (xs: NodeId[]) => xs.filter((x) => x !== node);
  switch (cc.type) {
    case 'addLearner':
      if (isVoter || isLearner) throw new ConfChangeInvalidError(`${node} is already a ${isVoter ? 'voter' : 'learner'}`);
      return normalizeConf({ ...conf, learners: [...conf.learners, node] });
    case 'addVoter':
      if (isVoter) throw new ConfChangeInvalidError(`${node} is already a voter`);
      return normalizeConf({ ...conf, voters: [...conf.voters, node], learners: without(conf.learners) });
    case 'removeNode':
      if (!isVoter && !isLearner) throw new ConfChangeInvalidError(`${node} is not a member`);
      if (isVoter && conf.voters.length === 1) throw new ConfChangeInvalidError(`${node} is the last voter`);
      return normalizeConf({ ...conf, voters: without(conf.voters), learners: without(conf.learners) });
    case 'addStorage':
      if (conf.storage.includes(node)) throw new ConfChangeInvalidError(`${node} is already a storage node`);
      return normalizeConf({ ...conf, storage: [...conf.storage, node] });
    case 'removeStorage':
      if (!conf.storage.includes(node)) throw new ConfChangeInvalidError(`${node} is not a storage node`);
      return normalizeConf({ ...conf, storage: without(conf.storage) });
    default:
      throw new ConfChangeInvalidError(`unknown change type ${JSON.stringify((cc as { type: unknown }).type)}`);
  }
}
