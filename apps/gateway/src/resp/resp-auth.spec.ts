import { Permission } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { fakeAuthCluster } from '../auth/testing';
import type { AuthIdentity } from '../auth/gateway-auth';
import type { KvPaths } from '../paths/kv-session';
import { KvSession } from '../paths/kv-session';
import { RespCommands, type RespClient } from './commands';
import { OrderGate } from './order-gate';

async function setup() {
  const c = fakeAuthCluster();
  await c.enableWithRoot('rootpw');
  await c.stack.admin.addRole('app');
  await c.stack.admin.changeRolePermissions('app', [{ prefix: Buffer.from('app/'), permission: Permission.ReadWrite }], true);
  await c.stack.admin.addUser('alice', 'alicepw', ['app']);
  await c.stack.admin.addUser('default', 'defpw', ['app']);
  const commands = new RespCommands({ gatewayId: 'g1', version: '9.9.9', startedAtMs: 0, respPort: 6380, connections: () => 1, view: new ClusterView(() => 0), now: () => 0 }, 1024, undefined, c.stack.gate);
  const readIndex = { readIndex: async () => ({ ok: true, index: 0 }) } satisfies KvPaths['readIndex'];
  const connect = () => {
    const identity: AuthIdentity = { user: null };
    const paths = { reads: c.reads, readIndex, writes: c.writes, limits: { keyBytesMax: 64, valueBytesMax: 64 } };
    const client: RespClient = { id: 1, name: null, remote: '10.0.0.9:5000', local: '127.0.0.1:6380', session: new KvSession(paths, c.stack.gate.guardFor(identity)), identity, address: '10.0.0.9', quit: false, gate: new OrderGate() };
    const run = async (...args: string[]) => (await commands.handle(args.map((a) => Buffer.from(a, 'utf8')), client)).toString('utf8');
    return { client, run };
  };
  return { c, connect };
}

describe('RESP door with auth enabled', () => {
  it('answers -NOAUTH before AUTH, to key commands and the rest alike', async () => {
    const { connect } = await setup();
    const { run } = connect();
    expect(await run('GET', 'app/1')).toBe('-NOAUTH Authentication required.\r\n');
    expect(await run('PING')).toBe('-NOAUTH Authentication required.\r\n');
    expect(await run('DBSIZE')).toBe('-NOAUTH Authentication required.\r\n');
  });

  it('AUTH user pass and AUTH pass (user default); -WRONGPASS alike for unknown user and wrong password', async () => {
    const { connect } = await setup();
    const a = connect();
    expect(await a.run('AUTH', 'mallory', 'x')).toBe('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    expect(await a.run('AUTH', 'alice', 'x')).toBe('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    expect(await a.run('AUTH', 'alice', 'alicepw')).toBe('+OK\r\n');
    expect(await a.run('SET', 'app/1', 'v')).toBe('+OK\r\n');
    expect(await a.run('GET', 'app/1')).toBe('$1\r\nv\r\n');
    expect(await a.run('SET', 'other', 'v')).toMatch(/^-NOPERM /);
    expect(await a.run('GET', 'other')).toMatch(/^-NOPERM /);
    const d = connect();
    expect(await d.run('AUTH', 'defpw')).toBe('+OK\r\n');
    expect(d.client.identity?.user).toBe('default');
  });

  it('HELLO 2 AUTH user pass authenticates, then answers the HELLO map', async () => {
    const { connect } = await setup();
    const h = connect();
    expect(await h.run('HELLO', '2', 'AUTH', 'alice', 'bad')).toMatch(/^-WRONGPASS/);
    expect(await h.run('HELLO', '2')).toBe('-NOAUTH Authentication required.\r\n');
    const ok = await h.run('HELLO', '2', 'AUTH', 'alice', 'alicepw', 'SETNAME', 'app1');
    expect(ok).toMatch(/^\*14\r\n/);
    expect(h.client.name).toBe('app1');
  });

  it("transactions are checked like the keys they touch: -NOPERM, nothing applied", async () => {
    const { connect, c } = await setup();
    const a = connect();
    await a.run('AUTH', 'alice', 'alicepw');
    expect(await a.run('WATCH', 'other')).toMatch(/^-NOPERM /);
    expect(await a.run('MULTI')).toBe('+OK\r\n');
    expect(await a.run('SET', 'other', 'v')).toBe('+QUEUED\r\n');
    expect(await a.run('EXEC')).toMatch(/^-NOPERM /);
    expect(await a.run('MSETNX', 'app/1', 'x', 'other', 'y')).toMatch(/^-NOPERM /);
    expect(await a.run('GETDEL', 'other')).toMatch(/^-NOPERM /);
    expect([...c.data.keys()].filter((k) => Buffer.from(k, 'hex').toString().match(/^(other|app\/1)$/))).toEqual([]);
  });

  it('closes the connection at failuresPerConnectionMax failed AUTHs', async () => {
    const { connect } = await setup();
    const x = connect();
    // fakeAuthCluster: failuresPerConnectionMax 3.
    for (let i = 0; i < 2; i++) await x.run('AUTH', 'alice', `bad${i}`);
    expect(x.client.quit).toBe(false);
    await x.run('AUTH', 'alice', 'bad2');
    expect(x.client.quit).toBe(true);
  });
});
