import { Progress } from './progress';
import { RaftLog } from './raft-log';
import {
  EntryType,
  MessageType,
  NotLeaderError,
  makeMessage,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type RaftStatus,
  type Ready,
  type Role,
  type SoftState,
} from './types';

const EMPTY = new Uint8Array(0);

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
 * Not yet implemented: snapshots/compaction, membership changes (thesis §4), PreVote.
 */
export class RaftNode {
  readonly id: NodeId;
  private readonly voters: readonly NodeId[];
  private readonly cfg: RaftConfig;
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

  private msgs: Message[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;

  /** @throws Error `RaftConfigInvalid` / `RestoredStateInvalid` on bad config or restored state. */
  constructor(config: RaftConfig) {
    validateConfig(config);
    this.cfg = config;
    this.id = config.id;
    this.voters = [...config.voters];
    const restored = config.restored;
    this.log = new RaftLog(restored?.entries ?? []);
    if (restored) {
      const hs = restored.hardState;
      if (hs.commit < 0 || hs.commit > this.log.lastIndex()) {
        throw new Error(`RestoredStateInvalid: commit ${hs.commit} outside the restored log 0..${this.log.lastIndex()}`);
      }
      if (hs.term < this.log.lastTerm()) throw new Error(`RestoredStateInvalid: term ${hs.term} < last log term ${this.log.lastTerm()}`);
      this.term = hs.term;
      this.vote = hs.vote;
      this.commit = hs.commit;
    }
    this.applied = config.applied ?? this.commit;
    if (this.applied < 0 || this.applied > this.commit) throw new Error(`RestoredStateInvalid: applied ${this.applied} outside 0..commit ${this.commit}`);
    this.prevHard = this.hardState();
    this.prevSoft = this.softState();
    this.resetElectionTimer();
  }

  // ---- inputs ---------------------------------------------------------------------------

  /** One logical clock tick: election timeout for followers/candidates (§5.2), heartbeats for the leader. */
  tick(): void {
    this.assertNotOutstanding('tick');
    if (this.role === 'leader') {
      this.electionElapsed++;
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
    if (this.electionElapsed >= this.randomizedElectionTimeout) this.campaign();
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
    if (m.term > this.term) {
      const fromLeader = m.type === MessageType.Append || m.type === MessageType.Heartbeat;
      // Raft §5.2: the election timer restarts on hearing from a leader or granting a vote, not on
      // a mere higher-term Vote (else a candidate with a stale log, which can never win, would keep
      // resetting everyone's timer). handleVote resets it if the vote is granted.
      const resetTimer = m.type !== MessageType.Vote || this.role === 'leader';
      this.becomeFollower(m.term, fromLeader ? m.from : null, resetTimer);
    } else if (m.term < this.term) {
      if (m.type === MessageType.Append || m.type === MessageType.Heartbeat) {
        // index 0 marks it stale for the receiver's reject handling (0 <= any match).
        this.send({ type: MessageType.AppendResponse, to: m.from, reject: true });
      } else if (m.type === MessageType.Vote) {
        this.send({ type: MessageType.VoteResponse, to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
        return this.handleVote(m);
      case MessageType.VoteResponse:
        return this.handleVoteResponse(m);
      case MessageType.Append:
      case MessageType.Heartbeat:
        if (this.role === 'leader') throw new Error(`ElectionSafety: leader ${this.id} got ${MessageType[m.type]} from ${m.from} in its own term ${m.term}`);
        if (this.role === 'candidate' || this.leaderId !== m.from) this.becomeFollower(m.term, m.from);
        this.electionElapsed = 0;
        return m.type === MessageType.Append ? this.handleAppend(m) : this.handleHeartbeat(m);
      case MessageType.AppendResponse:
      case MessageType.HeartbeatResponse: {
        const pr = this.role === 'leader' ? this.progress!.get(m.from) : undefined;
        if (!pr) return;
        pr.recentActive = true;
        return m.type === MessageType.AppendResponse ? this.handleAppendResponse(m, pr) : this.handleHeartbeatResponse(m, pr);
      }
      default:
        throw new Error(`MessageTypeUnknown: ${String(m.type)}`);
    }
  }

  /**
   * Leader only: appends one Normal entry per element at contiguous indexes in the current term.
   * They go into the next Ready's `entries`, and Appends are sent at `ready()` so proposals made
   * between two Readies are batched into as few Appends as the size bounds allow.
   * @throws NotLeaderError (with the known leader id) on a follower/candidate; RangeError on an empty array.
   */
  propose(data: Uint8Array[]): { firstIndex: number; lastIndex: number; term: number } {
    this.assertNotOutstanding('propose');
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (data.length === 0) throw new RangeError('ProposalEmpty: propose() needs at least one entry');
    const firstIndex = this.log.lastIndex() + 1;
    this.log.append(data.map((d, i) => ({ index: firstIndex + i, term: this.term, type: EntryType.Normal, data: d })));
    return { firstIndex, lastIndex: this.log.lastIndex(), term: this.term };
  }

  /** Starts an election now (Raft §5.2): term+1, vote for self, Vote to all. No-op on a leader. */
  campaign(): void {
    this.assertNotOutstanding('campaign');
    if (this.role === 'leader') return;
    this.becomeCandidate();
  }

  // ---- Ready cycle ----------------------------------------------------------------------

  /** Whether `ready()` would return anything. False while a Ready is outstanding (not yet advanced). */
  hasReady(): boolean {
    if (this.outstanding) return false;
    return (
      this.msgs.length > 0 ||
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
    if (this.role === 'leader') this.flushAppends();
    const soft = this.softState();
    const hard = this.hardState();
    const rd: Ready = {
      softState: sameSoft(soft, this.prevSoft) ? null : soft,
      hardState: sameHard(hard, this.prevHard) ? null : hard,
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: this.log.slice(this.applied + 1, this.commit),
    };
    this.msgs = [];
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
    };
  }

  /** Copy of log entries lo..hi inclusive (tests and safety checkers). @throws on an index outside the log. */
  entries(lo = 1, hi = this.log.lastIndex()): Entry[] {
    return this.log.slice(lo, hi);
  }

  // ---- role transitions -----------------------------------------------------------------

  private becomeFollower(term: number, leaderId: NodeId | null, resetTimer = true): void {
    if (term < this.term) throw new Error(`TermDecreasing: ${this.id} asked to follow term ${term} < ${this.term}`);
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.leaderId = leaderId;
    this.progress = null;
    this.votes.clear();
    this.commitBroadcastPending = false;
    if (resetTimer) this.resetElectionTimer();
  }

  private becomeCandidate(): void {
    this.term++;
    this.vote = this.id;
    this.role = 'candidate';
    this.leaderId = null;
    this.progress = null;
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer();
    if (this.quorumReached(true)) return this.becomeLeader();
    for (const to of this.voters) {
      if (to === this.id) continue;
      this.send({ type: MessageType.Vote, to, index: this.log.lastIndex(), logTerm: this.log.lastTerm() });
    }
  }

  /** Raft §5.2/§8: progress next = lastIndex+1, match = 0, probe; then a Noop in the new term. */
  private becomeLeader(): void {
    this.role = 'leader';
    this.leaderId = this.id;
    this.votes.clear();
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    const next = this.log.lastIndex() + 1;
    this.progress = new Map();
    for (const v of this.voters) {
      const pr = new Progress(next, this.cfg.inflightMsgsMax);
      if (v === this.id) {
        pr.match = this.log.persistedIndex;
        pr.becomeReplicate();
      }
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
    if (this.role !== 'candidate' || !this.voters.includes(m.from)) return;
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
    if (this.quorumReached(true)) this.becomeLeader();
    else if (this.quorumReached(false)) this.becomeFollower(this.term, null);
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
      if (id === this.id || pr.recentActive) n++;
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
        this.log.truncateAndAppend(m.entries.slice(ci - (m.index + 1)));
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
    this.send({ type: MessageType.HeartbeatResponse, to: m.from });
  }

  private commitTo(index: number): void {
    if (index <= this.commit) return;
    if (index > this.log.lastIndex()) throw new Error(`CommitBeyondLog: commit ${index} > last index ${this.log.lastIndex()}`);
    this.commit = index;
  }

  // ---- replication, leader side (Raft §5.3, etcd Progress flow control) ----------------

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // A reject of a prevLogIndex at or below match (or of a probe we no longer wait for) is stale.
      if (m.index <= pr.match) return;
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
    pr.probeSent = false;
    if (pr.match < this.log.lastIndex()) {
      if (pr.state === 'replicate' && pr.isPaused()) pr.freeFirstOne();
      this.sendAppend(m.from, true);
    }
  }

  private broadcastHeartbeat(): void {
    for (const [to, pr] of this.progress!) {
      if (to === this.id) continue;
      this.send({ type: MessageType.Heartbeat, to, commit: Math.min(this.commit, pr.match) });
    }
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
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) throw new Error(`ProgressBeyondLog: next ${pr.next} for ${to} > last index ${this.log.lastIndex()} + 1`);
    const entries = this.log.sliceBounded(pr.next, this.cfg.entriesPerMsgMax, this.cfg.msgBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.Append, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.commit });
    if (pr.state === 'probe') pr.probeSent = true;
    else if (entries.length) pr.sent(entries[entries.length - 1].index);
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
    const matches = [...this.progress!.values()].map((p) => p.match).sort((a, b) => b - a);
    const mci = matches[this.quorum() - 1];
    if (mci > this.commit && this.log.term(mci) === this.term) {
      this.commitTo(mci);
      this.commitBroadcastPending = true;
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
  if (!c.voters.includes(c.id)) bad(`voters ${JSON.stringify(c.voters)} do not include id ${c.id}`);
  if (new Set(c.voters).size !== c.voters.length) bad(`voters ${JSON.stringify(c.voters)} has duplicates`);
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
