import type { ConfChange, ConfState, RaftStatus } from '@cairn/raft';
import type { MemberRequest } from '@cairn/protocol';

/** One step of a membership operation: a single-server change to commit, or the wait for a learner to catch up. */
export type MemberStep = { kind: 'confChange'; cc: ConfChange } | { kind: 'awaitCaughtUp'; node: string };

export interface MemberPlan {
  /** In order, each done (committed, caught up) before the next; empty when the request is already true. */
  steps: MemberStep[];
  /** The human-readable summary to answer with once every step is done. */
  message: string;
}

/**
 * The single-server changes (thesis §4.1) that take configuration `conf` to what `req` asks for.
 * Adding a replica: learner → caught up → voter (§4.2.1; a replica already a learner skips the
 * first step). Idempotent: asking for what is already true is an empty plan, so an operator can
 * re-run a command whose outcome was unknown. Pure.
 */
export function planMembership(conf: ConfState, req: MemberRequest): MemberPlan {
  const { id } = req;
  const change = (type: ConfChange['type']): MemberStep => ({ kind: 'confChange', cc: { type, node: id } });
  if (req.kind === 'storage') {
    const adding = req.op === 'add';
    if (conf.storage.includes(id) === adding) return { steps: [], message: `storage node ${id} already ${adding ? 'a member' : 'absent'}` };
    return { steps: [change(adding ? 'addStorage' : 'removeStorage')], message: `storage node ${id} ${adding ? 'added' : 'removed'}` };
  }
  if (req.op === 'remove') {
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) return { steps: [], message: `replica ${id} already absent` };
    return { steps: [change('removeNode')], message: `replica ${id} removed` };
  }
  if (conf.voters.includes(id)) return { steps: [], message: `replica ${id} already a voter` };
  const learner = conf.learners.includes(id) ? [] : [change('addLearner')];
  return { steps: [...learner, { kind: 'awaitCaughtUp', node: id }, change('addVoter')], message: `replica ${id} added as voter` };
}

export type CatchUpVerdict =
  | { kind: 'caughtUp' }
  | { kind: 'waiting'; match: number }
  | { kind: 'notLeader'; leaderHint: string }
  | { kind: 'timedOut'; match: number };

/**
 * Where the wait for learner `node` stands (thesis §4.2.1): caught up once its match index reaches
 * `targetIndex` (the leader's commit index when the wait began); `notLeader` once this replica
 * is no longer the leader (or is stopping); `timedOut` when `expired` and not caught up. Pure:
 * the caller evaluates it whenever the leader's state may have moved and when its deadline passes.
 */
export function catchUpVerdict(st: Pick<RaftStatus, 'role' | 'leaderId' | 'progress'>, node: string, targetIndex: number, expired: boolean, stopped = false): CatchUpVerdict {
  if (st.role !== 'leader' || stopped) return { kind: 'notLeader', leaderHint: st.leaderId ?? '' };
  const match = st.progress?.[node]?.match ?? 0;
  if (match >= targetIndex) return { kind: 'caughtUp' };
  return expired ? { kind: 'timedOut', match } : { kind: 'waiting', match };
}
