import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { authCommands } from './auth';
import { ExitCode, exitCodeFor } from './exit-codes';
import { httpHarness as harness, testPkiOrSay } from './cli.spec-helpers';
import type { ConnectOptions } from './cli';
import { authHeader, credentialsOf } from './credentials';

const HTTP = ['--http', '127.0.0.1:9000'];

describe('cairn user / role / auth', () => {
  it('user add sends the password and roles, with --user credentials as HTTP Basic', async () => {
    const h = harness(() => ({ status: 200, json: { revision: 12 } }));
    expect(await h.cairn('--user', 'root:rpw', 'user', 'add', 'alice', '--new-user-password', 'pw', '--roles', 'app,ops', ...HTTP)).toBe(0);
    expect(h.calls).toEqual([{ method: 'PUT', url: 'http://127.0.0.1:9000/v1/auth/users/alice', body: { password: 'pw', roles: ['app', 'ops'] }, authorization: `Basic ${Buffer.from('root:rpw').toString('base64')}` }]);
    expect(h.stdout.text).toBe('user alice added (auth revision 12)\n');
  });

  it('user add reads the password from standard input when --new-user-password is absent; --password is the caller\'s', async () => {
    const h = harness(() => ({ status: 200, json: { revision: 3 } }), { readLine: async () => 'from-stdin' });
    expect(await h.cairn('user', 'add', 'bob', ...HTTP)).toBe(0);
    expect(h.calls[0].body).toEqual({ password: 'from-stdin', roles: [] });
    const none = harness(() => ({ status: 200, json: {} }));
    expect(await none.cairn('user', 'add', 'bob', ...HTTP)).toBe(2);
    expect(none.calls).toEqual([]);
    const own = harness(() => ({ status: 200, json: { revision: 4 } }), { readLine: async () => 'new-pw' });
    expect(await own.cairn('user', 'passwd', 'bob', '--user', 'root', '--password', 'rpw', ...HTTP)).toBe(0);
    expect(own.calls).toEqual([{ method: 'POST', url: 'http://127.0.0.1:9000/v1/auth/users/bob/password', body: { password: 'new-pw' }, authorization: `Basic ${Buffer.from('root:rpw').toString('base64')}` }]);
  });

  it('role grant / revoke, user grant, auth enable map to their routes', async () => {
    const h = harness(() => ({ status: 200, json: { revision: 5 } }));
    expect(await h.cairn('role', 'grant', 'app', 'readwrite', 'app/', ...HTTP)).toBe(0);
    expect(await h.cairn('role', 'revoke', 'app', 'app/', ...HTTP)).toBe(0);
    expect(await h.cairn('user', 'grant', 'alice', 'app', 'ops', ...HTTP)).toBe(0);
    expect(await h.cairn('auth', 'enable', ...HTTP)).toBe(0);
    expect(h.calls.map((c) => [c.method, c.url.replace('http://127.0.0.1:9000', ''), c.body])).toEqual([
      ['POST', '/v1/auth/roles/app/permissions', { grant: [{ prefix: 'app/', permission: 'readwrite' }] }],
      ['POST', '/v1/auth/roles/app/permissions', { revoke: [{ prefix: 'app/' }] }],
      ['POST', '/v1/auth/users/alice/roles', { grant: ['app', 'ops'] }],
      ['PUT', '/v1/auth/enabled', { enabled: true }],
    ]);
    expect(await h.cairn('role', 'grant', 'app', 'all', 'x', ...HTTP)).toBe(2);
  });

  it('exit 7 on 401 / 403, exit 6 on a refused change', async () => {
    const denied = harness(() => ({ status: 403, json: { error: 'PERMISSION_DENIED', message: 'user alice is not an administrator (role root)' } }));
    expect(await denied.cairn('user', 'list', ...HTTP)).toBe(7);
    expect(denied.stderr.text).toMatch(/permission denied: user alice is not an administrator/);
    const unauth = harness(() => ({ status: 401, json: { error: 'UNAUTHENTICATED', message: 'authentication required' } }));
    expect(await unauth.cairn('member', 'list', ...HTTP)).toBe(7);
    const exists = harness(() => ({ status: 412, json: { error: 'CONDITION_FAILED', message: 'user bob already exists' } }));
    expect(await exists.cairn('user', 'add', 'bob', '--new-user-password', 'x', ...HTTP)).toBe(6);
  });

  it('user list prints name and roles', async () => {
    const h = harness(() => ({ status: 200, json: { users: [{ name: 'alice', roles: ['app'] }, { name: 'root', roles: ['root'] }] } }));
    expect(await h.cairn('user', 'list', ...HTTP)).toBe(0);
    expect(h.stdout.text).toBe('alice\tapp\nroot\troot\n');
  });

  it('goes over HTTPS with --tls/--cacert (the given CA trusted); an untrusted certificate is exit 3', async () => {
    const pki = testPkiOrSay('auth.spec: the HTTPS calls are not tested');
    if (!pki) return;
    const server = pki.issue('gateway', 'server');
    const seen: { url?: string; authorization?: string }[] = [];
    const gw = https.createServer({ cert: server.cert, key: server.key }, (req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ users: [{ name: 'alice', roles: ['app'] }] }));
    });
    await new Promise<void>((r) => gw.listen(0, '127.0.0.1', r));
    const at = `127.0.0.1:${(gw.address() as AddressInfo).port}`;
    const out: string[] = [];
    const run = async (ca: Buffer | undefined) => {
      const [user] = authCommands({ out: (s) => out.push(s), env: {}, tls: () => ({ ca }) });
      user.exitOverride();
      return user.parseAsync(['list', '--http', at], { from: 'user' }).then(() => null, (e: unknown) => e);
    };
    try {
      expect(await run(pki.ca)).toBeNull();
      expect(out).toEqual(['alice\tapp']);
      expect(seen).toEqual([{ url: '/v1/auth/users', authorization: undefined }]);
      const untrusted = await run(undefined);
      expect(exitCodeFor(untrusted)).toBe(ExitCode.unavailable);
      expect(String(untrusted)).toMatch(/cannot reach the gateway HTTP API at 127\.0\.0\.1:\d+: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/);
    } finally {
      await new Promise<void>((r) => gw.close(() => r()));
      fs.rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

describe('credentials', () => {
  const basic = (user: string | undefined, env: NodeJS.ProcessEnv = {}, password?: string) => authHeader(credentialsOf({ user, password }, env));
  it('takes name:password, else $CAIRN_USER and $CAIRN_PASSWORD; none without a user', () => {
    const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(basic('a:b:c')).toEqual({ authorization: b('a:b:c') });
    expect(basic(undefined, { CAIRN_USER: 'u', CAIRN_PASSWORD: 'p' })).toEqual({ authorization: b('u:p') });
    expect(basic('u', { CAIRN_PASSWORD: 'p' })).toEqual({ authorization: b('u:p') });
    expect(basic(undefined, {})).toEqual({});
  });

  it('--password, --token and $CAIRN_TOKEN; flags before env; inconsistent ones are usage errors', () => {
    expect(credentialsOf({ user: 'u', password: 'p' }, { CAIRN_PASSWORD: 'env' })).toEqual({ username: 'u', password: 'p' });
    expect(credentialsOf({ token: 't' }, { CAIRN_USER: 'u', CAIRN_PASSWORD: 'p' })).toEqual({ token: 't' });
    expect(credentialsOf({}, { CAIRN_TOKEN: 't', CAIRN_USER: 'u' })).toEqual({ token: 't' });
    expect(credentialsOf({ user: 'u:p' }, { CAIRN_TOKEN: 't' })).toEqual({ username: 'u', password: 'p' });
    expect(authHeader({ token: 'abc' })).toEqual({ authorization: 'Bearer abc' });
    expect(() => credentialsOf({ user: 'u' }, {})).toThrow(/no password for user u/);
    expect(() => credentialsOf({ password: 'p' }, {})).toThrow(/--password needs a user/);
    expect(() => credentialsOf({ token: 't', user: 'u:p' }, {})).toThrow(/--token excludes/);
  });

  it('every TLV command logs in with them (get, put, del, txn, ping, status, import, verify, bench); HTTP ones send them as Basic or Bearer', async () => {
    const seen: ConnectOptions[] = [];
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const h = harness(() => ({ status: 200, json: { members: [] } }), {
      connect: (o) => {
        seen.push(o);
        return Promise.reject(refused);
      },
      env: { CAIRN_USER: 'envuser', CAIRN_PASSWORD: 'envpw' },
    });
    const tsv = `${__dirname}/../../../package.json`;
    for (const args of [['get', 'k'], ['put', 'k', 'v'], ['del', 'k'], ['ping'], ['status'], ['import', tsv], ['verify', tsv], ['bench', '--requests', '1', '--clients', '1', '--no-warmup-keys']]) await h.cairn('--user', 'alice:pw', ...args);
    expect(seen.map((o) => o.credentials)).toEqual(Array(8).fill({ username: 'alice', password: 'pw' }));
    seen.length = 0;
    await h.cairn('get', 'k');
    await h.cairn('--token', 'tok', 'get', 'k');
    await h.cairn('--user', 'bob', '--password', 'bobpw', 'txn', '--file', '/dev/null');
    expect(seen.map((o) => o.credentials)).toEqual([{ username: 'envuser', password: 'envpw' }, { token: 'tok' }, { username: 'bob', password: 'bobpw' }]);
    await h.cairn('--token', 'tok', 'member', 'list', ...HTTP);
    expect(h.calls.at(-1)?.authorization).toBe('Bearer tok');
    const n = seen.length;
    expect(await h.cairn('--token', 't', '--user', 'x', 'get', 'k')).toBe(2);
    expect(seen).toHaveLength(n);
  });
});
