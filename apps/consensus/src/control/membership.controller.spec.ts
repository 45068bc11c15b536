import 'reflect-metadata';
import { Module, type INestMicroservice } from '@nestjs/common';
import { startNatsTestBus, type NatsTestBus } from '@cairn/messaging/testing';
import { Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { COMPONENT, controlPlaneTransport, listenControlPlane } from '@cairn/nest-runtime';
import { decodeMemberReply, decodeMemberRequest, encodeMemberReply, encodeMemberRequest } from '@cairn/protocol';
import { membershipController, type MemberAnswerer } from './membership.controller';

describe('membershipController on Nest NATS transport', () => {
  const subjects = new Subjects('ctl');
  let bus: NatsTestBus;
  let app: INestMicroservice;
  const seen: Uint8Array[] = [];
  // The library side: decodes with the protocol codec and answers what it was asked (Replica.answerMember's contract).
  const answerer: MemberAnswerer = {
    answerMember: (data) => {
      seen.push(data);
      let message: string;
      try {
        const req = decodeMemberRequest(data);
        message = `${req.op} ${req.kind} ${req.id}`;
      } catch (e) {
        return Promise.resolve(encodeMemberReply({ status: 'bad_request', message: (e as Error).message, leaderHint: '', conf: null, confIndex: 0 }));
      }
      return Promise.resolve(encodeMemberReply({ status: 'ok', message, leaderHint: 'r1', conf: null, confIndex: 7 }));
    },
  };

  beforeAll(async () => {
    bus = await startNatsTestBus('membership-controller');
    @Module({ controllers: [membershipController(subjects.member('r1'))], providers: [{ provide: COMPONENT, useValue: answerer }] })
    class TestModule {}
    app = await listenControlPlane(TestModule, bus.nc, createLogger('membership-controller-spec', 'silent'));
  });

  afterAll(async () => {
    await app?.close();
    await bus?.close();
  });

  it('hands the MemberRequest bytes to the component unchanged and returns its MemberReply', async () => {
    const body = encodeMemberRequest({ op: 'add', kind: 'replica', id: 'r4' });
    const reply = await controlPlaneTransport(bus.nc).request(subjects.member('r1'), body, { timeoutMs: 10_000 });
    expect(Buffer.from(seen.at(-1)!).equals(Buffer.from(body))).toBe(true);
    expect(decodeMemberReply(reply.data)).toMatchObject({ status: 'ok', message: 'add replica r4', leaderHint: 'r1', confIndex: 7 });
  });

  it('answers a raw nats.js requester too (the wire is the JSON codec), including a bad request', async () => {
    const reply = await bus.nc.request(subjects.member('r1'), new TextEncoder().encode('not json'), { timeout: 10_000 });
    expect(decodeMemberReply(reply.data).status).toBe('bad_request');
  });

  it('serves only its own replica subject', async () => {
    const err = await controlPlaneTransport(bus.nc).request(subjects.member('r2'), encodeMemberRequest({ op: 'remove', kind: 'replica', id: 'r2' }), { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('NO_RESPONDERS');
  });
});
