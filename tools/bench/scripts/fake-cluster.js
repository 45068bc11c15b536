#!/usr/bin/env node
/**
 * A stand-in cluster for measuring one gateway alone (issue 14; docs/benchmarks.md "The gateway's
 * CPU per request"): replica c1 leads and answers every ProposeRequest and ReadIndexRequest at
 * once, storage node s1 answers every ReadRequest with a 256-byte value at the latest index; both
 * publish status heartbeats every 100 ms (auth revision 0: auth off). No log, no disk: the
 * gateway is the only real process on the path. Used by gateway-alone.sh.
 * Run from the repo root (after `npx nx run-many -t build`): node tools/bench/scripts/fake-cluster.js NATS_PORT CLUSTER_NAME
 */
const P = require(`${process.cwd()}/libs/protocol/dist`);
const { Subjects } = require(`${process.cwd()}/libs/messaging/dist`);
const { connect } = require(`${process.cwd()}/node_modules/nats`);
const [port, cluster] = process.argv.slice(2);
(async () => {
  const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
  const s = new Subjects(cluster);
  let index = 1;
  const value = Buffer.alloc(256, 120);
  const hb = () => {
    const now = Date.now();
    nc.publish(s.consensusStatus(), P.encodeStatus({ kind: 'consensus', id: 'c1', role: 'leader', term: 2, leaderId: 'c1', commitIndex: index, lastIndex: index, appliedIndex: index, logBytes: 0, firstIndex: 1, conf: { voters: ['c1'], learners: [], storage: ['s1'] }, confIndex: 0, atMs: now }));
    nc.publish(s.storageStatus(), P.encodeStatus({ kind: 'storage', id: 's1', appliedIndex: index, knownCommitIndex: index, keys: 2000, dataBytes: 0, authRevision: 0, atMs: now }));
  };
  hb(); setInterval(hb, 100);
  nc.subscribe(s.propose('c1'), { callback: (_e, m) => {
    const n = P.decodeProposeRequest(m.data).commands.length;
    const first = index + 1; index += n;
    m.respond(P.encodeProposeReply({ status: P.Status.Ok, firstIndex: first, lastIndex: index, leaderHint: '', message: '' }));
  } });
  nc.subscribe(s.readIndex('c1'), { callback: (_e, m) => m.respond(P.encodeReadIndexReply({ status: P.Status.Ok, readIndex: index, leaderHint: '', message: '' })) });
  nc.subscribe(s.read('s1'), { callback: (_e, m) => {
    const q = P.decodeReadRequest(m.data);
    m.respond(P.encodeReadReply({ appliedIndex: index, withExpiry: q.withExpiry, results: q.reads.map(() => ({ status: P.Status.Ok, revision: 1, createRevision: 1, version: 1, value, message: '' })) }));
  } });
  process.on('SIGINT', async () => { await nc.drain(); process.exit(0); });
  process.on('SIGTERM', async () => { await nc.drain(); process.exit(0); });
})();
