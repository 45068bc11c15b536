import type { ConfState, ProgressStatus } from '@cairn/raft';
import { catchUpVerdict, planMembership } from './membership-plan';

const conf: ConfState = { voters: ['c1', 'c2', 'c3'], learners: ['c4'], storage: ['s1'] };

describe('planMembership', () => {
  it('adds a new replica as learner, waits for it to catch up, then promotes it (thesis §4.2.1)', () => {
    expect(planMembership(conf, { op: 'add', kind: 'replica', id: 'c5' })).toEqual({
      steps: [
        { kind: 'confChange', cc: { type: 'addLearner', node: 'c5' } },
        { kind: 'awaitCaughtUp', node: 'c5' },
        { kind: 'confChange', cc: { type: 'addVoter', node: 'c5' } },
      ],
      message: 'replica c5 added as voter',
    });
  });

  it('resumes an add whose replica is already a learner at the catch-up wait', () => {
    expect(planMembership(conf, { op: 'add', kind: 'replica', id: 'c4' }).steps).toEqual([
      { kind: 'awaitCaughtUp', node: 'c4' },
      { kind: 'confChange', cc: { type: 'addVoter', node: 'c4' } },
    ]);
  });

  it('removes a voter or a learner in one change', () => {
    for (const id of ['c2', 'c4']) {
      expect(planMembership(conf, { op: 'remove', kind: 'replica', id })).toEqual({ steps: [{ kind: 'confChange', cc: { type: 'removeNode', node: id } }], message: `replica ${id} removed` });
    }
  });

  it('adds and removes storage nodes in one change', () => {
    expect(planMembership(conf, { op: 'add', kind: 'storage', id: 's2' })).toEqual({ steps: [{ kind: 'confChange', cc: { type: 'addStorage', node: 's2' } }], message: 'storage node s2 added' });
    expect(planMembership(conf, { op: 'remove', kind: 'storage', id: 's1' })).toEqual({ steps: [{ kind: 'confChange', cc: { type: 'removeStorage', node: 's1' } }], message: 'storage node s1 removed' });
  });

  it('is idempotent: what is already true is an empty plan', () => {
    expect(planMembership(conf, { op: 'add', kind: 'replica', id: 'c1' })).toEqual({ steps: [], message: 'replica c1 already a voter' });
    expect(planMembership(conf, { op: 'remove', kind: 'replica', id: 'c9' })).toEqual({ steps: [], message: 'replica c9 already absent' });
    expect(planMembership(conf, { op: 'add', kind: 'storage', id: 's1' })).toEqual({ steps: [], message: 'storage node s1 already a member' });
    expect(planMembership(conf, { op: 'remove', kind: 'storage', id: 's9' })).toEqual({ steps: [], message: 'storage node s9 already absent' });
  });
});

describe('catchUpVerdict', () => {
  const progress = (match: number): Record<string, ProgressStatus> => ({ c5: { match } as ProgressStatus });
  const leader = (match: number) => ({ role: 'leader' as const, leaderId: 'c1', progress: progress(match) });

  it('waits until the learner\'s match index reaches the target, then says caught up', () => {
    expect(catchUpVerdict(leader(41), 'c5', 42, false)).toEqual({ kind: 'waiting', match: 41 });
    expect(catchUpVerdict(leader(42), 'c5', 42, false)).toEqual({ kind: 'caughtUp' });
    expect(catchUpVerdict(leader(50), 'c5', 42, true)).toEqual({ kind: 'caughtUp' });
  });

  it('times out at the deadline when not caught up', () => {
    expect(catchUpVerdict(leader(41), 'c5', 42, true)).toEqual({ kind: 'timedOut', match: 41 });
    expect(catchUpVerdict({ ...leader(0), progress: {} }, 'c5', 42, true)).toEqual({ kind: 'timedOut', match: 0 });
  });

  it('ends the wait when this replica is no longer the leader or is stopping, naming the new leader', () => {
    expect(catchUpVerdict({ role: 'follower', leaderId: 'c2', progress: null }, 'c5', 42, false)).toEqual({ kind: 'notLeader', leaderHint: 'c2' });
    expect(catchUpVerdict({ role: 'candidate', leaderId: null, progress: null }, 'c5', 42, false)).toEqual({ kind: 'notLeader', leaderHint: '' });
    expect(catchUpVerdict(leader(42), 'c5', 42, false, true)).toEqual({ kind: 'notLeader', leaderHint: 'c1' });
  });
});
