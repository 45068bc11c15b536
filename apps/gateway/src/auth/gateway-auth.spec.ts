import { Permission, Status } from '@cairn/protocol';
import { WRONG_CREDENTIALS, isRefusal } from './gateway-auth';
import { fakeAuthCluster } from './testing';

const b = (s: string) => Buffer.from(s);

describe('GatewayAuth', () => {
  it('allows everything while auth is disabled', async () => {
    const c = fakeAuthCluster();
    c.heartbeat();
    expect(await c.stack.gate.authorizeKey({ user: null }, b('k'), true)).toBeNull();
    expect(await c.stack.gate.authorizeAdmin({ user: null })).toBeNull();
  });

  it('answers UNAVAILABLE, not "allowed", before the auth state is known', async () => {
    const c = fakeAuthCluster();
    c.stack.gate.settings.readyTimeoutMs = 10;
    const r = await c.stack.gate.authorizeKey({ user: null }, b('k'), false);
    expect(r?.status).toBe(Status.Unavailable);
  });

  it('gives the same answer for an unknown user and a wrong password', async () => {
    const c = fakeAuthCluster();
    await c.enableWithRoot('rootpw');
    const unknown = await c.stack.gate.checkPassword('mallory', 'x', '10.0.0.1');
    const wrong = await c.stack.gate.checkPassword('root', 'x', '10.0.0.1');
    expect(unknown).toEqual({ status: Status.Unauthenticated, message: WRONG_CREDENTIALS });
    expect(wrong).toEqual(unknown);
    expect(await c.stack.gate.checkPassword('root', 'rootpw', '10.0.0.1')).toEqual({ user: 'root' });
  });

  it('refuses an address unchecked after failuresPerAddressMax failures, other addresses not', async () => {
    const c = fakeAuthCluster();
    await c.enableWithRoot('rootpw');
    // fakeAuthCluster's failuresPerAddressMax is 20.
    for (let i = 0; i < 20; i++) await c.stack.gate.checkPassword('root', 'bad', '10.0.0.2');
    const r = await c.stack.gate.checkPassword('root', 'rootpw', '10.0.0.2');
    expect(isRefusal(r) && r.status).toBe(Status.Unauthenticated);
    expect(isRefusal(r) && r.message).toMatch(/too many failed/);
    expect(await c.stack.gate.checkPassword('root', 'rootpw', '10.0.0.3')).toEqual({ user: 'root' });
  });

  it('enforces key-prefix permissions and follows changes: revoke, role delete, user delete', async () => {
    const c = fakeAuthCluster();
    await c.enableWithRoot('rootpw');
    const a = c.stack.admin;
    expect((await a.addRole('app')).status).toBe(Status.Ok);
    expect((await a.changeRolePermissions('app', [{ prefix: b('app/'), permission: Permission.ReadWrite }], true)).status).toBe(Status.Ok);
    expect((await a.addUser('alice', 'pw', ['app'])).status).toBe(Status.Ok);
    const alice = { user: 'alice' };
    expect(await c.stack.gate.authorizeKey(alice, b('app/1'), true)).toBeNull();
    expect((await c.stack.gate.authorizeKey(alice, b('other'), false))?.status).toBe(Status.PermissionDenied);
    expect((await c.stack.gate.authorizeAdmin(alice))?.status).toBe(Status.PermissionDenied);
    expect((await c.stack.gate.authorizeKey({ user: null }, b('app/1'), false))?.status).toBe(Status.Unauthenticated);
    await a.changeRolePermissions('app', [{ prefix: b('app/'), permission: Permission.Read }], true);
    expect((await c.stack.gate.authorizeKey(alice, b('app/1'), true))?.status).toBe(Status.PermissionDenied);
    expect(await c.stack.gate.authorizeKey(alice, b('app/1'), false)).toBeNull();
    await a.deleteRole('app');
    expect((await c.stack.gate.authorizeKey(alice, b('app/1'), false))?.status).toBe(Status.PermissionDenied);
    await a.deleteUser('alice');
    expect((await c.stack.gate.authorizeKey(alice, b('app/1'), false))?.status).toBe(Status.Unauthenticated);
  });

  it('decides a key request at once (authorizeKeyNow) exactly as authorizeKey does, and not before the auth state is known', async () => {
    const c = fakeAuthCluster();
    expect(c.stack.gate.authorizeKeyNow({ user: null }, b('k'), false)).toBeUndefined(); // not known yet: ask authorizeKey
    c.heartbeat();
    expect(c.stack.gate.authorizeKeyNow({ user: null }, b('k'), true)).toBeNull(); // disabled: everything allowed
    await c.enableWithRoot('rootpw');
    const a = c.stack.admin;
    await a.addRole('app');
    await a.changeRolePermissions('app', [{ prefix: b('app/'), permission: Permission.Read }], true);
    await a.addUser('alice', 'pw', ['app']);
    for (const [who, key, write] of [[{ user: 'alice' }, 'app/1', false], [{ user: 'alice' }, 'app/1', true], [{ user: 'alice' }, 'other', false], [{ user: null }, 'app/1', false], [{ user: 'nobody' }, 'app/1', false]] as const) {
      const now = c.stack.gate.authorizeKeyNow(who, b(key), write);
      expect(now).toEqual(await c.stack.gate.authorizeKey(who, b(key), write));
      expect(now === null).toBe(who.user === 'alice' && key === 'app/1' && !write);
    }
  });

  it('a password change ends the tokens issued before it', async () => {
    const c = fakeAuthCluster();
    await c.enableWithRoot('rootpw');
    const t = await c.stack.gate.issueToken('root');
    if (isRefusal(t)) throw new Error(t.message);
    expect(await c.stack.gate.checkToken(t.token)).toEqual({ user: 'root' });
    expect((await c.stack.admin.setPassword('root', 'new')).status).toBe(Status.Ok);
    expect(await c.stack.gate.checkToken(t.token)).toEqual({ status: Status.Unauthenticated, message: 'invalid or expired token' });
  });

  it('refuses changes past its config bounds and those the state forbids, before proposing', async () => {
    const c = fakeAuthCluster();
    c.heartbeat();
    expect((await c.stack.admin.setEnabled(true)).status).toBe(Status.ConditionFailed);
    for (let i = 0; i < 10; i++) expect((await c.stack.admin.addRole(`r${i}`)).status).toBe(Status.Ok);
    const over = await c.stack.admin.addRole('r10');
    expect(over.status).toBe(Status.TooLarge);
    expect(over.message).toMatch(/rolesMax/);
    expect((await c.stack.admin.addUser('bad name', 'pw')).status).toBe(Status.BadRequest);
    expect((await c.stack.admin.addUser('u', '')).status).toBe(Status.BadRequest);
  });

  it('creates the first root once and leaves an existing root alone', async () => {
    const c = fakeAuthCluster();
    c.heartbeat();
    expect((await c.stack.admin.bootstrapRoot('first'))?.status).toBe(Status.Ok);
    expect(await c.stack.admin.bootstrapRoot('second')).toBeNull();
    await c.stack.admin.setEnabled(true);
    expect(await c.stack.gate.checkPassword('root', 'first', 'a')).toEqual({ user: 'root' });
  });
});
