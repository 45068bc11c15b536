import type { Socket } from 'node:net';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnClient, CairnPool, PermissionDeniedError, UnauthenticatedError } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { BUS_ROLES } from '@cairn/messaging';
import { opensslAvailable } from '@cairn/messaging/testing';
import { pollUntil, runCli, writeTestConfig } from './fixtures';
import { DoorTransport, rotatedSerial, servedSerial } from './tls-doors';

const haveOpenssl = opensslAvailable();
if (!haveOpenssl) process.stderr.write('auth e2e skipped: openssl is not on PATH (the test CA and the bus CA are made with it)\n');
const describeAuth = haveOpenssl ? describe : describe.skip;

/** One RESP command on `s`, answered by the next reply line (the replies used here are one line or a short bulk). */
async function resp(s: Socket, ...args: string[]): Promise<string> {
  s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  let text = '';
  for (;;) {
    const [chunk] = (await once(s, 'data')) as [Buffer];
    text += chunk.toString('utf8');
    if (text.endsWith('\r\n') && !(text.startsWith('$') && text.split('\r\n').length < 3)) return text;
  }
}

const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

/**
 * Auth with TLS on a real cluster (docs/security.md): the TLV, RESP and HTTP doors speak TLS only
 * (a certificate from a test CA, DoorTransport), the bus runs with TLS and one NKey per role as
 * `npm start` does; every client here (CairnPool, the CLI with --cacert, RESP, HTTPS) goes
 * through TLS. Users and roles made with `cairn user|role`, then `cairn auth enable`;
 * unauthenticated, wrong-password and wrong-role requests are refused on all three doors,
 * membership changes are for root only; `cairn snapshot save --user`; a gateway certificate
 * replaced on disk is served to new connections without a restart.
 */
describeAuth('auth with TLS end to end', () => {
  let cluster: LocalCluster;
  let cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  let base: string;
  const transport = new DoorTransport(true);
  const fetch = transport.fetch.bind(transport);

  beforeAll(async () => {
    cfg = await writeTestConfig();
    const config = JSON.parse(readFileSync(cfg.configPath, 'utf8')) as { gateway: Record<string, unknown>; nats: Record<string, unknown> };
    // Doors checked every 200 ms for a replaced certificate; the bus as cairn.config.json (npm start) has it.
    transport.configure(config, cfg.dir, 200);
    config.nats.credentials = Object.fromEntries(BUS_ROLES.map((r) => [r, { seedFile: `bus/${r}.nk` }]));
    config.nats.tls = { caFile: 'bus/ca.crt', certFile: 'bus/client.crt', keyFile: 'bus/client.key' };
    writeFileSync(cfg.configPath, JSON.stringify(config));
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
    base = transport.url(cfg.httpPort);
    let status = 0;
    await pollUntil('/readyz 200', async () => ((status = await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : null), { everyMs: 50, last: () => String(status) });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('sets up users and roles with the CLI, enables auth, and enforces it on every door', async () => {
    const cli = (...args: string[]) => runCli([...args, '--http', `127.0.0.1:${cfg.httpPort}`, ...transport.cliFlags()]);
    for (const args of [
      ['user', 'add', 'root', '--new-user-password', 'rootpw', '--roles', 'root'],
      ['role', 'add', 'app'],
      ['role', 'grant', 'app', 'readwrite', 'app/'],
      ['user', 'add', 'alice', '--new-user-password', 'alicepw', '--roles', 'app'],
      ['role', 'add', 'reader'],
      ['role', 'grant', 'reader', 'read', 'app/'],
      ['user', 'add', 'bob', '--new-user-password', 'bobpw', '--roles', 'reader'],
      ['auth', 'enable'],
    ]) {
      const r = await cli(...args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
    // Enabled now: the CLI without credentials is refused (exit 7), with root's it works.
    expect((await cli('user', 'list')).code).toBe(7);
    const list = await cli('--user', 'root:rootpw', 'user', 'list');
    expect(list.stdout).toBe('alice\tapp\nbob\treader\nroot\troot\n');

    // HTTP: 401 without credentials, key-prefix permissions for alice, admin-only membership.
    const anon = await fetch(`${base}/v1/kv/app%2Fx`);
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/Basic/);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/v1/kv/app%2Fx`, { method: 'PUT', body: 'v1', headers: basic('alice', 'alicepw') })).status).toBe(200);
    expect((await fetch(`${base}/v1/kv/other`, { method: 'PUT', body: 'v', headers: basic('alice', 'alicepw') })).status).toBe(403);
    expect((await fetch(`${base}/v1/kv/app%2Fx`, { headers: basic('alice', 'wrong') })).status).toBe(401);
    expect((await fetch(`${base}/v1/cluster/members`, { headers: basic('alice', 'alicepw') })).status).toBe(200);
    expect((await fetch(`${base}/v1/cluster/members/nosuch?kind=storage`, { method: 'DELETE', headers: basic('alice', 'alicepw') })).status).toBe(403);
    // Removing an absent storage node is an idempotent no-op: root may.
    expect((await fetch(`${base}/v1/cluster/members/nosuch?kind=storage`, { method: 'DELETE', headers: basic('root', 'rootpw') })).status).toBe(200);

    // RESP: -NOAUTH before AUTH, then alice's permissions.
    const s = transport.socket(cfg.respPort);
    await once(s, transport.connectEvent);
    try {
      expect(await resp(s, 'GET', 'app/x')).toBe('-NOAUTH Authentication required.\r\n');
      expect(await resp(s, 'AUTH', 'alice', 'nope')).toMatch(/^-WRONGPASS/);
      expect(await resp(s, 'AUTH', 'alice', 'alicepw')).toBe('+OK\r\n');
      expect(await resp(s, 'GET', 'app/x')).toBe('$2\r\nv1\r\n');
      expect(await resp(s, 'SET', 'other', 'v')).toMatch(/^-NOPERM /);
    } finally {
      s.destroy();
    }

    // TLV without credentials: every key request is UNAUTHENTICATED.
    const client = await CairnClient.connect({ host: '127.0.0.1', port: cfg.gatewayPort, tls: transport.clientTls() });
    try {
      await expect(client.get('app/x')).rejects.toThrow(UnauthenticatedError);
      await expect(client.set('app/y', 'v')).rejects.toThrow(/authentication required/);
      expect(await client.hello()).toEqual({ protocolVersion: 1, authEnabled: true, user: null });
    } finally {
      await client.close();
    }
    // TLV with credentials (AUTH on connect): alice reads and writes app/, bob only reads it.
    const gateways = [{ host: '127.0.0.1', port: cfg.gatewayPort }];
    const alice = await CairnPool.connect({ gateways, tls: transport.clientTls(), username: 'alice', password: 'alicepw' });
    const bob = await CairnPool.connect({ gateways, tls: transport.clientTls(), username: 'bob', password: 'bobpw' });
    try {
      await alice.set('app/tlv', 'v2');
      expect((await alice.get('app/tlv'))?.value.toString()).toBe('v2');
      await expect(alice.set('other', 'v')).rejects.toThrow(PermissionDeniedError);
      expect((await bob.get('app/tlv'))?.value.toString()).toBe('v2');
      await expect(bob.set('app/tlv', 'v3')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      await expect(CairnClient.connect({ host: '127.0.0.1', port: cfg.gatewayPort, tls: transport.clientTls(), username: 'bob', password: 'wrong' })).rejects.toThrow(UnauthenticatedError);
    } finally {
      await alice.close();
      await bob.close();
    }

    // The CLI on the TLV door: --user works, no credentials exit 7, a write outside the roles exit 7.
    const tlv = (...args: string[]) => runCli([...args, '--endpoints', `127.0.0.1:${cfg.gatewayPort}`, ...transport.cliFlags()]);
    expect(await tlv('--user', 'alice:alicepw', 'put', 'app/cli', 'v3')).toMatchObject({ code: 0 });
    expect(await tlv('--user', 'bob', '--password', 'bobpw', 'get', 'app/cli')).toMatchObject({ code: 0, stdout: 'v3' });
    expect((await tlv('get', 'app/cli')).code).toBe(7);
    expect((await tlv('--user', 'bob:bobpw', 'put', 'app/cli', 'x')).code).toBe(7);

    // snapshot save is admin-only: with root's credentials it saves, with none it is exit 7.
    const file = join(cfg.dir, 'backup.cairn');
    const anonSave = await cli('snapshot', 'save', file);
    expect(anonSave.code).toBe(7);
    const save = await cli('--user', 'root:rootpw', 'snapshot', 'save', file);
    expect({ code: save.code, stderr: save.stderr }).toEqual({ code: 0, stderr: '' });
    expect(existsSync(file)).toBe(true);
  });

  it('a gateway certificate replaced on disk is served to new connections of every door without a restart; open ones keep working', async () => {
    const ca = transport.caCert;
    const pool = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: cfg.gatewayPort }], tls: transport.clientTls(), username: 'alice', password: 'alicepw' });
    try {
      const before = await servedSerial(cfg.gatewayPort, ca);
      const pid = cluster.pid('g1');
      transport.replaceServerCertificate();
      const deadline = Date.now() + 10_000;
      const after = await rotatedSerial(cfg.gatewayPort, ca, before, deadline);
      expect(after).not.toBe(before);
      expect(await rotatedSerial(cfg.respPort, ca, before, deadline)).toBe(after);
      expect(await rotatedSerial(cfg.httpPort, ca, before, deadline)).toBe(after);
      expect(cluster.pid('g1')).toBe(pid);
      await pool.set('app/after-rotation', 'still here');
      expect((await pool.get('app/after-rotation'))?.value.toString()).toBe('still here');
      // A new connection on the new certificate still needs credentials.
      expect((await fetch(`${base}/v1/kv/app%2Fafter-rotation`)).status).toBe(401);
      expect((await fetch(`${base}/v1/kv/app%2Fafter-rotation`, { headers: basic('bob', 'bobpw') })).status).toBe(200);
    } finally {
      await pool.close();
    }
  });
});
