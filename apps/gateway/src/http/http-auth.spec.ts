import { Agent, get, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { Permission, Status } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import { fakeAuthCluster } from '../auth/testing';
import { HttpApi } from './http-api';
import { isAdminRequest } from './http-auth';

const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

async function start() {
  const c = fakeAuthCluster();
  const view = new ClusterView();
  const readIndex = { readIndex: async () => ({ ok: true, index: 0 }) } satisfies KvPaths['readIndex'];
  const api = new HttpApi({ gatewayId: 'g1', paths: { reads: c.reads, readIndex, writes: c.writes, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics: new GatewayMetrics(view), auth: c.stack });
  await api.listen('127.0.0.1', 0);
  return { c, api, base: `http://127.0.0.1:${api.port()}` };
}

let s: Awaited<ReturnType<typeof start>>;

describe('HTTP door with auth enabled', () => {
  beforeEach(async () => {
    s = await start();
    await s.c.enableWithRoot('rootpw');
    const a = s.c.stack.admin;
    await a.addRole('app');
    await a.changeRolePermissions('app', [{ prefix: Buffer.from('app/'), permission: Permission.ReadWrite }, { prefix: Buffer.from('ro/'), permission: Permission.Read }], true);
    await a.addUser('alice', 'alicepw', ['app']);
  });
  afterEach(() => s.api.close());

  it('refuses a request without credentials: 401 UNAUTHENTICATED with a challenge; probes and /metrics stay open', async () => {
    const r = await fetch(`${s.base}/v1/kv/app%2F1`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="cairn"/);
    expect(await r.json()).toEqual({ error: 'UNAUTHENTICATED', message: 'authentication required' });
    expect((await fetch(`${s.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.base}/metrics`)).status).toBe(200);
    expect((await fetch(`${s.base}/v1/cluster`)).status).toBe(401);
  });

  it('says the same for an unknown user and a wrong password', async () => {
    const a = await fetch(`${s.base}/v1/kv/app%2F1`, { headers: basic('mallory', 'x') });
    const b = await fetch(`${s.base}/v1/kv/app%2F1`, { headers: basic('alice', 'x') });
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(await a.json()).toEqual(await b.json());
  });

  it('enforces key-prefix permissions with Basic credentials', async () => {
    const put = await fetch(`${s.base}/v1/kv/app%2F1`, { method: 'PUT', body: 'v', headers: basic('alice', 'alicepw') });
    expect(put.status).toBe(200);
    const get = await fetch(`${s.base}/v1/kv/app%2F1`, { headers: basic('alice', 'alicepw') });
    expect(await get.text()).toBe('v');
    const denied = await fetch(`${s.base}/v1/kv/ro%2F1`, { method: 'PUT', body: 'v', headers: basic('alice', 'alicepw') });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: string }).error).toBe('PERMISSION_DENIED');
    expect((await fetch(`${s.base}/v1/kv/ro%2F1`, { headers: basic('alice', 'alicepw') })).status).toBe(404);
    expect((await fetch(`${s.base}/v1/kv?prefix=app%2F`, { headers: basic('alice', 'alicepw') })).status).toBe(503); // allowed; the fake has no range reads
    expect((await fetch(`${s.base}/v1/kv?prefix=`, { headers: basic('alice', 'alicepw') })).status).toBe(403);
  });

  it('checks each op of POST /v1/txn as etcd checks a Txn: one refusal refuses the txn, nothing written', async () => {
    const alice = { ...basic('alice', 'alicepw'), 'content-type': 'application/json' };
    const txn = (body: unknown, headers: Record<string, string> = alice) => fetch(`${s.base}/v1/txn`, { method: 'POST', body: JSON.stringify(body), headers });
    const before = s.c.data.size;
    const cases = [
      { compare: [{ key: 'app/1', target: 'VERSION' }], success: [{ request_put: { key: 'ro/1', value: 'v' } }] },
      { compare: [{ key: 'secret', target: 'VERSION' }], success: [{ request_put: { key: 'app/1', value: 'v' } }] },
      { failure: [{ request_range: { key: 'app/', range_end: '\u0000' } }] },
      { success: [{ request_delete_range: { key: 'ro/', prefix: true } }] },
    ];
    for (const body of cases) {
      const r = await txn(body);
      expect({ body, status: r.status, error: ((await r.json()) as { error: string }).error }).toEqual({ body, status: 403, error: 'PERMISSION_DENIED' });
    }
    expect((await txn(cases[0], { 'content-type': 'application/json' })).status).toBe(401);
    expect(s.c.data.size).toBe(before);
  });

  it('issues bearer tokens for Basic credentials and accepts them', async () => {
    const t = await fetch(`${s.base}/v1/auth/token`, { method: 'POST', headers: basic('alice', 'alicepw') });
    expect(t.status).toBe(200);
    const { token, user } = (await t.json()) as { token: string; user: string };
    expect(user).toBe('alice');
    const bearer = { authorization: `Bearer ${token}` };
    expect((await fetch(`${s.base}/v1/kv/app%2F2`, { method: 'PUT', body: 'x', headers: bearer })).status).toBe(200);
    expect((await fetch(`${s.base}/v1/kv/app%2F2`, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
  });

  it('keeps administration to role root: membership, snapshots, users and roles', async () => {
    const alice = basic('alice', 'alicepw');
    expect((await fetch(`${s.base}/v1/cluster/members`, { method: 'POST', body: '{"id":"c9"}', headers: { ...alice, 'content-type': 'application/json' } })).status).toBe(403);
    expect((await fetch(`${s.base}/v1/snapshot`, { headers: alice })).status).toBe(403);
    expect((await fetch(`${s.base}/v1/auth/users`, { headers: alice })).status).toBe(403);
    const users = await fetch(`${s.base}/v1/auth/users`, { headers: basic('root', 'rootpw') });
    expect(await users.json()).toEqual({ users: [{ name: 'alice', roles: ['app'] }, { name: 'root', roles: ['root'] }] });
    const add = await fetch(`${s.base}/v1/auth/users/bob`, { method: 'PUT', body: JSON.stringify({ password: 'bobpw' }), headers: { ...basic('root', 'rootpw'), 'content-type': 'application/json' } });
    expect(add.status).toBe(200);
    const again = await fetch(`${s.base}/v1/auth/users/bob`, { method: 'PUT', body: JSON.stringify({ password: 'bobpw' }), headers: { ...basic('root', 'rootpw'), 'content-type': 'application/json' } });
    expect(again.status).toBe(412);
    expect(((await again.json()) as { message: string }).message).toBe('user bob already exists');
    const roles = await fetch(`${s.base}/v1/auth/roles`, { headers: basic('root', 'rootpw') });
    expect(((await roles.json()) as { roles: { permissions: unknown[] }[] }).roles[0].permissions[0]).toEqual({ prefix: 'app/', prefixBase64: Buffer.from('app/').toString('base64'), permission: 'readwrite' });
  });

  it('closes a connection at its failuresPerConnectionMax-th failure', async () => {
    // fakeAuthCluster: failuresPerConnectionMax 3. One keep-alive connection (an Agent of one socket).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const answers: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await new Promise<IncomingMessage>((resolve, reject) => get(`${s.base}/v1/kv/app%2F1`, { agent, headers: basic('alice', `bad${i}`) }, resolve).on('error', reject));
      sockets.add(res.socket);
      res.resume();
      await once(res, 'end');
      answers.push(res.headers.connection);
    }
    agent.destroy();
    expect(sockets.size).toBe(1);
    expect(answers).toEqual(['keep-alive', 'keep-alive', 'close']);
  });

  it('answers 503 until the auth state is known, never as if auth were off', async () => {
    const fresh = await start();
    try {
      fresh.c.stack.gate.settings.readyTimeoutMs = 10;
      const r = await fetch(`${fresh.base}/v1/kv/app%2F1`);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: string }).error).toBe(Status[Status.Unavailable].toUpperCase());
    } finally {
      await fresh.api.close();
    }
  });
});

describe('isAdminRequest', () => {
  it.each([
    ['POST', '/v1/cluster/members', true],
    ['DELETE', '/v1/cluster/members/c2', true],
    ['GET', '/v1/cluster/members', false],
    ['GET', '/v1/snapshot', true],
    ['POST', '/v1/auth/token', false],
    ['GET', '/v1/auth/users', true],
    ['PUT', '/v1/auth/enabled', true],
    ['GET', '/v1/kv/a', false],
  ])('%s %s → %s', (method, path, admin) => {
    expect(isAdminRequest(method, path)).toBe(admin);
  });
});
