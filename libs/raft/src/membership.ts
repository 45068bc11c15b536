import { Progress } from './progress';
import type { Raft } from './raft';
import { abortLeadershipTransfer } from './transfer';
import {
  ConfChangeInProgressError,
  ConfChangeInvalidError,
  EntryType,
  LeadershipTransferInProgressError,
  MessageType,
  NotLeaderError,
  decodeConfState,
  encodeConfState,
  type ConfChange,
  type ConfState,
  type Entry,
  type NodeId,
} from './types';

/**
 * Membership (thesis §4): single-server changes through config entries, in effect on every node
 * as soon as they are in its log (committed or not); learners for the catch-up phase (§4.2.1);
 * removal of the leader (§4.2.2).
 */

/** Each list sorted and without duplicates. */
export function normalizeConf(c: ConfState): ConfState {
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

/** See RaftNode.proposeConfChange. @throws NotLeaderError, LeadershipTransferInProgressError, ConfChangeInProgressError, ConfChangeInvalidError */
export function proposeConfChange(r: Raft, cc: ConfChange): { index: number; term: number; conf: ConfState } {
  if (r.role !== 'leader') throw new NotLeaderError(r.leaderId);
  if (r.leadTransferee !== null) throw new LeadershipTransferInProgressError(r.leadTransferee);
  if (r.confIndex > r.commit) throw new ConfChangeInProgressError(`the change at index ${r.confIndex} is not committed yet (commit ${r.commit})`);
  // A new leader's earlier-term config entries may still be uncommitted without it knowing:
  // committing one entry of its own term first settles them (Ongaro, raft-dev 2015).
  if (!r.committedInTerm) throw new ConfChangeInProgressError(`leader of term ${r.term} has not committed an entry of its term yet`);
  const conf = applyConfChange(r.conf, cc);
  const index = r.log.lastIndex() + 1;
  r.log.append([{ index, term: r.term, type: EntryType.Config, data: encodeConfState(conf) }]);
  setConf(r, conf, index);
  return { index, term: r.term, conf };
}

/**
 * Whether this node may campaign: it is a voter in its latest configuration, or that
 * configuration removed it but is not committed yet and it was a voter before. Thesis §4.2.2:
 * "a server that is not part of its own latest configuration should still start new elections,
 * as it might still be needed until the Cnew entry is committed" (else a removed leader that
 * lost leadership while holding the only copy of Cnew deadlocks the cluster); it does not count
 * its own vote.
 */
export function promotable(r: Raft): boolean {
  if (r.isVoter()) return true;
  if (r.confIndex <= r.commit) return false;
  const i = r.log.lastConfIndex(r.confIndex - 1);
  return (i ? decodeConfState(r.log.entry(i).data) : r.snapshotConf).voters.includes(r.id);
}

/** Recomputes the configuration from the log: the last config entry, else the snapshot's (or initial) one. */
export function refreshConf(r: Raft): void {
  const i = r.log.lastConfIndex(r.log.lastIndex());
  if (i) setConf(r, decodeConfState(r.log.entry(i).data), i);
  else setConf(r, r.snapshotConf, r.snapshotConfIndex);
}

/** After appending `entries` (none truncated at or below `confIndex`): adopt the last config among them. */
export function adoptConfEntries(r: Raft, entries: Entry[]): void {
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].type === EntryType.Config) return setConf(r, decodeConfState(entries[i].data), entries[i].index);
  }
}

function setConf(r: Raft, conf: ConfState, index: number): void {
  r.conf = conf;
  r.confIndex = index;
  if (r.role !== 'leader') return;
  // Track every member. Removed ones stop counting at once (quorums are over `voters`) but
  // keep receiving the log until the change commits, so they usually learn they were removed
  // and stop campaigning (thesis §4.2.3); `pruneProgress` forgets them then.
  const prs = r.prs();
  for (const id of [...conf.voters, ...conf.learners]) {
    if (!prs.has(id)) prs.set(id, new Progress(r.log.lastIndex() + 1, r.cfg.inflightMsgsMax));
  }
  if (index <= r.commit) pruneProgress(r);
  if (r.leadTransferee !== null && !conf.voters.includes(r.leadTransferee)) abortLeadershipTransfer(r);
}

/**
 * Leader: drops the progress of nodes the (committed) configuration no longer has, with a last
 * heartbeat telling each one that holds the change that it is committed, so it stops
 * campaigning (`promotable`); best effort, pre-vote covers a lost one (thesis §4.2.3).
 */
export function pruneProgress(r: Raft): void {
  const prs = r.prs();
  for (const [id, pr] of [...prs]) {
    if (id !== r.id && !r.conf.voters.includes(id) && !r.conf.learners.includes(id)) {
      r.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(r.commit, pr.match), context: r.reads.round });
      prs.delete(id);
      r.reads.acks.delete(id);
    }
  }
}

/**
 * Thesis §4.2.2: once the configuration that removed this leader commits, hand over to the
 * most up-to-date voter at once (TimeoutNow, as in a transfer) instead of leaving the others
 * to wait out an election timeout, and step down.
 */
export function stepDownRemoved(r: Raft): void {
  let target: NodeId | null = null;
  let best = -1;
  for (const v of r.voters) {
    const m = r.prs().get(v)?.match ?? 0;
    if (m > best) [target, best] = [v, m];
  }
  if (target !== null && best === r.log.lastIndex()) r.send({ type: MessageType.TimeoutNow, to: target });
  r.becomeFollower(r.term, null);
}
