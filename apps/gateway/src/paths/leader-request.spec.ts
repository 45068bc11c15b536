import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status, decodeProposeReply, encodeProposeReply, type ProposeReply } from '@cairn/protocol';
import { connectNats, createLogger, startNatsServer, Subjects, type NatsServerHandle } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import { ClusterView } from '../cluster/cluster-view';
import { requestLeader } from './leader-request';

const reply = (r: Partial<ProposeReply>): Uint8Array =>
  encodeProposeReply({ status: Status.Ok, firstIndex: 0, lastIndex: 0, leaderHint: '', message: '', ...r });

describe('requestLeader (real nats-server)', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  const subjects = new Subjects('lr');
  beforeAll(async () => {
    server = await startNatsServer({ dir: mkdtempSync(join(tmpdir(), 'cairn-lr-')) });
    nc = await connectNats({ servers: [server.url], name: 'test' });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** A fake replica answering proposals with `answers` in turn; counts what it received. */
  function replica(id: string, answers: (Uint8Array | null)[]) {
    let received = 0;
    const sub = nc.subscribe(subjects.propose(id), {
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
    return { nc, subjects, view, log: createLogger('test', 'silent') };
  }
  const propose = (d: ReturnType<typeof deps>, idempotent: boolean, deadlineMs = Date.now() + 3000) =>
    requestLeader(d, (l) => subjects.propose(l), Buffer.alloc(1), decodeProposeReply, deadlineMs, { idempotent });

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
});
