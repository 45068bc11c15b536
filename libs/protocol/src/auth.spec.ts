import {
  AUTH_LIMITS,
  AuthDeleteKind,
  Permission,
  PermissionsChange,
  RolesChange,
  applyAuthChange,
  authChangeOf,
  authCommand,
  decodeAuthState,
  emptyAuthState,
  encodeAuthState,
  type AuthChange,
  type AuthState,
} from './auth';
import { CommandCondition, CommandOp, decodeCommand, encodeCommand } from './command';
import { ProtocolError } from './constants';

const HASH = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
const userAdd = (name: string, roles: string[] = []): AuthChange => ({ op: 'userPut', name, ifAbsent: true, ifPresent: false, value: { passwordHash: HASH, rolesChange: RolesChange.Replace, roles } });
const roleAdd = (name: string, perms: [string, Permission][] = []): AuthChange => ({
  op: 'rolePut',
  name,
  ifAbsent: true,
  ifPresent: false,
  value: { change: PermissionsChange.Replace, permissions: perms.map(([p, permission]) => ({ prefix: Buffer.from(p), permission })) },
});

/** Applies changes in order; a refusal fails the test with its reason. */
function applyAll(changes: AuthChange[], from: AuthState = emptyAuthState()): AuthState {
  let s = from;
  for (const c of changes) {
    const r = applyAuthChange(s, c);
    if (!r.ok) throw new Error(r.reason);
    s = r.state;
  }
  return s;
}

const refusal = (s: AuthState, c: AuthChange): string | null => {
  const r = applyAuthChange(s, c);
  return r.ok ? null : r.reason;
};

describe('auth state', () => {
  it('round-trips through its encoding, users and roles in name order (one state, one encoding)', () => {
    const s = applyAll([roleAdd('b', [['app/', Permission.ReadWrite], ['', Permission.Read]]), roleAdd('a'), userAdd('zed', ['b']), userAdd('amy', ['a', 'b'])]);
    const bytes = encodeAuthState(s);
    const back = decodeAuthState(bytes);
    expect([...back.users.keys()]).toEqual(['amy', 'zed']);
    expect(back.users.get('amy')).toEqual({ name: 'amy', passwordHash: HASH, roles: ['a', 'b'] });
    expect(back.roles.get('b')!.permissions.map((p) => [Buffer.from(p.prefix).toString(), p.permission])).toEqual([
      ['', Permission.Read],
      ['app/', Permission.ReadWrite],
    ]);
    expect(encodeAuthState(back)).toEqual(bytes);
  });

  it('refuses a bad version, a bad name and trailing bytes with ProtocolError', () => {
    const b = encodeAuthState(applyAll([userAdd('u')]));
    expect(() => decodeAuthState(Buffer.concat([Buffer.from([2]), b.subarray(1)]))).toThrow(ProtocolError);
    expect(() => decodeAuthState(Buffer.concat([b, Buffer.from([0])]))).toThrow(ProtocolError);
    const bad = Buffer.from(b);
    bad[1 + 1 + 4 + 2] = 0x20; // the user name's first byte becomes a space
    expect(() => decodeAuthState(bad)).toThrow(ProtocolError);
  });
});

describe('applyAuthChange (etcd-style rules)', () => {
  it('enables only once user root holds role root; root cannot then lose the role or be deleted', () => {
    const s0 = applyAll([userAdd('root')]);
    expect(refusal(s0, { op: 'enable', value: { enabled: true } })).toMatch(/before user root exists with role root/);
    const s1 = applyAll([{ op: 'userPut', name: 'root', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.Add, roles: ['root'] } }, { op: 'enable', value: { enabled: true } }], s0);
    expect(s1.enabled).toBe(true);
    expect(refusal(s1, { op: 'delete', name: 'root', value: { kind: AuthDeleteKind.User } })).toMatch(/cannot be deleted/);
    expect(refusal(s1, { op: 'userPut', name: 'root', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.Remove, roles: ['root'] } })).toMatch(/keeps role root/);
    const s2 = applyAll([{ op: 'enable', value: { enabled: false } }, { op: 'delete', name: 'root', value: { kind: AuthDeleteKind.User } }], s1);
    expect(s2.enabled).toBe(false);
    expect(s2.users.size).toBe(0);
  });

  it('creates with IF_ABSENT, changes with IF_PRESENT, keeps the password when only roles change', () => {
    const s = applyAll([roleAdd('r'), userAdd('u')]);
    expect(refusal(s, userAdd('u'))).toMatch(/already exists/);
    expect(refusal(s, { op: 'userPut', name: 'v', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.Add, roles: ['r'] } })).toMatch(/does not exist/);
    expect(refusal(s, { op: 'userPut', name: 'v', ifAbsent: false, ifPresent: false, value: { rolesChange: RolesChange.None, roles: [] } })).toMatch(/needs a password/);
    expect(refusal(s, { op: 'userPut', name: 'u', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.Add, roles: ['nope'] } })).toMatch(/role nope does not exist/);
    const s2 = applyAll([{ op: 'userPut', name: 'u', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.Add, roles: ['r', 'root'] } }], s);
    expect(s2.users.get('u')).toEqual({ name: 'u', passwordHash: HASH, roles: ['r', 'root'] });
    expect(refusal(s2, roleAdd('r'))).toMatch(/already exists/);
    expect(refusal(s2, roleAdd('root'))).toMatch(/built in/);
  });

  it('grants replace the permission of an equal prefix; revoke removes it; deleting a role removes it from its users', () => {
    const grant = (perms: [string, Permission][], change = PermissionsChange.Grant): AuthChange => ({
      op: 'rolePut',
      name: 'r',
      ifAbsent: false,
      ifPresent: true,
      value: { change, permissions: perms.map(([p, permission]) => ({ prefix: Buffer.from(p), permission })) },
    });
    const s = applyAll([roleAdd('r', [['a/', Permission.Read]]), grant([['a/', Permission.ReadWrite], ['b/', Permission.Write]]), userAdd('u', ['r'])]);
    expect(s.roles.get('r')!.permissions.map((p) => [Buffer.from(p.prefix).toString(), p.permission])).toEqual([
      ['a/', Permission.ReadWrite],
      ['b/', Permission.Write],
    ]);
    const s2 = applyAll([grant([['a/', Permission.Read]], PermissionsChange.Revoke)], s);
    expect(s2.roles.get('r')!.permissions.map((p) => Buffer.from(p.prefix).toString())).toEqual(['b/']);
    const s3 = applyAll([{ op: 'delete', name: 'r', value: { kind: AuthDeleteKind.Role } }], s2);
    expect(s3.roles.size).toBe(0);
    expect(s3.users.get('u')!.roles).toEqual([]);
    expect(s.roles.get('r')!.permissions).toHaveLength(2); // the input state is never modified
  });

  it('refuses past the hard bounds (permissions per role)', () => {
    const perms: [string, Permission][] = Array.from({ length: AUTH_LIMITS.permissionsPerRoleMax + 1 }, (_, i) => [`p${i}/`, Permission.Read]);
    expect(refusal(emptyAuthState(), roleAdd('r', perms))).toMatch(/more than 256 permissions/);
  });
});

describe('auth commands (ops 9..12)', () => {
  it('round-trip through the command codec with their conditions', () => {
    const changes: AuthChange[] = [
      { op: 'enable', value: { enabled: true } },
      userAdd('alice', ['r']),
      { op: 'userPut', name: 'alice', ifAbsent: false, ifPresent: true, value: { rolesChange: RolesChange.None, roles: [], passwordHash: HASH } },
      roleAdd('r', [['k/', Permission.Write]]),
      { op: 'delete', name: 'r', value: { kind: AuthDeleteKind.Role } },
    ];
    for (const c of changes) expect(authChangeOf(decodeCommand(encodeCommand(authCommand(c))))).toEqual(c);
    expect(encodeCommand(authCommand(changes[0]))).toEqual(Buffer.from([1, 1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1]));
    expect(encodeCommand(authCommand(userAdd('a'))).subarray(0, 3)).toEqual(Buffer.from([1, 1, CommandOp.UserPut | (CommandCondition.IfAbsent << 4)]));
  });

  it('refuses a revision condition on an auth op and an existence condition on AuthEnable / AuthDelete', () => {
    expect(() => encodeCommand({ op: CommandOp.UserPut, key: Buffer.from('a'), value: Buffer.alloc(0), condition: CommandCondition.IfRevision, revision: 1 })).toThrow(RangeError);
    expect(() => decodeCommand(Buffer.from([1, 1, CommandOp.AuthDelete | (CommandCondition.IfAbsent << 4), 0, 0, 0, 1, 0x61, 0, 0, 0, 1, 1]))).toThrow(ProtocolError);
    expect(() => decodeCommand(Buffer.from([1, 1, CommandOp.UserPut | (CommandCondition.IfRevision << 4), 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(ProtocolError);
    expect(() => authChangeOf({ op: CommandOp.UserPut, key: Buffer.from('bad name'), value: Buffer.from([0, 0, 0, 0]) })).toThrow(ProtocolError);
  });
});
