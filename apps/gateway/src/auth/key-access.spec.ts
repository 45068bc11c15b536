import { Permission, emptyAuthState, type AuthState } from '@cairn/protocol';
import { KeyAccess } from './key-access';

const b = (s: string) => Buffer.from(s);

function state(): AuthState {
  const s = emptyAuthState();
  s.roles.set('app', { name: 'app', permissions: [{ prefix: b('app/'), permission: Permission.ReadWrite }, { prefix: b('cfg/'), permission: Permission.Read }] });
  s.roles.set('logs', { name: 'logs', permissions: [{ prefix: b('log/'), permission: Permission.Write }, { prefix: b('app0'), permission: Permission.Read }] });
  s.users.set('alice', { name: 'alice', passwordHash: 'x', roles: ['app', 'logs'] });
  s.users.set('admin', { name: 'admin', passwordHash: 'x', roles: ['root'] });
  s.users.set('nobody', { name: 'nobody', passwordHash: 'x', roles: [] });
  return s;
}

describe('KeyAccess', () => {
  it('checks read and write per key prefix, from every role of the user', () => {
    const a = KeyAccess.of(state(), 'alice')!;
    expect(a.admin).toBe(false);
    expect(a.canRead(b('app/x'))).toBe(true);
    expect(a.canWrite(b('app/x'))).toBe(true);
    expect(a.canRead(b('cfg/x'))).toBe(true);
    expect(a.canWrite(b('cfg/x'))).toBe(false);
    expect(a.canWrite(b('log/1'))).toBe(true);
    expect(a.canRead(b('log/1'))).toBe(false);
    expect(a.canRead(b('app'))).toBe(false);
    expect(a.canRead(b('zzz'))).toBe(false);
  });

  it('allows a range only inside what may be read, merging adjacent prefixes', () => {
    const a = KeyAccess.of(state(), 'alice')!;
    expect(a.canReadRange(b('app/'), b('app0'))).toBe(true);
    // app/ and app0 are adjacent: [app/, app1) is covered by the two together.
    expect(a.canReadRange(b('app/a'), b('app1'))).toBe(true);
    expect(a.canReadRange(b('app/a'), b('app2'))).toBe(false);
    expect(a.canReadRange(b('app/'), null)).toBe(false);
    expect(a.canReadRange(b('cfg/'), b('cfg0'))).toBe(true);
    expect(a.canReadRange(b('a'), b('b'))).toBe(false);
  });

  it('role root may do everything and administer; a user without roles nothing; an unknown user is null', () => {
    const root = KeyAccess.of(state(), 'admin')!;
    expect(root.admin).toBe(true);
    expect(root.canReadRange(b(''), null)).toBe(true);
    const none = KeyAccess.of(state(), 'nobody')!;
    expect(none.canRead(b('app/x'))).toBe(false);
    expect(none.admin).toBe(false);
    expect(KeyAccess.of(state(), 'mallory')).toBeNull();
  });

  it('an empty prefix covers every key', () => {
    const s = state();
    s.roles.set('all', { name: 'all', permissions: [{ prefix: b(''), permission: Permission.Read }] });
    s.users.set('reader', { name: 'reader', passwordHash: 'x', roles: ['all'] });
    const a = KeyAccess.of(s, 'reader')!;
    expect(a.canRead(b('\x00'))).toBe(true);
    expect(a.canReadRange(b('\x00'), null)).toBe(true);
    expect(a.canWrite(b('a'))).toBe(false);
  });
});
