/**
 * Users, roles and key-prefix permissions: replicated state, changed only through the Raft log
 * (command ops 9..12, docs/protocol.md "Auth commands") and applied by every storage node in log
 * order with `applyAuthCommand`, so every node (and every gateway that loads the state) agrees.
 * Model after etcd's auth store (users hold roles, roles hold key permissions, the `root` user
 * with the built-in `root` role administers) and Redis ACL `~prefix*` key patterns; not a copy of
 * either. Passwords are never here in clear: `passwordHash` is the gateway's salted scrypt hash.
 *
 * The whole state is one engine value (`encodeAuthState`) stored under `AUTH_STATE_KEY`, the
 * engine's empty key, which no client key can reach (every door refuses an empty key, and
 * storage node range reads start at 0x00). So it survives restarts, travels with engine snapshots
 * (storage node bootstrap, `cairn snapshot save/restore`), and its mod revision is the **auth
 * revision**: the Raft index of the last applied auth change (0 = never changed: auth disabled).
 */
import { ByteReader, ByteWriter, bytesFieldBytes, stringFieldBytes } from './bytes';
import { ProtocolError } from './constants';
import { CommandCondition, CommandOp, type Command } from './command';

/** The engine key holding the encoded AuthState: the empty key (unreachable by clients). */
export const AUTH_STATE_KEY: Uint8Array = new Uint8Array(0);
/** The administrator: user `root` must exist, holding role `root`, before auth can be enabled (etcd's rule). */
export const ROOT_USER = 'root';
/** The built-in role: every key read and write, plus administration. It always exists and holds no listed permissions. */
export const ROOT_ROLE = 'root';

/** Hard ceilings the applier enforces (the gateway's config limits are ≤ these). */
export const AUTH_LIMITS = Object.freeze({
  /** Users, count. */
  usersMax: 10_000,
  /** Roles (root not counted), count. */
  rolesMax: 1_000,
  /** Permissions per role, count. */
  permissionsPerRoleMax: 256,
  /** Roles per user, count. */
  rolesPerUserMax: 32,
  /** A user or role name, bytes (ASCII letters, digits, `_ . @ -`). */
  nameBytesMax: 64,
  /** A stored password hash, bytes (ASCII). */
  passwordHashBytesMax: 256,
  /** A permission's key prefix, bytes (the keyBytesMax ceiling). */
  prefixBytesMax: 64 * 1024,
  /** The encoded state, bytes: it travels in one read reply on the bus. */
  stateBytesMax: 512 * 1024,
});

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const HASH = /^[\x21-\x7e]{1,256}$/;

/** Whether `name` is a valid user or role name (1..64 ASCII letters, digits, `_ . @ -`). */
export function isAuthName(name: string): boolean {
  return NAME.test(name);
}

/** What a role permits on its key prefix. */
export enum Permission {
  Read = 1,
  Write = 2,
  ReadWrite = 3,
}

export interface RolePermission {
  /** Every key starting with these bytes (empty = every key). */
  prefix: Uint8Array;
  permission: Permission;
}

export interface AuthUser {
  name: string;
  /** The gateway's scrypt hash string (`scrypt$N$r$p$salt$hash`, docs/security.md). */
  passwordHash: string;
  /** Role names, sorted, no duplicates. */
  roles: string[];
}

export interface AuthRole {
  name: string;
  /** Sorted by prefix bytes, one entry per prefix. */
  permissions: RolePermission[];
}

/** The replicated auth state. Users and roles keyed by name. */
export interface AuthState {
  enabled: boolean;
  users: Map<string, AuthUser>;
  roles: Map<string, AuthRole>;
}

export function emptyAuthState(): AuthState {
  return { enabled: false, users: new Map(), roles: new Map() };
}

const STATE_VERSION = 1;

/** Encoded size of `s`, bytes. */
export function authStateBytes(s: AuthState): number {
  let n = 1 + 1 + 4 + 4;
  for (const u of s.users.values()) {
    n += stringFieldBytes(u.name) + stringFieldBytes(u.passwordHash) + 2;
    for (const r of u.roles) n += stringFieldBytes(r);
  }
  for (const r of s.roles.values()) {
    n += stringFieldBytes(r.name) + 2;
    for (const p of r.permissions) n += 1 + bytesFieldBytes(p.prefix);
  }
  return n;
}

const byName = <T extends { name: string }>(m: Map<string, T>): T[] => [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/**
 * `u8 version(1) | bool enabled | u32 users | (string name | string passwordHash | u16 roles |
 * string role*)* | u32 roles | (string name | u16 permissions | (u8 permission | bytes prefix)*)*`,
 * users and roles in name order (one state, one encoding).
 */
export function encodeAuthState(s: AuthState): Buffer {
  const w = new ByteWriter(authStateBytes(s)).u8(STATE_VERSION).bool(s.enabled).u32(s.users.size);
  for (const u of byName(s.users)) {
    w.string(u.name).string(u.passwordHash).u16(u.roles.length);
    for (const r of u.roles) w.string(r);
  }
  w.u32(s.roles.size);
  for (const r of byName(s.roles)) {
    w.string(r.name).u16(r.permissions.length);
    for (const p of r.permissions) w.u8(p.permission).bytes(p.prefix);
  }
  return w.finish();
}

/** @throws ProtocolError on a truncated or malformed state (bad version, name, permission). */
export function decodeAuthState(b: Uint8Array): AuthState {
  const r = new ByteReader(b);
  const version = r.u8();
  if (version !== STATE_VERSION) throw new ProtocolError(`unsupported auth state version ${version}`);
  const s: AuthState = { enabled: r.bool(), users: new Map(), roles: new Map() };
  const users = r.count(6);
  for (let i = 0; i < users; i++) {
    const name = readName(r);
    const passwordHash = r.string();
    const n = r.u16();
    const roles: string[] = [];
    for (let j = 0; j < n; j++) roles.push(readName(r));
    s.users.set(name, { name, passwordHash, roles });
  }
  const roles = r.count(4);
  for (let i = 0; i < roles; i++) {
    const name = readName(r);
    const n = r.u16();
    const permissions: RolePermission[] = [];
    for (let j = 0; j < n; j++) permissions.push({ permission: readPermission(r), prefix: Buffer.from(r.bytes()) });
    s.roles.set(name, { name, permissions });
  }
  r.end();
  return s;
}

function readName(r: ByteReader): string {
  const name = r.string();
  if (!isAuthName(name)) throw new ProtocolError(`invalid auth name ${JSON.stringify(name.slice(0, 80))}`);
  return name;
}

function readPermission(r: ByteReader): Permission {
  const p = r.u8();
  if (p !== Permission.Read && p !== Permission.Write && p !== Permission.ReadWrite) throw new ProtocolError(`unknown permission ${p}`);
  return p;
}

// ---- command values --------------------------------------------------------------------------

/** How a UserPut changes the user's roles. */
export enum RolesChange {
  None = 0,
  Replace = 1,
  Add = 2,
  Remove = 3,
}

/** How a RolePut changes the role's permissions. */
export enum PermissionsChange {
  /** The role's permissions become exactly these (create: IF_ABSENT). */
  Replace = 0,
  /** Add these, replacing the permission of an equal prefix. */
  Grant = 1,
  /** Remove the permissions on these prefixes (their `permission` is ignored). */
  Revoke = 2,
}

export enum AuthDeleteKind {
  User = 1,
  Role = 2,
}

/** Value of an AuthEnable command (op 9): `u8 enabled` (0 disable, 1 enable). */
export interface AuthEnableValue {
  enabled: boolean;
}
/** Value of a UserPut command (op 10; key = the user name): `bool hasHash | [string passwordHash] | u8 rolesChange | u16 n | string role*`. */
export interface UserPutValue {
  passwordHash?: string;
  rolesChange: RolesChange;
  roles: string[];
}
/** Value of a RolePut command (op 11; key = the role name): `u8 change | u16 n | (u8 permission | bytes prefix)*`. */
export interface RolePutValue {
  change: PermissionsChange;
  permissions: RolePermission[];
}
/** Value of an AuthDelete command (op 12; key = the name): `u8 kind` (1 user, 2 role). */
export interface AuthDeleteValue {
  kind: AuthDeleteKind;
}

export function encodeAuthEnableValue(v: AuthEnableValue): Buffer {
  return Buffer.from([v.enabled ? 1 : 0]);
}

export function decodeAuthEnableValue(b: Uint8Array): AuthEnableValue {
  const r = new ByteReader(b);
  const v = r.u8();
  if (v > 1) throw new ProtocolError(`auth enable value must be 0 or 1, got ${v}`);
  r.end();
  return { enabled: v === 1 };
}

export function encodeUserPutValue(v: UserPutValue): Buffer {
  let size = 1 + 1 + 2 + (v.passwordHash !== undefined ? stringFieldBytes(v.passwordHash) : 0);
  for (const r of v.roles) size += stringFieldBytes(r);
  const w = new ByteWriter(size).bool(v.passwordHash !== undefined);
  if (v.passwordHash !== undefined) w.string(v.passwordHash);
  w.u8(v.rolesChange).u16(v.roles.length);
  for (const r of v.roles) w.string(r);
  return w.finish();
}

export function decodeUserPutValue(b: Uint8Array): UserPutValue {
  const r = new ByteReader(b);
  const v: UserPutValue = { rolesChange: RolesChange.None, roles: [] };
  if (r.bool()) {
    v.passwordHash = r.string();
    if (!HASH.test(v.passwordHash)) throw new ProtocolError('invalid password hash');
  }
  v.rolesChange = r.u8();
  if (v.rolesChange > RolesChange.Remove) throw new ProtocolError(`unknown roles change ${v.rolesChange as number}`);
  const n = r.u16();
  for (let i = 0; i < n; i++) v.roles.push(readName(r));
  r.end();
  return v;
}

export function encodeRolePutValue(v: RolePutValue): Buffer {
  let size = 1 + 2;
  for (const p of v.permissions) size += 1 + bytesFieldBytes(p.prefix);
  const w = new ByteWriter(size).u8(v.change).u16(v.permissions.length);
  for (const p of v.permissions) w.u8(p.permission).bytes(p.prefix);
  return w.finish();
}

export function decodeRolePutValue(b: Uint8Array): RolePutValue {
  const r = new ByteReader(b);
  const change = r.u8();
  if (change > PermissionsChange.Revoke) throw new ProtocolError(`unknown permissions change ${change}`);
  const n = r.u16();
  const permissions: RolePermission[] = [];
  for (let i = 0; i < n; i++) {
    const permission = readPermission(r);
    const prefix = Buffer.from(r.bytes());
    if (prefix.length > AUTH_LIMITS.prefixBytesMax) throw new ProtocolError(`permission prefix of ${prefix.length} bytes exceeds ${AUTH_LIMITS.prefixBytesMax}`);
    permissions.push({ permission, prefix });
  }
  r.end();
  return { change, permissions };
}

export function encodeAuthDeleteValue(v: AuthDeleteValue): Buffer {
  return Buffer.from([v.kind]);
}

export function decodeAuthDeleteValue(b: Uint8Array): AuthDeleteValue {
  const r = new ByteReader(b);
  const kind = r.u8();
  if (kind !== AuthDeleteKind.User && kind !== AuthDeleteKind.Role) throw new ProtocolError(`unknown auth delete kind ${kind}`);
  r.end();
  return { kind };
}

// ---- apply -----------------------------------------------------------------------------------

/** An auth change as the applier sees it (the command's op, condition, key and decoded value). */
export type AuthChange =
  | { op: 'enable'; value: AuthEnableValue }
  | { op: 'userPut'; name: string; ifAbsent: boolean; ifPresent: boolean; value: UserPutValue }
  | { op: 'rolePut'; name: string; ifAbsent: boolean; ifPresent: boolean; value: RolePutValue }
  | { op: 'delete'; name: string; value: AuthDeleteValue };

/** Result of applying an auth change: the new state, or why it was refused (nothing changes). */
export type AuthApplyResult = { ok: true; state: AuthState } | { ok: false; reason: string };

const cmpBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b);

function cloneState(s: AuthState): AuthState {
  return { enabled: s.enabled, users: new Map(s.users), roles: new Map(s.roles) };
}

/**
 * Applies one change to `s` (not modified): deterministic, so every storage node computes the same
 * state from the same log, and the gateway uses it to check a change before proposing it. Refusals
 * (etcd's rules where they exist): enable without user `root` holding role `root`; a user or role
 * that exists (IF_ABSENT) or does not (IF_PRESENT, delete); an unknown role granted to a user;
 * changing the built-in `root` role; deleting `root` or revoking its `root` role while enabled; a
 * new user without a password; past AUTH_LIMITS (counts or the encoded state's bytes).
 */
export function applyAuthChange(s: AuthState, c: AuthChange): AuthApplyResult {
  const r = applyUnbounded(s, c);
  if (!r.ok) return r;
  const st = r.state;
  if (st.users.size > AUTH_LIMITS.usersMax) return refuse(`more than ${AUTH_LIMITS.usersMax} users`);
  if (st.roles.size > AUTH_LIMITS.rolesMax) return refuse(`more than ${AUTH_LIMITS.rolesMax} roles`);
  if (authStateBytes(st) > AUTH_LIMITS.stateBytesMax) return refuse(`the auth state would exceed ${AUTH_LIMITS.stateBytesMax} bytes`);
  return r;
}

function refuse(reason: string): AuthApplyResult {
  return { ok: false, reason };
}

function rootIsAdmin(s: AuthState): boolean {
  return s.users.get(ROOT_USER)?.roles.includes(ROOT_ROLE) ?? false;
}

function applyUnbounded(s: AuthState, c: AuthChange): AuthApplyResult {
  switch (c.op) {
    case 'enable': {
      if (c.value.enabled && !rootIsAdmin(s)) return refuse(`auth cannot be enabled before user ${ROOT_USER} exists with role ${ROOT_ROLE}`);
      return { ok: true, state: { ...cloneState(s), enabled: c.value.enabled } };
    }
    case 'userPut':
      return putUser(s, c.name, c.ifAbsent, c.ifPresent, c.value);
    case 'rolePut':
      return putRole(s, c.name, c.ifAbsent, c.ifPresent, c.value);
    case 'delete':
      return c.value.kind === AuthDeleteKind.User ? deleteUser(s, c.name) : deleteRole(s, c.name);
  }
}

function putUser(s: AuthState, name: string, ifAbsent: boolean, ifPresent: boolean, v: UserPutValue): AuthApplyResult {
  const old = s.users.get(name);
  if (ifAbsent && old) return refuse(`user ${name} already exists`);
  if (ifPresent && !old) return refuse(`user ${name} does not exist`);
  const passwordHash = v.passwordHash ?? old?.passwordHash;
  if (passwordHash === undefined) return refuse(`a new user needs a password`);
  for (const r of v.roles) if (r !== ROOT_ROLE && !s.roles.has(r)) return refuse(`role ${r} does not exist`);
  let roles = new Set(old?.roles ?? []);
  if (v.rolesChange === RolesChange.Replace) roles = new Set(v.roles);
  else if (v.rolesChange === RolesChange.Add) for (const r of v.roles) roles.add(r);
  else if (v.rolesChange === RolesChange.Remove) for (const r of v.roles) roles.delete(r);
  if (roles.size > AUTH_LIMITS.rolesPerUserMax) return refuse(`more than ${AUTH_LIMITS.rolesPerUserMax} roles for one user`);
  if (s.enabled && name === ROOT_USER && !roles.has(ROOT_ROLE)) return refuse(`user ${ROOT_USER} keeps role ${ROOT_ROLE} while auth is enabled`);
  const next = cloneState(s);
  next.users.set(name, { name, passwordHash, roles: [...roles].sort() });
  return { ok: true, state: next };
}

function putRole(s: AuthState, name: string, ifAbsent: boolean, ifPresent: boolean, v: RolePutValue): AuthApplyResult {
  if (name === ROOT_ROLE) return refuse(`role ${ROOT_ROLE} is built in and cannot be changed`);
  const old = s.roles.get(name);
  if (ifAbsent && old) return refuse(`role ${name} already exists`);
  if (ifPresent && !old) return refuse(`role ${name} does not exist`);
  const perms = new Map<string, RolePermission>();
  const keyOf = (p: RolePermission) => Buffer.from(p.prefix).toString('latin1');
  if (v.change !== PermissionsChange.Replace) for (const p of old?.permissions ?? []) perms.set(keyOf(p), p);
  for (const p of v.permissions) {
    if (v.change === PermissionsChange.Revoke) perms.delete(keyOf(p));
    else perms.set(keyOf(p), { prefix: Buffer.from(p.prefix), permission: p.permission });
  }
  if (perms.size > AUTH_LIMITS.permissionsPerRoleMax) return refuse(`more than ${AUTH_LIMITS.permissionsPerRoleMax} permissions in one role`);
  const next = cloneState(s);
  next.roles.set(name, { name, permissions: [...perms.values()].sort((a, b) => cmpBytes(a.prefix, b.prefix)) });
  return { ok: true, state: next };
}

function deleteUser(s: AuthState, name: string): AuthApplyResult {
  if (!s.users.has(name)) return refuse(`user ${name} does not exist`);
  if (s.enabled && name === ROOT_USER) return refuse(`user ${ROOT_USER} cannot be deleted while auth is enabled`);
  const next = cloneState(s);
  next.users.delete(name);
  return { ok: true, state: next };
}

function deleteRole(s: AuthState, name: string): AuthApplyResult {
  if (name === ROOT_ROLE) return refuse(`role ${ROOT_ROLE} is built in and cannot be deleted`);
  if (!s.roles.has(name)) return refuse(`role ${name} does not exist`);
  const next = cloneState(s);
  next.roles.delete(name);
  // As etcd's RoleDelete: the role leaves every user holding it.
  for (const [n, u] of next.users) if (u.roles.includes(name)) next.users.set(n, { ...u, roles: u.roles.filter((r) => r !== name) });
  return { ok: true, state: next };
}

/**
 * The auth change a command carries (ops 9..12), its value decoded.
 * @throws ProtocolError when `c` is not an auth op, or its key or value is malformed.
 */
export function authChangeOf(c: Command): AuthChange {
  const name = Buffer.from(c.key).toString('latin1');
  const ifAbsent = c.condition === CommandCondition.IfAbsent;
  const ifPresent = c.condition === CommandCondition.IfPresent;
  if (c.op === CommandOp.AuthEnable) return { op: 'enable', value: decodeAuthEnableValue(c.value) };
  if (!isAuthName(name)) throw new ProtocolError(`invalid auth name in op ${c.op}`);
  if (c.op === CommandOp.UserPut) return { op: 'userPut', name, ifAbsent, ifPresent, value: decodeUserPutValue(c.value) };
  if (c.op === CommandOp.RolePut) return { op: 'rolePut', name, ifAbsent, ifPresent, value: decodeRolePutValue(c.value) };
  if (c.op === CommandOp.AuthDelete) return { op: 'delete', name, value: decodeAuthDeleteValue(c.value) };
  throw new ProtocolError(`op ${c.op} is not an auth change`);
}

/** The command that proposes `change` (the inverse of `authChangeOf`). */
export function authCommand(change: AuthChange): Command {
  const condition = (x: { ifAbsent: boolean; ifPresent: boolean }) => (x.ifAbsent ? { condition: CommandCondition.IfAbsent } : x.ifPresent ? { condition: CommandCondition.IfPresent } : {});
  switch (change.op) {
    case 'enable':
      return { op: CommandOp.AuthEnable, key: new Uint8Array(0), value: encodeAuthEnableValue(change.value) };
    case 'userPut':
      return { op: CommandOp.UserPut, key: Buffer.from(change.name, 'latin1'), value: encodeUserPutValue(change.value), ...condition(change) };
    case 'rolePut':
      return { op: CommandOp.RolePut, key: Buffer.from(change.name, 'latin1'), value: encodeRolePutValue(change.value), ...condition(change) };
    case 'delete':
      return { op: CommandOp.AuthDelete, key: Buffer.from(change.name, 'latin1'), value: encodeAuthDeleteValue(change.value) };
  }
}
