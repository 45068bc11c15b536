import { httpHarness as harness } from './cli.spec-helpers';
import { basicAuthHeader } from './credentials';

const HTTP = ['--http', '127.0.0.1:9000'];

describe('cairn user / role / auth', () => {
  it('user add sends the password and roles, with --user credentials as HTTP Basic', async () => {
    const h = harness(() => ({ status: 200, json: { revision: 12 } }));
    expect(await h.cairn('--user', 'root:rpw', 'user', 'add', 'alice', '--password', 'pw', '--roles', 'app,ops', ...HTTP)).toBe(0);
    expect(h.calls).toEqual([{ method: 'PUT', url: 'http://127.0.0.1:9000/v1/auth/users/alice', body: { password: 'pw', roles: ['app', 'ops'] }, authorization: `Basic ${Buffer.from('root:rpw').toString('base64')}` }]);
    expect(h.stdout.text).toBe('user alice added (auth revision 12)\n');
  });

  it('user add reads the password from standard input when --password is absent', async () => {
    const h = harness(() => ({ status: 200, json: { revision: 3 } }), { readLine: async () => 'from-stdin' });
    expect(await h.cairn('user', 'add', 'bob', ...HTTP)).toBe(0);
    expect(h.calls[0].body).toEqual({ password: 'from-stdin', roles: [] });
    const none = harness(() => ({ status: 200, json: {} }));
    expect(await none.cairn('user', 'add', 'bob', ...HTTP)).toBe(2);
    expect(none.calls).toEqual([]);
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
    expect(await exists.cairn('user', 'add', 'bob', '--password', 'x', ...HTTP)).toBe(6);
  });

  it('user list prints name and roles', async () => {
    const h = harness(() => ({ status: 200, json: { users: [{ name: 'alice', roles: ['app'] }, { name: 'root', roles: ['root'] }] } }));
    expect(await h.cairn('user', 'list', ...HTTP)).toBe(0);
    expect(h.stdout.text).toBe('alice\tapp\nroot\troot\n');
  });
});

describe('basicAuthHeader', () => {
  it('takes name:password, else $CAIRN_USER and $CAIRN_PASSWORD; none without a user', () => {
    const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(basicAuthHeader('a:b:c')).toEqual({ authorization: b('a:b:c') });
    expect(basicAuthHeader(undefined, { CAIRN_USER: 'u', CAIRN_PASSWORD: 'p' })).toEqual({ authorization: b('u:p') });
    expect(basicAuthHeader('u', { CAIRN_PASSWORD: 'p' })).toEqual({ authorization: b('u:p') });
    expect(basicAuthHeader(undefined, {})).toEqual({});
  });
});
