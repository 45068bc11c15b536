import type { NatsConnection } from 'nats';
import { Writable } from 'node:stream';
import {
  PAYLOAD_HEADROOM_BYTES,
  PayloadTooLargeError,
  connectNats,
  payloadBytesMax,
  publishSafe,
  respondSafe,
  serveRequests,
  serverMaxPayloadBytes,
} from './index';
import { startNatsTestBus, type NatsTestBus } from './testing';
import { createLogger, type Logger } from '@cairn/logging';

/** A process logger whose lines are collected (JSON-parsed) for assertions. */
function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger('bus-test', 'debug', sink), lines };
}

const MAX_PAYLOAD = 64 * 1024;

describe('the internal bus against a nats-server with a small max_payload', () => {
  let bus: NatsTestBus;
  let nc: NatsConnection;
  beforeAll(async () => {
    bus = await startNatsTestBus('nats', MAX_PAYLOAD);
    nc = bus.nc;
  });
  afterAll(() => bus?.close());

  it('learns max_payload from the server at connect', () => {
    expect(serverMaxPayloadBytes(nc)).toBe(MAX_PAYLOAD);
    expect(payloadBytesMax(nc)).toBe(MAX_PAYLOAD - PAYLOAD_HEADROOM_BYTES);
  });

  it('publishSafe sends what fits and reports, never throws, what does not', async () => {
    const { log, lines } = captureLog();
    const sub = nc.subscribe('bus.pub', { max: 1 });
    const got = (async () => {
      for await (const m of sub) return m.data.length;
      return -1;
    })();
    // One over the limit (the client library would throw MAX_PAYLOAD_EXCEEDED), many times: one log line.
    for (let i = 0; i < 100; i++) expect(publishSafe(nc, 'bus.pub', new Uint8Array(MAX_PAYLOAD + 1), log)).toBe(false);
    expect(publishSafe(nc, 'bus.pub', new Uint8Array(MAX_PAYLOAD), log)).toBe(true);
    expect(await got).toBe(MAX_PAYLOAD);
    expect(lines.filter((l) => l.msg === 'dropped a message over the NATS max_payload (a bug in its batcher)')).toHaveLength(1);
  });

  it('publishSafe on a closed connection reports false; respondSafe never throws', async () => {
    const other = await connectNats({ servers: [bus.server.url], name: 'bus-test-closed' });
    const reqs: import('nats').Msg[] = [];
    other.subscribe('bus.closed', { max: 2, callback: (_e, m) => reqs.push(m) });
    await other.flush();
    const pending = [0, 1].map(() => nc.request('bus.closed', new Uint8Array(1), { timeout: 300 }).catch((e: Error & { code?: string }) => e.code));
    while (reqs.length < 2) await new Promise((r) => setImmediate(r));
    const { log, lines } = captureLog();
    // Over max_payload without the connection at hand: the client library's own check throws; reported as false.
    expect(respondSafe(reqs[0], new Uint8Array(MAX_PAYLOAD + 1), log)).toBe(false);
    await other.close();
    expect(publishSafe(other, 'bus.x', new Uint8Array(1), log)).toBe(false);
    expect(() => respondSafe(reqs[1], new Uint8Array(1), log)).not.toThrow();
    expect(lines.map((l) => l.code)).toEqual(['MAX_PAYLOAD_EXCEEDED', 'CONNECTION_CLOSED']);
    expect(await Promise.all(pending)).toEqual(['TIMEOUT', 'TIMEOUT']);
  });

  it('serveRequests answers a too-large reply with the error reply, sync and async, and survives', async () => {
    const { log } = captureLog();
    const errors: unknown[] = [];
    const onError = (e: unknown): Uint8Array => {
      errors.push(e);
      return Buffer.from(e instanceof PayloadTooLargeError ? `too large: ${e.bytes} > ${e.bytesMax}` : 'error');
    };
    serveRequests(nc, 'bus.big', () => new Uint8Array(MAX_PAYLOAD + 10), { log, onError });
    serveRequests(nc, 'bus.bigAsync', async () => new Uint8Array(MAX_PAYLOAD + 20), { log, onError });
    expect(Buffer.from((await nc.request('bus.big', new Uint8Array(0))).data).toString()).toBe(`too large: ${MAX_PAYLOAD + 10} > ${MAX_PAYLOAD}`);
    expect(Buffer.from((await nc.request('bus.bigAsync', new Uint8Array(0))).data).toString()).toBe(`too large: ${MAX_PAYLOAD + 20} > ${MAX_PAYLOAD}`);
    expect(errors.map((e) => (e as PayloadTooLargeError).code)).toEqual(['PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_LARGE']);
    // Still serving after that (nothing escaped the callback or the promise).
    serveRequests(nc, 'bus.ok', () => Uint8Array.of(7), { log });
    expect([...(await nc.request('bus.ok', new Uint8Array(0))).data]).toEqual([7]);
  });

  it('serveRequests drops (and logs) a too-large reply when the error reply does not fit either, or without onError', async () => {
    const { log, lines } = captureLog();
    serveRequests(nc, 'bus.bigErr', async () => new Uint8Array(MAX_PAYLOAD + 1), { log, onError: () => new Uint8Array(MAX_PAYLOAD + 1) });
    serveRequests(nc, 'bus.bigNoErr', () => new Uint8Array(MAX_PAYLOAD + 1), { log });
    serveRequests(nc, 'bus.throwingOnError', () => {
      throw new Error('handler');
    }, { log, onError: () => {
      throw new Error('onError');
    } });
    for (const s of ['bus.bigErr', 'bus.bigNoErr', 'bus.throwingOnError']) {
      await expect(nc.request(s, new Uint8Array(0), { timeout: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    }
    expect(lines.some((l) => l.msg === 'dropped a reply over the NATS max_payload')).toBe(true);
    expect(lines.some((l) => l.msg === 'request error handler failed')).toBe(true);
    expect(nc.isClosed()).toBe(false);
  });
});
