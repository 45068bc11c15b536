import { promotable, refreshConf, normalizeConf } from './membership';
import { checkQuorumTick, handlePreVote, handleVote, inLease, quorumReached } from './election';
import { failPendingReads, newReadIndexState, startReadRound, type ReadIndexState } from './read-index';
import { Progress } from './progress';
import { RaftLog } from './raft-log';
import { stepCandidate } from './step-candidate';
import { stepFollower } from './step-follower';
import { stepLeader } from './step-leader';
import { abortLeadershipTransfer } from './transfer';
import {
  CONTEXT_CAMPAIGN_TRANSFER,
  EntryType,
  MessageType,
  makeMessage,
  type ConfState,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type Role,
  type Snapshot,
  type SoftState,
} from './types';

const EMPTY = new Uint8Array(0);

/** Per-role message handling after the term rules (etcd's `r.step`): one function per role. */
const STEP: Record<Role, (r: Raft, m: Message) => void> = { leader: stepLeader, candidate: stepCandidate, follower: stepFollower };

/**
 * The state of one Raft node and its role transitions (etcd's `raft` struct), internal to this
 * package: `RaftNode` is the public face and owns the Ready cycle. Per-role message handling is
 * in step-leader / step-candidate / step-follower; shared parts in their own modules (log:
 * raft-log, replication and commit: replication, flow control: progress, votes and leases:
 * election, configuration: membership, ReadIndex: read-index, compaction and InstallSnapshot:
 * snapshot, leadership transfer: transfer). Fields are public to those modules only.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  readonly log: RaftLog;
  /** The configuration in effect: the last config entry in the log, else the initial one (thesis §4.1). */
  conf: ConfState;
  /** Index of the config entry `conf` came from; 0 = the initial configuration. */
  confIndex = 0;
  /** The configuration in effect at the compacted prefix's last index (Raft §7), and where it came from. */
  snapshotConf: ConfState;
  snapshotConfIndex = 0;
  /** Follower: a leader's snapshot installed since the last Ready (for `Ready.snapshot`). */
  pendingSnapshot: Snapshot | null = null;

  term = 0;
  vote: NodeId | null = null;
  commit = 0;
  applied: number;
  role: Role = 'follower';
  leaderId: NodeId | null = null;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Candidate only: vote granted (true) / rejected (false) per voter. */
  votes = new Map<NodeId, boolean>();
  /** Leader only: one entry per member including this node. */
  progress: Map<NodeId, Progress> | null = null;
  /** Leader: commit advanced since the last Append broadcast, so followers should learn it. */
  commitBroadcastPending = false;
  /** Candidate only: collecting pre-votes at term+1 (thesis §9.6); the term is not incremented yet. */
  preCandidate = false;
  /** Leader: an entry of the current term is committed, so `commit` covers every earlier commit (thesis §6.4 step 1). */
  committedInTerm = false;

  /** Leader only: transfer target (thesis §3.10) and ticks since the transfer started. */
  leadTransferee: NodeId | null = null;
  /** Ticks since this node started (any role): lease reads measure time in them. */
  ticks = 0;
  /** Leader: a leadership transfer started in this term, so lease reads are off until the next term (thesis §6.4.1). */
  leaseForfeited = false;
  transferElapsed = 0;

  readonly reads: ReadIndexState = newReadIndexState();
  /** Messages produced since the last Ready. */
  msgs: Message[] = [];

  /** @throws Error `RestoredStateInvalid` on a restored state that contradicts itself. */
  constructor(config: RaftConfig) {
    this.cfg = config;
    this.id = config.id;
    const lease = config.readLeaseTicks ?? 0;
    if (lease !== 0 && (!Number.isInteger(lease) || lease <= 0 || lease >= config.electionTicks || !config.checkQuorum)) {
      throw new RangeError(`ReadLeaseInvalid: readLeaseTicks ${lease} must be an integer in 1..electionTicks-1 (${config.electionTicks - 1}) with checkQuorum on`);
    }
    const initialConf = normalizeConf({ voters: config.voters, learners: config.learners ?? [], storage: config.storage ?? [] });
    this.conf = initialConf;
    this.snapshotConf = initialConf;
    const restored = config.restored;
    const snap = restored?.snapshot;
    this.log = new RaftLog(restored?.entries ?? [], snap, config.logCache, restored?.onDisk);
    if (snap) {
      this.snapshotConf = normalizeConf(snap.conf);
      this.snapshotConfIndex = snap.index;
    }
    refreshConf(this);
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
    this.resetElectionTimer();
  }

  get voters(): readonly NodeId[] {
    return this.conf.voters;
  }

  isVoter(): boolean {
    return this.conf.voters.includes(this.id);
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /** The leader's progress map. @throws Error `NotLeaderState` when called outside leadership (a bug). */
  prs(): Map<NodeId, Progress> {
    if (!this.progress) throw new Error(`NotLeaderState: ${this.id} (${this.role}) has no progress`);
    return this.progress;
  }

  // ---- inputs ---------------------------------------------------------------------------

  /** One logical clock tick (see RaftNode.tick). */
  tick(): void {
    this.ticks++;
    if (this.role === 'leader') return this.tickHeartbeat();
    this.electionElapsed++;
    // Only voters campaign: a learner, a joining node or a removed one just waits to be told.
    if (this.electionElapsed >= this.randomizedElectionTimeout && promotable(this)) this.startElection(false);
  }

  /** Ticks until one may act, ≥ 1; Infinity when none would (see RaftNode.ticksUntilDue). */
  ticksUntilDue(): number {
    if (this.role === 'leader') {
      let n = Math.min(this.cfg.heartbeatTicks - this.heartbeatElapsed, this.cfg.electionTicks - this.electionElapsed);
      if (this.leadTransferee !== null) n = Math.min(n, this.cfg.electionTicks - this.transferElapsed);
      return Math.max(1, n);
    }
    return promotable(this) ? Math.max(1, this.randomizedElectionTimeout - this.electionElapsed) : Infinity;
  }

  /** Leader: CheckQuorum and leadership-transfer deadlines (one `electionTicks` each), heartbeats. */
  private tickHeartbeat(): void {
    this.electionElapsed++;
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.cfg.electionTicks) {
      // Thesis §3.10: the target did not take over within an election timeout; resume service.
      abortLeadershipTransfer(this);
    }
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (!checkQuorumTick(this)) return;
    }
    this.heartbeatElapsed++;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      // Lease reads: every heartbeat is a new read round, so its quorum ack renews the lease.
      if (this.cfg.readLeaseTicks) startReadRound(this);
      this.broadcastHeartbeat();
    }
  }

  /** The term rules (Raft §5.1, thesis §9.6, the lease), then the votes, then the role's own step (see RaftNode.step). */
  step(m: Message): void {
    if (m.to !== this.id) throw new Error(`MessageMisrouted: message to ${m.to} stepped into ${this.id}`);
    if (m.from === this.id) throw new Error(`MessageMisrouted: message from ${m.from} to itself`);
    if (m.term > this.term && !this.stepHigherTerm(m)) return;
    if (m.term < this.term) return this.stepLowerTerm(m);
    switch (m.type) {
      case MessageType.Vote:
        return handleVote(this, m);
      case MessageType.PreVote:
        return handlePreVote(this, m);
      default:
        return STEP[this.role](this, m);
    }
  }

  /** A message of a higher term. Returns whether to go on stepping it at the (possibly new) term. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === MessageType.Vote && this.cfg.checkQuorum && inLease(this) && m.context !== CONTEXT_CAMPAIGN_TRANSFER) {
      // Leader lease (thesis §4.2.3, etcd): a node that heard from a leader within the minimum
      // election timeout neither adopts the term nor votes, unless the campaign is a transfer.
      // Only under checkQuorum: only then does a leader that lost its quorum step down, which is
      // what keeps honouring the lease live. (PreVote: handlePreVote, always.)
      return false;
    }
    if (m.type === MessageType.PreVote) {
      // Never change our term for a PreVote (thesis §9.6): the candidate has not adopted it either.
      handlePreVote(this, m);
      return false;
    }
    if (m.type === MessageType.PreVoteResponse && !m.reject) {
      // A grant comes at the term we asked for (ours + 1); we adopt it only on a quorum.
      if (this.role === 'candidate') stepCandidate(this, m);
      return false;
    }
    const fromLeader = m.type === MessageType.Append || m.type === MessageType.Heartbeat || m.type === MessageType.Snapshot;
    // Raft §5.2: the election timer restarts on hearing from a leader or granting a vote, not on
    // a mere higher-term Vote (else a candidate with a stale log, which can never win, would keep
    // resetting everyone's timer). handleVote resets it if the vote is granted.
    const resetTimer = m.type !== MessageType.Vote || this.role === 'leader';
    this.becomeFollower(m.term, fromLeader ? m.from : null, resetTimer);
    return true;
  }

  /** A stale message: answered with our term where its sender must learn it, else ignored (Raft §5.1). */
  private stepLowerTerm(m: Message): void {
    if (m.type === MessageType.Append || m.type === MessageType.Heartbeat || m.type === MessageType.Snapshot) {
      // index 0 marks it stale for the receiver's reject handling (0 <= any match).
      this.send({ type: MessageType.AppendResponse, to: m.from, reject: true });
    } else if (m.type === MessageType.Vote) {
      this.send({ type: MessageType.VoteResponse, to: m.from, reject: true });
    } else if (m.type === MessageType.PreVote) {
      // Our higher term in the reject makes the stale pre-candidate catch up.
      this.send({ type: MessageType.PreVoteResponse, to: m.from, reject: true });
    }
  }

  // ---- role transitions -----------------------------------------------------------------

  becomeFollower(term: number, leaderId: NodeId | null, resetTimer = true): void {
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
    failPendingReads(this);
    this.committedInTerm = false;
    this.leadTransferee = null;
    this.transferElapsed = 0;
  }

  /** Election timeout or campaign(): pre-vote first if configured, unless forced by a transfer (thesis §3.10). */
  startElection(transfer: boolean): void {
    this.becomeCandidate(this.cfg.preVote === true && !transfer, transfer);
  }

  /**
   * Raft §5.2: term+1, vote for self, Vote to every voter. With `pre` (thesis §9.6) ask for
   * pre-votes at term+1 instead, touching neither term nor vote (nothing to persist), so a node
   * that cannot win (partitioned, stale log) never bumps the cluster's term. `transfer` marks the
   * Votes so voters skip their lease (thesis §3.10).
   */
  becomeCandidate(pre: boolean, transfer = false): void {
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
    if (quorumReached(this, true)) return pre ? this.becomeCandidate(false) : this.becomeLeader();
    const type = pre ? MessageType.PreVote : MessageType.Vote;
    const context = transfer ? CONTEXT_CAMPAIGN_TRANSFER : 0;
    for (const to of this.voters) {
      if (to === this.id) continue;
      this.send({ type, to, term: pre ? this.term + 1 : this.term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  /** Raft §5.2/§8: progress next = lastIndex+1, match = 0, probe; then a Noop in the new term. */
  becomeLeader(): void {
    this.role = 'leader';
    this.preCandidate = false;
    this.leaderId = this.id;
    this.reads.pending = [];
    this.reads.acks.clear();
    this.reads.roundStartTicks.clear();
    this.committedInTerm = false;
    this.leadTransferee = null;
    this.leaseForfeited = false;
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

  resetElectionTimer(): void {
    this.electionElapsed = 0;
    const n = this.cfg.electionTicks;
    this.randomizedElectionTimeout = n + Math.min(n - 1, Math.floor(this.cfg.random() * n));
  }

  // ---- helpers --------------------------------------------------------------------------

  /** Leader: a heartbeat to every member; each carries the latest read round, so a lost round is retried by the next one. */
  broadcastHeartbeat(): void {
    for (const [to, pr] of this.prs()) {
      if (to === this.id) continue;
      this.send({ type: MessageType.Heartbeat, to, commit: Math.min(this.commit, pr.match), context: this.reads.round });
    }
  }

  commitTo(index: number): void {
    if (index <= this.commit) return;
    if (index > this.log.lastIndex()) throw new Error(`CommitBeyondLog: commit ${index} > last index ${this.log.lastIndex()}`);
    this.commit = index;
  }

  send(m: Pick<Message, 'type' | 'to'> & Partial<Message>): void {
    this.msgs.push(makeMessage({ from: this.id, term: this.term, ...m }));
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.commit };
  }

  softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId, term: this.term };
  }
}
