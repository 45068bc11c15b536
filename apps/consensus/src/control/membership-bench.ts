import 'reflect-metadata';
import { Module } from '@nestjs/common';
// Nest's default NATS envelope, for its size only (not re-exported by the package index).
import { NatsRecordSerializer } from '@nestjs/microservices/serializers/nats-record.serializer';
import { connectNats, Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import { COMPONENT, controlPlaneTransport, listenControlPlane } from '@cairn/nest-runtime';
import { decodeMemberRequest, encodeMemberReply, encodeMemberRequest } from '@cairn/protocol';
import { membershipController, type MemberAnswerer } from './membership.controller';

/**
 * Membership round trip, raw nats.js request/reply vs Nest's NATS transport (docs/benchmarks.md
 * "Control plane"): `node apps/consensus/dist/control/membership-bench.js nats://127.0.0.1:4333 [n]`
 * against a running nats-server. Both sides answer with the same codec work as a no-op change
 * (decode the MemberRequest, encode a MemberReply with a 5-replica configuration); Raft is not
 * involved. Prints one JSON line per path: n sequential round trips after n/4 warm-up ones.
 */
async function main(): Promise<void> {
  const url = process.argv[2] ?? 'nats://127.0.0.1:4222';
  const n = Number(process.argv[3] ?? 200);
  const log = createLogger('membership-bench', 'silent');
  const nc = await connectNats({ servers: [url], name: 'membership-bench' }, log);
  const subjects = new Subjects('bench');
  const conf = { voters: ['r1', 'r2', 'r3', 'r4', 'r5'], learners: [], storage: ['s1', 's2', 's3'] };
  const answerer: MemberAnswerer = {
    answerMember: (data) => {
      const req = decodeMemberRequest(data);
      return Promise.resolve(encodeMemberReply({ status: 'ok', message: `${req.kind} ${req.id} is already a voter`, leaderHint: 'r1', conf, confIndex: 42 }));
    },
  };
  const body = encodeMemberRequest({ op: 'add', kind: 'replica', id: 'r4' });

  // Raw: what the replica did before (bus.subscribe + respond).
  const rawSub = nc.subscribe(subjects.member('raw'), { callback: (_e, m) => void answerer.answerMember(m.data).then((r) => m.respond(r)) });
  // Nest: the production shell (ControlPlaneServer + membershipController) on the same connection.
  @Module({ controllers: [membershipController(subjects.member('nest'))], providers: [{ provide: COMPONENT, useValue: answerer }] })
  class BenchModule {}
  const app = await listenControlPlane(BenchModule, nc, log);
  const nest = controlPlaneTransport(nc);

  const paths: [string, () => Promise<unknown>][] = [
    ['raw nats.js request', () => nc.request(subjects.member('raw'), body, { timeout: 10_000 })],
    ['nest ClientProxy → @MessagePattern', () => nest.request(subjects.member('nest'), body, { timeoutMs: 10_000 })],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [name, once] of paths) {
      for (let i = 0; i < n / 4; i++) await once();
      const us: number[] = [];
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint();
        await once();
        us.push(Number(process.hrtime.bigint() - t) / 1000);
      }
      const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
      us.sort((a, b) => a - b);
      const q = (p: number) => Math.round(us[Math.min(us.length - 1, Math.floor(p * us.length))]);
      process.stdout.write(`${JSON.stringify({ round, path: name, n, p50Us: q(0.5), p99Us: q(0.99), meanUs: Math.round((totalMs * 1000) / n), perSecond: Math.round(n / (totalMs / 1000)) })}\n`);
    }
  }
  // Pipelined, as the hot paths are (64 in flight): nats.js multiplexes replies on one inbox
  // subscription; Nest's client subscribes and unsubscribes an inbox per request.
  for (const [name, once] of paths) {
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next++ < n * 5) await once();
    }));
    const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${JSON.stringify({ pipelined: 64, path: name, n: n * 5, perSecond: Math.round((n * 5) / (totalMs / 1000)) })}\n`);
  }
  const envelopeBytes = (data: unknown) => (new NatsRecordSerializer().serialize({ pattern: subjects.member('nest'), data, id: 'x'.repeat(21) }) as { data: Uint8Array }).data.length;
  const value = Buffer.alloc(4096, 0xab);
  process.stdout.write(
    `${JSON.stringify({ memberRequestBytes: body.length, nestDefaultEnvelopeBytes: envelopeBytes(JSON.parse(Buffer.from(body).toString('utf8'))), binary4KiBBytes: value.length, nestDefaultEnvelopeOf4KiBBytes: envelopeBytes(value) })}\n`,
  );
  rawSub.unsubscribe();
  await app.close();
  await nc.drain();
}

void main().catch((e: unknown) => {
  process.stderr.write(`membership-bench: ${(e as Error).stack}\n`);
  process.exit(1);
});
