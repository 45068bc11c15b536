import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Opcode, ResponseDecoder, Status, encodeRequest, type Response } from '@cairn/protocol';
import { createLogger } from '@cairn/logging';
import { ClusterView } from '../cluster/cluster-view';
import type { KvPaths } from '../paths/kv-session';
import { ByteBudget } from '../server/flow';
import { testFlowLimits } from '../server/testing';
import { TcpServer } from '../server/tcp-server';
import { GatewayMetrics } from './gateway-metrics';

/** `name{labels} value` lines of a scrape, keyed by `name{labels}`. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(m[1] + (m[2] ?? '{}'), Number(m[3]));
  }
  return out;
}

/** Resolves with the first `n` responses `socket` receives. */
function responsesOf(socket: Socket, n: number): Promise<Response[]> {
  const decoder = new ResponseDecoder();
  const responses: Response[] = [];
  return new Promise((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      responses.push(...decoder.push(chunk));
      if (responses.length === n) resolve(responses);
    }),
  );
}

describe('GatewayMetrics', () => {
  it('counts TLV requests per op and status through the connection hook, and open TLV connections', async () => {
    const metrics = new GatewayMetrics(new ClusterView());
    const writes = { submit: async () => ({ status: Status.Unavailable, revision: 0, message: 'no leader' }) } satisfies KvPaths['writes'];
    const reads = { get: async () => ({ status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' }) } satisfies KvPaths['reads'];
    const server = new TcpServer(
      {
        limits: { keyBytesMax: 16, valueBytesMax: 64 },
        inflightMax: 16,
        flow: testFlowLimits(),
        budget: new ByteBudget(1024 * 1024),
        connectionsMax: 4,
        drainTimeoutMs: 1000,
        reads,
        writes,
        status: () => ({}),
        observer: metrics.observer('tlv'),
      },
      createLogger('test', 'silent'),
    );
    metrics.trackConnections('tlv', () => server.connectionCount());
    metrics.trackPendingBytes(() => 4242);
    await server.listen('127.0.0.1', 0);
    const socket = connect(server.port(), '127.0.0.1');
    await once(socket, 'connect');
    const got = responsesOf(socket, 5);
    const send = (opcode: Opcode, requestId: number, key = '', value = '') => socket.write(encodeRequest({ opcode, requestId, flags: 0, key: Buffer.from(key), value: Buffer.from(value) }));
    send(Opcode.Ping, 1);
    send(Opcode.Get, 2, 'k');
    send(Opcode.Get, 3, 'k');
    send(Opcode.Set, 4, 'k', 'v');
    send(Opcode.Set, 5, 'k', 'x'.repeat(65)); // rejected by the decoder: TOO_LARGE
    await got;

    const s = samples(await metrics.scrape());
    expect(s.get('cairn_gateway_requests_total{door="tlv",op="ping",status="OK"}')).toBe(1);
    expect(s.get('cairn_gateway_pending_bytes{}')).toBe(4242);
    expect(s.get('cairn_gateway_requests_total{door="tlv",op="get",status="NOT_FOUND"}')).toBe(2);
    expect(s.get('cairn_gateway_requests_total{door="tlv",op="set",status="UNAVAILABLE"}')).toBe(1);
    expect(s.get('cairn_gateway_requests_total{door="tlv",op="other",status="TOO_LARGE"}')).toBe(1);
    expect(s.get('cairn_gateway_request_duration_seconds_count{door="tlv",op="get"}')).toBe(2);
    expect(s.get('cairn_gateway_request_duration_seconds_bucket{door="tlv",op="get",le="+Inf"}')).toBe(2);
    expect(s.get('cairn_gateway_connections{door="tlv"}')).toBe(1);
    expect(s.get('cairn_leader_known{}')).toBe(0);
    expect([...s.keys()].some((k) => k.includes('door="http"'))).toBe(false); // only observed label sets
    socket.destroy();
    await server.close();
  });

  it('counts TLV bytes received and sent and backpressure pauses per door', async () => {
    const metrics = new GatewayMetrics(new ClusterView());
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const reads = { get: async () => (await held, { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' }) } satisfies KvPaths['reads'];
    const server = new TcpServer(
      {
        limits: { keyBytesMax: 16, valueBytesMax: 64 },
        inflightMax: 1, // a second pipelined request pauses reading
        flow: testFlowLimits(),
        budget: new ByteBudget(1024 * 1024),
        connectionsMax: 4,
        drainTimeoutMs: 1000,
        reads,
        writes: { submit: () => Promise.reject(new Error('no writes in this test')) },
        status: () => ({}),
      },
      createLogger('test', 'silent'),
    );
    metrics.trackTraffic('tlv', server.traffic);
    await server.listen('127.0.0.1', 0);
    const socket = connect(server.port(), '127.0.0.1');
    await once(socket, 'connect');
    const got = responsesOf(socket, 2);
    const frames = [1, 2].map((requestId) => encodeRequest({ opcode: Opcode.Get, requestId, flags: 0, key: Buffer.from('k'), value: Buffer.alloc(0) }));
    socket.write(Buffer.concat(frames));
    // The first GET is held, so the connection is at inflightMax and stops reading.
    while (server.traffic.pauses === 0) await new Promise((resolve) => setImmediate(resolve));
    release();
    await got;

    const s = samples(await metrics.scrape());
    expect(s.get('cairn_gateway_received_bytes_total{door="tlv"}')).toBe(frames[0].length + frames[1].length);
    const sent = s.get('cairn_gateway_sent_bytes_total{door="tlv"}') ?? 0;
    expect(sent).toBeGreaterThan(0);
    expect(s.get('cairn_gateway_backpressure_pauses_total{door="tlv"}')).toBeGreaterThanOrEqual(1);
    expect(s.has('cairn_gateway_sent_bytes_total{door="resp"}')).toBe(false);
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    await server.close();
    // Closed sockets' bytes stay counted.
    expect(samples(await metrics.scrape()).get('cairn_gateway_sent_bytes_total{door="tlv"}')).toBe(sent);
  });
});
