import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Opcode, ResponseDecoder, Status, encodeRequest, type Response } from '@cairn/protocol';
import { createLogger } from '@cairn/logging';
import { makeTestPki, opensslAvailable, tlsConnected, type TestPki } from '@cairn/messaging/testing';
import { TcpServer } from './tcp-server';
import { ByteBudget } from './flow';
import { testFlowLimits, until } from './testing';
import { CertificateReloader, PlainTcpNotChosenError, createDoorServer, doorTlsOf, type DoorTls } from './tls';
import type { KvPaths } from '../paths/kv-session';
import type { ListenerTlsConfig } from '@cairn/config';
import { request as httpsRequest, Agent } from 'node:https';
import { SimScheduler } from '@cairn/world';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { HttpApi, httpLimits } from '../http/http-api';

const log = createLogger('test', 'silent');
const haveOpenssl = opensslAvailable();
if (!haveOpenssl) process.stderr.write('gateway TLS tests skipped: openssl is not on PATH (they make their test CA with it)\n');
const describeTls = haveOpenssl ? describe : describe.skip;

function doorTls(pki: TestPki, o: Partial<DoorTls> = {}): DoorTls {
  return { certFile: join(pki.dir, 'server.crt'), keyFile: join(pki.dir, 'server.key'), clientCertRequired: false, minVersion: 'TLSv1.2', reloadIntervalMs: 1000, ...o };
}

async function startTlsServer(tls: DoorTls, connectionsMax = 10) {
  const server = new TcpServer(
    {
      limits: { keyBytesMax: 16, valueBytesMax: 64 },
      inflightMax: 16,
      flow: testFlowLimits(),
      budget: new ByteBudget(64 * 1024 * 1024),
      connectionsMax,
      drainTimeoutMs: 1000,
      reads: { get: () => Promise.reject(new Error('no reads in this test')) },
      writes: { submit: () => Promise.reject(new Error('no writes in this test')) },
      status: () => ({}),
      tls,
    },
    log,
  );
  await server.listen('127.0.0.1', 0);
  return server;
}

/** A TLS client of the TLV door: resolves once the handshake is done, or rejects with its error. */
async function tlsClient(port: number, o: ConnectionOptions) {
  const socket = await tlsConnected(port, o);
  const decoder = new ResponseDecoder();
  const responses: Response[] = [];
  socket.on('data', (chunk: Buffer) => responses.push(...decoder.push(chunk)));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  return { socket, responses, closed, ping: (id: number) => socket.write(encodeRequest({ opcode: Opcode.Ping, requestId: id, flags: 0, key: Buffer.alloc(0), value: Buffer.from('hi') })) };
}

/** What a failed handshake looks like to the client: its error (or null when the server just closed). */
function handshakeFailure(port: number, o: ConnectionOptions): Promise<Error | null> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...o });
  return new Promise((resolve, reject) => {
    let error: Error | null = null;
    socket.once('secureConnect', () => {
      // TLS 1.3: the server checks the client certificate after the client's Finished; the alert comes next.
      socket.once('error', (e) => (error = e));
      socket.write('x');
    });
    socket.on('error', (e) => (error = e));
    socket.once('close', () => (socket.authorized && !error ? reject(new Error('the handshake succeeded')) : resolve(error)));
  });
}

describe('doorTlsOf', () => {
  const tlsSetting = { mode: 'tls', certFile: 'c.pem', keyFile: 'k.pem', clientCertRequired: false, minVersion: 'TLSv1.3', reloadIntervalMs: 500 } as ListenerTlsConfig;
  const plain = { mode: 'plain', clientCertRequired: false, minVersion: 'TLSv1.2', reloadIntervalMs: 1000 } as ListenerTlsConfig;

  it('a door without a setting is plain on loopback only; elsewhere plain TCP must be chosen', () => {
    expect(doorTlsOf('TLV', '127.0.0.1', undefined, undefined)).toBeNull();
    expect(doorTlsOf('RESP', '::1', undefined, undefined)).toBeNull();
    expect(() => doorTlsOf('HTTP', '0.0.0.0', undefined, undefined)).toThrow(PlainTcpNotChosenError);
    expect(doorTlsOf('HTTP', '0.0.0.0', plain, undefined)).toBeNull();
  });

  it("a door's own setting replaces the member's", () => {
    expect(doorTlsOf('RESP', '0.0.0.0', undefined, tlsSetting)).toMatchObject({ certFile: 'c.pem', minVersion: 'TLSv1.3', reloadIntervalMs: 500 });
    expect(doorTlsOf('RESP', '0.0.0.0', plain, tlsSetting)).toBeNull();
  });
});

describeTls('gateway doors over TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki(mkdtempSync(join(tmpdir(), 'cairn-tls-')));
    pki.issue('server', 'server');
    pki.issue('client', 'client');
  });

  it('the TLV door answers over TLS; a plain-TCP client gets no answer and is closed', async () => {
    const server = await startTlsServer(doorTls(pki));
    const c = await tlsClient(server.port(), { ca: pki.ca });
    c.ping(1);
    await until(() => c.responses.length === 1);
    expect(c.responses[0]).toMatchObject({ requestId: 1, status: Status.Ok });
    c.socket.end();
    const plain = netConnect(server.port(), '127.0.0.1');
    plain.on('error', () => undefined);
    await once(plain, 'connect');
    plain.write(encodeRequest({ opcode: Opcode.Ping, requestId: 2, flags: 0, key: Buffer.alloc(0), value: Buffer.alloc(0) }));
    const received: Buffer[] = [];
    plain.on('data', (b: Buffer) => received.push(b));
    await once(plain, 'close');
    // Whatever came back is a TLS alert record (content type 21), never a protocol v1 response.
    const bytes = Buffer.concat(received);
    expect(bytes.length === 0 || bytes[0] === 21).toBe(true);
    await server.close();
  });

  it('a client that does not trust the CA refuses the door', async () => {
    const server = await startTlsServer(doorTls(pki));
    const error = await handshakeFailure(server.port(), {});
    expect(error?.message).toMatch(/self[- ]signed|unable to verify|unable to get local issuer/i);
    await server.close();
  });

  it('mTLS: no client certificate, no connection; the CA-signed one is served', async () => {
    const server = await startTlsServer(doorTls(pki, { caFile: pki.caFile, clientCertRequired: true }));
    const refused = await handshakeFailure(server.port(), { ca: pki.ca });
    expect(refused?.message ?? 'closed').toMatch(/certificate required|handshake failure|closed|ECONNRESET|socket hang up/i);
    const c = await tlsClient(server.port(), { ca: pki.ca, cert: readFileSync(join(pki.dir, 'client.crt')), key: readFileSync(join(pki.dir, 'client.key')) });
    c.ping(1);
    await until(() => c.responses.length === 1);
    expect(c.responses[0].status).toBe(Status.Ok);
    c.socket.end();
    await server.close();
  });

  it('minVersion TLSv1.3 refuses a TLS 1.2 client', async () => {
    const server = await startTlsServer(doorTls(pki, { minVersion: 'TLSv1.3' }));
    const error = await handshakeFailure(server.port(), { ca: pki.ca, maxVersion: 'TLSv1.2' });
    expect(error?.message).toMatch(/protocol version|alert/i);
    await server.close();
  });

  it('connectionsMax holds over TLS: one more is answered UNAVAILABLE inside TLS and closed', async () => {
    const server = await startTlsServer(doorTls(pki), 1);
    const first = await tlsClient(server.port(), { ca: pki.ca });
    await until(() => server.connectionCount() === 1);
    const second = await tlsClient(server.port(), { ca: pki.ca });
    await second.closed;
    expect(second.responses).toEqual([expect.objectContaining({ requestId: 0, status: Status.Unavailable })]);
    first.socket.end();
    await server.close();
  });

  it('a certificate replaced on disk is served to new connections; files that do not load leave the old one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-tls-'));
    const own = makeTestPki(dir);
    own.issue('server', 'server');
    const tls = doorTls(own);
    const reloads: (Error | undefined)[] = [];
    const { server, reloader } = createDoorServer({ door: 'TLV', tls, connectionsMax: 10, handshakeTimeoutMs: 10_000, log }, (s) => s.end());
    const checker = new CertificateReloader(server as never, tls, log, (e) => reloads.push(e));
    expect(reloader).not.toBeNull();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const serial = async () => {
      const c = await tlsClient(port, { ca: own.ca });
      const s = (c.socket as TLSSocket).getPeerCertificate().serialNumber;
      c.socket.destroy();
      return s;
    };
    const before = await serial();
    own.issue('server', 'server');
    checker.check();
    expect(reloads).toEqual([undefined]);
    const after = await serial();
    expect(after).not.toBe(before);
    // A key that does not match the certificate (half a rotation): refused, the last good one stays.
    own.issue('other', 'server');
    copyFileSync(join(dir, 'other.key'), tls.keyFile);
    checker.check();
    expect(reloads[1]?.message).toMatch(/key values mismatch|private key/i);
    expect(await serial()).toBe(after);
    await new Promise((resolve) => server.close(resolve));
  });

  it('polls the files every reloadIntervalMs on the clock it is given (virtual here), until stopped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-tls-'));
    const own = makeTestPki(dir);
    own.issue('server', 'server');
    const tls = doorTls(own, { reloadIntervalMs: 5000 });
    const contexts: unknown[] = [];
    const reloads: (Error | undefined)[] = [];
    const sched = new SimScheduler(1);
    const reloader = new CertificateReloader({ setSecureContext: (o: unknown) => contexts.push(o) } as never, tls, log, (e) => reloads.push(e), sched.incarnation('g1').clock);
    reloader.start();
    expect(sched.nextAtMs()).toBe(sched.nowMs + 5000);
    sched.step(); // unchanged files: nothing loaded
    expect(reloads).toEqual([]);
    own.issue('server', 'server');
    sched.step();
    expect(reloads).toEqual([undefined]);
    expect(contexts).toHaveLength(1);
    reloader.stop();
    expect(sched.nextAtMs()).toBe(Infinity);
  });

  it('the HTTP door serves HTTPS with its limits: one connection over connectionsMax gets 503', async () => {
    const view = new ClusterView();
    const reads = { get: async () => ({ status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' }) } satisfies KvPaths['reads'];
    const readIndex = { readIndex: async () => ({ ok: true, index: 1 }) } satisfies KvPaths['readIndex'];
    const limits = httpLimits({ connectionsMax: 1, httpHeaderBytesMax: 16 * 1024, frameDeadlineMs: 60_000, idleTimeoutMs: 60_000, closeTimeoutMs: 60_000, httpInflightPerConnectionMax: 8, connectionReplyBytesMax: 1024 * 1024 });
    const api = new HttpApi({ gatewayId: 'g1', paths: { reads, readIndex, writes: { submit: () => Promise.reject(new Error('no writes in this test')) }, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics: new GatewayMetrics(view), limits }, doorTls(pki));
    await api.listen('127.0.0.1', 0);
    const get = (agent: Agent) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: api.port(), path: '/v1/kv/missing', servername: 'localhost', ca: pki.ca, agent }, (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
        });
        req.once('error', reject);
        req.end();
      });
    const first = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca });
    const second = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca });
    expect(await get(first)).toBe(404);
    expect(await get(second)).toBe(503);
    first.destroy();
    second.destroy();
    await api.close();
  });
});
