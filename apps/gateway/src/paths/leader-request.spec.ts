import { Status, decodeProposeReply } from '@cairn/protocol';
import { Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { proposeReply as reply, useNatsTestBus } from './nats-bus.spec-helpers';
import { ClusterView, STATUS_STALE_MS } from '../cluster/cluster-view';
import { LEADER_REQUEST_MS_PER_MIB, requestLeader } from './leader-request';
import type { Transport } from '@cairn/world';


describe('requestLeader (real nats-server)', () => {
  const bus = useNatsTestBus('lr');
  const subjects = new Subjects('lr');

  /** A fake replica answering proposals with `answers` in turn; counts what it received. */
  function replica(id: string, answers: (Uint8Array | null)[]) {
    let received = 0;
    const sub = bus.nc.subscribe(subjects.propose(id), {
      callback: (_e, m) => {
        const a = answers[Math.min(received++, answers.length - 1)];
        if (a) m.respond(a); // null: never answer (a leader that died after receiving)
      },
    });
    return { received: () => received, stop: () => sub.unsubscribe() };
  }

  function deps(leader: string | null) {
    const view = new ClusterView();
    if (leader) view.hintLeader(leader);
    return { nc: bus.nc, subjects, view, log: createLogger('test', 'silent') };
  }
  const propose = (d: ReturnType<typeof deps>, idempotent: boolean, deadlineMs = Date.now() + 3000) =>
    requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(1), decodeProposeReply, deadlineMs, { idempotent });

  it('one attempt gets 2 s plus LEADER_REQUEST_MS_PER_MIB per MiB of its payload (a multi-MiB proposal is slow to cross the bus, not a dead leader)', async () => {
    const asked: number[] = [];
    const bus: Transport = {
      maxPayloadBytes: () => 8 * 1024 * 1024,
      publish: () => undefined,
      subscribe: () => ({ unsubscribe: () => undefined }),
      request: (_s, _d, o) => (asked.push(o.timeoutMs), Promise.resolve({ subject: 'x', data: reply({ status: Status.Ok }), respond: () => false })),
    };
    const d = { ...deps('a0'), nc: bus };
    for (const bytes of [1, 7 * 1024 * 1024]) await requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(bytes), decodeProposeReply, Date.now() + 60_000, { idempotent: true });
    expect(asked).toEqual([2000, 2000 + 7 * LEADER_REQUEST_MS_PER_MIB]);
  });

  it('follows a NOT_LEADER hint to the leader', async () => {
    const a = replica('a1', [reply({ status: Status.NotLeader, leaderHint: 'b1', retrySafe: true })]);
    const b = replica('b1', [reply({ status: Status.Ok, firstIndex: 5, lastIndex: 5 })]);
    const d = deps('a1');
    expect(await propose(d, false)).toMatchObject({ status: Status.Ok, firstIndex: 5 });
    expect([a.received(), b.received()]).toEqual([1, 1]);
    expect(d.view.leaderId()).toBe('b1');
    a.stop();
    b.stop();
  });

  it('re-sends a proposal only when the leader says it was not applied', async () => {
    const safe = replica('a2', [reply({ status: Status.Unavailable, retrySafe: true, message: 'overwritten' }), reply({ status: Status.Ok, firstIndex: 9 })]);
    expect(await propose(deps('a2'), false)).toMatchObject({ status: Status.Ok, firstIndex: 9 });
    expect(safe.received()).toBe(2);
    safe.stop();
    const unknown = replica('a3', [reply({ status: Status.Unavailable, retrySafe: false, message: 'leadership lost; outcome unknown' })]);
    expect(await propose(deps('a3'), false)).toEqual({ unknown: 'leadership lost; outcome unknown' });
    expect(unknown.received()).toBe(1);
    unknown.stop();
  });

  it('a proposal nobody received is retried; one received but unanswered is an unknown outcome', async () => {
    const nobody = await propose(deps('ghost'), false, Date.now() + 300);
    expect(nobody).toEqual({ timedOut: expect.stringMatching(/ghost did not answer|no leader known/) });
    const silent = replica('a4', [null]);
    expect(await propose(deps('a4'), false, Date.now() + 300)).toEqual({ unknown: expect.stringMatching(/did not answer/) });
    expect(silent.received()).toBe(1);
    // An idempotent request (ReadIndex) is retried after any failure until the deadline.
    expect(await propose(deps('a4'), true, Date.now() + 300)).toEqual({ timedOut: expect.any(String) });
    silent.stop();
  });

  describe('failover: an idempotent attempt is abandoned when the view learns its leader is gone', () => {
    const heartbeat = (id: string, role: 'leader' | 'follower', term: number) => ({
      kind: 'consensus' as const, id, role, term, leaderId: role === 'leader' ? id : null, commitIndex: 0, lastIndex: 0, appliedIndex: 0, logBytes: 0, atMs: 0,
    });
    /** A leader that receives and never answers, calling `onReceive` when the request is in flight. */
    function silentLeader(id: string, onReceive: () => void) {
      let received = 0;
      const sub = bus.nc.subscribe(subjects.propose(id), {
        callback: () => {
          received++;
          onReceive();
        },
      });
      return { received: () => received, stop: () => sub.unsubscribe() };
    }
    // Per-attempt timeout far beyond the deadline: without the abandon, each case below ends
    // timedOut/unknown at its deadline instead of answering OK from the new leader.
    const slow = { requestTimeoutMs: 600_000 };
    const deadline = () => Date.now() + 20_000;

    it('a new leader elected while a request waits on the old one: re-sent there at once, reported ambiguous', async () => {
      const view = new ClusterView();
      view.onConsensusStatus(heartbeat('f1', 'leader', 1));
      const old = silentLeader('f1', () => view.onConsensusStatus(heartbeat('g1', 'leader', 2)));
      const next = replica('g1', [reply({ status: Status.Ok, firstIndex: 3, lastIndex: 3 })]);
      const ambiguous: string[] = [];
      const d = { nc: bus.nc, subjects, view, log: createLogger('test', 'silent') };
      const r = await requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(1), decodeProposeReply, deadline(), { idempotent: true, ...slow, onAmbiguous: (w) => ambiguous.push(w) });
      expect(r).toMatchObject({ status: Status.Ok, firstIndex: 3 });
      expect([old.received(), next.received()]).toEqual([1, 1]);
      expect(ambiguous).toEqual([expect.stringMatching(/f1 was replaced.*g1 leads now/)]);
      old.stop();
      next.stop();
    });

    it('a leader whose heartbeats stop (SIGKILL, partition) is abandoned once a heartbeat of another replica shows it stale', async () => {
      let now = 1_000_000;
      const view = new ClusterView(() => now);
      view.onConsensusStatus(heartbeat('f2', 'leader', 1));
      const ambiguous: string[] = [];
      const old = silentLeader('f2', () => {
        now += STATUS_STALE_MS + 1;
        view.onConsensusStatus(heartbeat('g2', 'follower', 1)); // f2 is stale: abandoned, no leader known
        setImmediate(() => view.onConsensusStatus(heartbeat('g2', 'leader', 2))); // then g2 wins the election
      });
      const next = replica('g2', [reply({ status: Status.Ok, firstIndex: 4, lastIndex: 4 })]);
      const d = { nc: bus.nc, subjects, view, log: createLogger('test', 'silent') };
      const r = await requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(1), decodeProposeReply, deadline(), { idempotent: true, ...slow, onAmbiguous: (w) => ambiguous.push(w) });
      expect(r).toMatchObject({ status: Status.Ok, firstIndex: 4 });
      expect(ambiguous).toEqual([expect.stringMatching(/f2 sent no heartbeat/)]);
      old.stop();
      next.stop();
    });

    it('a non-idempotent attempt is never abandoned: a leader change does not make it re-sent', async () => {
      const view = new ClusterView();
      view.onConsensusStatus(heartbeat('f3', 'leader', 1));
      const old = silentLeader('f3', () => view.onConsensusStatus(heartbeat('g3', 'leader', 2)));
      const next = replica('g3', [reply({ status: Status.Ok, firstIndex: 5, lastIndex: 5 })]);
      const d = { nc: bus.nc, subjects, view, log: createLogger('test', 'silent') };
      const r = await requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(1), decodeProposeReply, Date.now() + 60_000, { idempotent: false, requestTimeoutMs: 300 });
      expect(r).toEqual({ unknown: expect.stringMatching(/f3 did not answer/) });
      expect([old.received(), next.received()]).toEqual([1, 0]);
      old.stop();
      next.stop();
    });
  });
});
