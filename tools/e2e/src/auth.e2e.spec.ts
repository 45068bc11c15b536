import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { CairnClient } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { pollUntil, runCli, writeTestConfig } from './fixtures';

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
 * Auth on a real cluster (docs/security.md): users and roles made with `cairn user|role`, then
 * `cairn auth enable`; unauthenticated requests are refused on all three doors, key-prefix
 * permissions hold on HTTP and RESP, membership changes are for root only.
 */
describe('auth end to end', () => {
  let cluster: LocalCluster;
  let cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  let base: string;

  beforeAll(async () => {
    cfg = await writeTestConfig();
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
    base = `http://127.0.0.1:${cfg.httpPort}`;
    let status = 0;
    await pollUntil('/readyz 200', async () => ((status = await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : null), { everyMs: 50, last: () => String(status) });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('sets up users and roles with the CLI, enables auth, and enforces it on every door', async () => {
    const cli = (...args: string[]) => runCli([...args, '--http', `127.0.0.1:${cfg.httpPort}`]);
    for (const args of [
      ['user', 'add', 'root', '--password', 'rootpw', '--roles', 'root'],
      ['role', 'add', 'app'],
      ['role', 'grant', 'app', 'readwrite', 'app/'],
      ['user', 'add', 'alice', '--password', 'alicepw', '--roles', 'app'],
      ['auth', 'enable'],
    ]) {
      const r = await cli(...args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
    // Enabled now: the CLI without credentials is refused (exit 7), with root's it works.
    expect((await cli('user', 'list')).code).toBe(7);
    const list = await cli('--user', 'root:rootpw', 'user', 'list');
    expect(list.stdout).toBe('alice\tapp\nroot\troot\n');

    // HTTP: 401 without credentials, key-prefix permissions for alice, admin-only membership.
    const anon = await fetch(`${base}/v1/kv/app%2Fx`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/Basic/);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/v1/kv/app%2Fx`, { method: 'PUT', body: 'v1', headers: basic('alice', 'alicepw') })).status).toBe(200);
    expect((await fetch(`${base}/v1/kv/other`, { method: 'PUT', body: 'v', headers: basic('alice', 'alicepw') })).status).toBe(403);
    expect((await fetch(`${base}/v1/kv/app%2Fx`, { headers: basic('alice', 'wrong') })).status).toBe(401);
    expect((await fetch(`${base}/v1/cluster/members`, { headers: basic('alice', 'alicepw') })).status).toBe(200);
    expect((await fetch(`${base}/v1/cluster/members/nosuch?kind=storage`, { method: 'DELETE', headers: basic('alice', 'alicepw') })).status).toBe(403);
    // Removing an absent storage node is an idempotent no-op: root may.
    expect((await fetch(`${base}/v1/cluster/members/nosuch?kind=storage`, { method: 'DELETE', headers: basic('root', 'rootpw') })).status).toBe(200);

    // RESP: -NOAUTH before AUTH, then alice's permissions.
    const s = connect(cfg.respPort, '127.0.0.1');
    await once(s, 'connect');
    try {
      expect(await resp(s, 'GET', 'app/x')).toBe('-NOAUTH Authentication required.\r\n');
      expect(await resp(s, 'AUTH', 'alice', 'nope')).toMatch(/^-WRONGPASS/);
      expect(await resp(s, 'AUTH', 'alice', 'alicepw')).toBe('+OK\r\n');
      expect(await resp(s, 'GET', 'app/x')).toBe('$2\r\nv1\r\n');
      expect(await resp(s, 'SET', 'other', 'v')).toMatch(/^-NOPERM /);
    } finally {
      s.destroy();
    }

    // TLV: no login yet, so every key request is refused while auth is enabled.
    const client = await CairnClient.connect({ host: '127.0.0.1', port: cfg.gatewayPort });
    try {
      await expect(client.get('app/x')).rejects.toThrow(/authentication required/);
      await expect(client.set('app/y', 'v')).rejects.toThrow(/authentication required/);
    } finally {
      await client.close();
    }
  });
});
