import { CairnClient, CairnPool } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { makeTestPki, opensslAvailable, tlsConnected, type TestPki } from '@cairn/messaging/testing';
import { ReplyDecoder, encodeCommand, type RespValue } from '@cairn/resp';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type ConnectionOptions, type TLSSocket } from 'node:tls';
import { runCli, writeTestConfig } from './fixtures';
import { rotatedSerial, servedSerial } from './tls-doors';

const haveOpenssl = opensslAvailable();
if (!haveOpenssl) process.stderr.write('tls e2e skipped: openssl is not on PATH (the test CA is made with it)\n');
const describeTls = haveOpenssl ? describe : describe.skip;

/** A RESP client over TLS: sends commands, resolves with `n` replies; rejects with the handshake's error. */
async function respOverTls(port: number, o: ConnectionOptions) {
  const socket = await tlsConnected(port, o);
  const decoder = new ReplyDecoder();
  const replies: RespValue[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (b: Buffer) => {
    replies.push(...decoder.push(b));
    wake?.();
  });
  let closedWith: Error | null = null;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      resolve();
      wake?.();
    }),
  );
  socket.on('error', (e) => (closedWith = e));
  return {
    socket,
    closed,
    error: () => closedWith,
    async send(args: (string | Buffer)[][]): Promise<RespValue[]> {
      const from = replies.length;
      socket.write(Buffer.concat(args.map((a) => encodeCommand(a))));
      while (replies.length < from + args.length && !socket.destroyed) await new Promise<void>((r) => (wake = r));
      return replies.slice(from);
    },
  };
}

/** One HTTP(S) GET; resolves with status and body, rejects with the socket error. */
function get(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const done = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    };
    const req = url.startsWith('https:') ? httpsRequest(url, { ca, servername: 'localhost' }, done) : httpRequest(url, done);
    req.once('error', reject);
    req.end();
  });
}

function redisCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile('redis-cli', args, { timeout: 10_000 }, (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr })));
}

/**
 * The three client doors of a real gateway (3 replicas, 2 storage nodes, nats-server) over TLS, with
 * a CA made by openssl at test time: the TLV and HTTP doors with the gateway's certificate, the RESP
 * door with mTLS and TLS 1.3 (respTls); plain-TCP clients and clients without a certificate are
 * refused; a certificate replaced on disk is served to new connections without a restart.
 */
describeTls('TLS on the gateway doors end to end', () => {
  let cluster: LocalCluster;
  let pki: TestPki;
  let ports: { gatewayPort: number; httpPort: number; respPort: number };
  let clientCert: { cert: Buffer; key: Buffer; certFile: string; keyFile: string };

  beforeAll(async () => {
    const cfg = await writeTestConfig();
    ports = cfg;
    pki = makeTestPki(cfg.dir);
    const server = pki.issue('gateway', 'server');
    clientCert = pki.issue('client', 'client');
    const config = JSON.parse(readFileSync(cfg.configPath, 'utf8')) as { gateway: { gateways: Record<string, unknown>[] } };
    Object.assign(config.gateway.gateways[0], {
      tls: { mode: 'tls', certFile: server.certFile, keyFile: server.keyFile, reloadIntervalMs: 200 },
      respTls: { mode: 'tls', certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile, clientCertRequired: true, minVersion: 'TLSv1.3', reloadIntervalMs: 200 },
    });
    writeFileSync(cfg.configPath, JSON.stringify(config, null, 2));
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('TLV door: CairnPool and the CLI over TLS; a plain-TCP client is refused', async () => {
    const pool = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: ports.gatewayPort }], tls: { ca: pki.ca, servername: 'localhost' } });
    await pool.set('tls:k', 'over tls');
    expect((await pool.get('tls:k'))?.value.toString()).toBe('over tls');
    await pool.close();
    const cli = ['--gateway', `127.0.0.1:${ports.gatewayPort}`, '--cacert', pki.caFile];
    expect(await runCli([...cli, 'put', 'tls:cli', 'from the cli'])).toMatchObject({ code: 0 });
    expect(await runCli([...cli, 'get', 'tls:cli'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^from the cli\n?$/) as unknown });
    // Without --cacert the gateway's certificate is not trusted: exit 3 (no connection), naming the flag.
    const untrusted = await runCli(['--gateway', `127.0.0.1:${ports.gatewayPort}`, '--tls', '--timeout', '2000', 'get', 'tls:cli']);
    expect(untrusted).toMatchObject({ code: 3, stderr: expect.stringContaining('give --cacert') as unknown });
    const plain = await CairnClient.connect({ host: '127.0.0.1', port: ports.gatewayPort });
    await expect(plain.ping()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    plain.destroy();
  });

  it('RESP door with mTLS and TLS 1.3: served with the client certificate, refused without', async () => {
    const c = await respOverTls(ports.respPort, { ca: pki.ca, cert: clientCert.cert, key: clientCert.key });
    expect((c.socket as TLSSocket).getProtocol()).toBe('TLSv1.3');
    expect(await c.send([['SET', 'tls:resp', 'v'], ['GET', 'tls:k']])).toEqual([
      { type: 'simple', value: 'OK' },
      { type: 'bulk', value: Buffer.from('over tls') },
    ]);
    c.socket.end();
    // No client certificate: TLS 1.3 finishes the client's side of the handshake, then the gateway's alert closes it.
    const anon = await respOverTls(ports.respPort, { ca: pki.ca }).catch((e: Error) => e);
    if (!(anon instanceof Error)) {
      const replies = await anon.send([['PING']]);
      await anon.closed;
      expect(replies).toEqual([]);
      expect(anon.error()?.message).toMatch(/certificate required/i);
    } else {
      expect(anon.message).toMatch(/certificate required|ECONNRESET/i);
    }
    await expect(respOverTls(ports.respPort, { ca: pki.ca, cert: clientCert.cert, key: clientCert.key, maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert/i);
  });

  it('redis-cli --tls against the RESP door (skipped without redis-cli)', async () => {
    const probe = await redisCli(['--version']);
    if (probe.code !== 0) {
      process.stderr.write('tls e2e: redis-cli is not installed; the redis-cli --tls check is skipped\n');
      return;
    }
    const tls = ['--tls', '--cacert', pki.caFile, '--cert', clientCert.certFile, '--key', clientCert.keyFile, '--sni', 'localhost', '-h', '127.0.0.1', '-p', String(ports.respPort)];
    expect(await redisCli([...tls, 'SET', 'tls:redis-cli', 'yes'])).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(await redisCli([...tls, 'GET', 'tls:redis-cli'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    const anon = await redisCli(['--tls', '--cacert', pki.caFile, '--sni', 'localhost', '-h', '127.0.0.1', '-p', String(ports.respPort), 'GET', 'tls:redis-cli']);
    expect(anon.stdout + anon.stderr).not.toContain('yes');
    process.stderr.write(`tls e2e: redis-cli without a client certificate: ${JSON.stringify((anon.stdout + anon.stderr).trim())}\n`);
  });

  it('HTTP door over HTTPS; plain HTTP gets no answer', async () => {
    expect(await get(`https://127.0.0.1:${ports.httpPort}/v1/kv/tls:k`, pki.ca)).toEqual({ status: 200, body: 'over tls' });
    await expect(get(`http://127.0.0.1:${ports.httpPort}/v1/kv/tls:k`)).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('a certificate replaced on disk is served to new connections without a restart; open connections keep working', async () => {
    const pool = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: ports.gatewayPort }], tls: { ca: pki.ca } });
    const before = await servedSerial(ports.gatewayPort, pki.ca);
    const pid = cluster.pid('g1');
    pki.issue('gateway', 'server');
    // Each door polls the files every 200 ms (reloadIntervalMs): wait until new connections get the new one.
    const deadline = Date.now() + 10_000;
    const after = await rotatedSerial(ports.gatewayPort, pki.ca, before, deadline);
    expect(after).not.toBe(before);
    expect(await rotatedSerial(ports.httpPort, pki.ca, before, deadline)).toBe(after);
    expect(cluster.pid('g1')).toBe(pid);
    await pool.set('tls:after-rotation', 'still here');
    expect((await pool.get('tls:after-rotation'))?.value.toString()).toBe('still here');
    await pool.close();
  });
});
