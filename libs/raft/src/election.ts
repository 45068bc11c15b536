import type { Raft } from './raft';
import { CONTEXT_CAMPAIGN_TRANSFER, MessageType, type Message } from './types';

/**
 * Elections (Raft §5.2, §5.4.1), pre-vote (thesis §9.6), the leader lease and CheckQuorum
 * (thesis §4.2.3, etcd): the vote handlers every role runs, the vote count a candidate keeps and
 * the quorum checks a leader makes.
 */

/** Vote request at our term (any role): one vote per term (persisted); no vote while a leader is known in this term. */
export function handleVote(r: Raft, m: Message): void {
  const canVote = r.vote === m.from || (r.vote === null && r.leaderId === null);
  if (canVote && r.log.isUpToDate(m.index, m.logTerm)) {
    r.vote = m.from;
    r.electionElapsed = 0;
    r.send({ type: MessageType.VoteResponse, to: m.from, reject: false });
  } else {
    r.send({ type: MessageType.VoteResponse, to: m.from, reject: true });
  }
}

/**
 * Thesis §9.6: grant a pre-vote iff the candidate could win a real election now: its log is up
 * to date (§5.4.1), we could vote for it in its term, and we have not heard from a leader within
 * the minimum election timeout (so a healthy leader's followers never help depose it).
 * Grants carry the PreVote's term, rejects our own. Term and vote are never changed.
 */
export function handlePreVote(r: Raft, m: Message): void {
  const canVote = m.term > r.term || r.vote === m.from || (r.vote === null && r.leaderId === null);
  const leased = inLease(r) && m.context !== CONTEXT_CAMPAIGN_TRANSFER;
  if (canVote && !leased && r.log.isUpToDate(m.index, m.logTerm)) {
    r.send({ type: MessageType.PreVoteResponse, to: m.from, term: m.term, reject: false });
  } else {
    r.send({ type: MessageType.PreVoteResponse, to: m.from, reject: true });
  }
}

/** Candidate: a quorum of grants wins the election (Raft §5.2); a quorum of rejects ends it. */
export function handleVoteResponse(r: Raft, m: Message): void {
  if (r.preCandidate || !r.voters.includes(m.from)) return;
  if (!r.votes.has(m.from)) r.votes.set(m.from, !m.reject);
  if (quorumReached(r, true)) r.becomeLeader();
  else if (quorumReached(r, false)) r.becomeFollower(r.term, null);
}

/** Pre-candidate (thesis §9.6): a quorum of grants starts the real election; a quorum of rejects ends the round. */
export function handlePreVoteResponse(r: Raft, m: Message): void {
  if (!r.preCandidate || !r.voters.includes(m.from)) return;
  if (!m.reject && m.term !== r.term + 1) return; // a grant for another round's term
  if (!r.votes.has(m.from)) r.votes.set(m.from, !m.reject);
  if (quorumReached(r, true)) r.becomeCandidate(false);
  else if (quorumReached(r, false)) r.becomeFollower(r.term, null);
}

/** Whether a quorum of voters granted (`granted`) or rejected this candidate's (pre-)votes. */
export function quorumReached(r: Raft, granted: boolean): boolean {
  let n = 0;
  for (const v of r.votes.values()) if (v === granted) n++;
  return n >= r.quorum();
}

/** Leader lease (etcd `inLease`): heard from a leader (or are it) within the minimum election timeout. */
export function inLease(r: Raft): boolean {
  // With lease reads a node just started counts as in lease: before a restart it may have
  // acknowledged a leader's read round whose lease is still running (thesis §6.4.1).
  if (r.cfg.readLeaseTicks && r.ticks < r.cfg.electionTicks) return true;
  return r.leaderId !== null && r.electionElapsed < r.cfg.electionTicks;
}

/**
 * Leader, once per `electionTicks`: with `checkQuorum` (etcd), a leader cut off from a quorum
 * steps down so clients go elsewhere. Returns whether it is still leader.
 */
export function checkQuorumTick(r: Raft): boolean {
  if (r.cfg.checkQuorum && !quorumActive(r)) {
    r.becomeFollower(r.term, null);
    return false;
  }
  return true;
}

/** CheckQuorum: were a quorum (counting this leader) heard from since the last check? Clears the marks. */
function quorumActive(r: Raft): boolean {
  let n = 0;
  for (const [id, pr] of r.prs()) {
    if (r.voters.includes(id) && (id === r.id || pr.recentActive)) n++;
    pr.recentActive = false;
  }
  return n >= r.quorum();
}
