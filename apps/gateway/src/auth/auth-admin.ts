import { AUTH_LIMITS, AuthDeleteKind, PermissionsChange, ROOT_ROLE, ROOT_USER, RolesChange, Status, applyAuthChange, authCommand, isAuthName, type AuthChange, type AuthState, type RolePermission } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import type { WritePath } from '../paths/write-path';
import type { AuthView } from './auth-view';
import type { AuthChangeLimits } from './gateway-auth';
import { PASSWORD_BYTES_MAX, hashPassword } from './passwords';

/** The answer to an auth change: OK at `revision` (the new auth revision), or a status and why. */
export interface AuthChangeResult {
  status: Status;
  revision: number;
  message: string;
}

/**
 * Auth administration at a gateway (users, roles, enable/disable; docs/security.md): each request
 * becomes one auth change (libs/protocol auth.ts) checked against this gateway's current state and
 * its config bounds (usersMax, rolesMax, permissionsPerRoleMax), proposed through the Raft log as
 * command op 9..12, and answered once a storage node applied it; then this gateway reloads the
 * state at the change's index, so its own next request already sees it. Passwords are hashed here
 * (scrypt) and only the hash is proposed. Callers check that the requester is an administrator.
 */
export class AuthAdmin {
  constructor(
    private readonly deps: {
      view: AuthView;
      writes: Pick<WritePath, 'submit'>;
      limits: AuthChangeLimits;
      scryptCost: number;
      readyTimeoutMs: number;
      log?: Logger;
    },
  ) {}

  async addUser(name: string, password: string, roles: string[] = []): Promise<AuthChangeResult> {
    const bad = checkName(name) ?? checkPassword(password);
    if (bad) return bad;
    const passwordHash = await hashPassword(password, this.deps.scryptCost);
    return this.propose({ op: 'userPut', name, ifAbsent: true, ifPresent: false, value: { passwordHash, rolesChange: RolesChange.Replace, roles } });
  }

  async setPassword(name: string, password: string): Promise<AuthChangeResult> {
    const bad = checkName(name) ?? checkPassword(password);
    if (bad) return bad;
    const passwordHash = await hashPassword(password, this.deps.scryptCost);
    return this.propose({ op: 'userPut', name, ifAbsent: false, ifPresent: true, value: { passwordHash, rolesChange: RolesChange.None, roles: [] } });
  }

  /** Grants (`grant` true) or revokes roles of a user. */
  changeUserRoles(name: string, roles: string[], grant: boolean): Promise<AuthChangeResult> {
    return this.propose({ op: 'userPut', name, ifAbsent: false, ifPresent: true, value: { rolesChange: grant ? RolesChange.Add : RolesChange.Remove, roles } });
  }

  deleteUser(name: string): Promise<AuthChangeResult> {
    return this.propose({ op: 'delete', name, value: { kind: AuthDeleteKind.User } });
  }

  addRole(name: string): Promise<AuthChangeResult> {
    return this.propose({ op: 'rolePut', name, ifAbsent: true, ifPresent: false, value: { change: PermissionsChange.Replace, permissions: [] } });
  }

  /** Grants permissions (replacing the permission of an equal prefix) or revokes the permissions on their prefixes. */
  changeRolePermissions(name: string, permissions: RolePermission[], grant: boolean): Promise<AuthChangeResult> {
    return this.propose({ op: 'rolePut', name, ifAbsent: false, ifPresent: true, value: { change: grant ? PermissionsChange.Grant : PermissionsChange.Revoke, permissions } });
  }

  deleteRole(name: string): Promise<AuthChangeResult> {
    return this.propose({ op: 'delete', name, value: { kind: AuthDeleteKind.Role } });
  }

  setEnabled(enabled: boolean): Promise<AuthChangeResult> {
    return this.propose({ op: 'enable', value: { enabled } });
  }

  /**
   * Creates user `root` with role `root` and `password` when no user `root` exists yet (the first
   * root credential: CAIRN_ROOT_PASSWORD or `gateway.auth.rootPasswordFile`); never changes an
   * existing root. Several gateways may race: IF_ABSENT makes all but one a no-op.
   */
  async bootstrapRoot(password: string): Promise<AuthChangeResult | null> {
    if (!(await this.deps.view.ready(this.deps.readyTimeoutMs))) return { status: Status.Unavailable, revision: 0, message: 'the auth state is not loaded yet' };
    if (this.deps.view.current()!.state.users.has(ROOT_USER)) return null;
    return this.addUser(ROOT_USER, password, [ROOT_ROLE]);
  }

  /** Checks `change` against the current state and the config bounds, proposes it, waits for it to apply. */
  async propose(change: AuthChange): Promise<AuthChangeResult> {
    const { view, writes } = this.deps;
    if (!(await view.ready(this.deps.readyTimeoutMs))) return { status: Status.Unavailable, revision: 0, message: 'the auth state is not loaded yet' };
    if ('name' in change) {
      const bad = checkName(change.name);
      if (bad) return bad;
    }
    const before = view.current()!.state;
    const pre = applyAuthChange(before, change);
    if (!pre.ok) return { status: Status.ConditionFailed, revision: 0, message: pre.reason };
    const over = this.overLimits(before, pre.state);
    if (over) return { status: Status.TooLarge, revision: 0, message: over };
    const w = await writes.submit(authCommand(change));
    if (w.status === Status.ConditionFailed) {
      // Refused at apply: the state changed between the check and the apply. Say why from the new state.
      await view.refresh(w.revision);
      const again = applyAuthChange(view.current()!.state, change);
      return { status: Status.ConditionFailed, revision: w.revision, message: again.ok ? 'refused at apply (a concurrent auth change); try again' : again.reason };
    }
    if (w.status !== Status.Ok) return { status: w.status, revision: 0, message: w.message };
    await view.refresh(w.revision);
    this.deps.log?.info({ change: describe(change), authRevision: w.revision }, 'auth change applied');
    return { status: Status.Ok, revision: w.revision, message: '' };
  }

  private overLimits(before: AuthState, after: AuthState): string | null {
    const { usersMax, rolesMax, permissionsPerRoleMax } = this.deps.limits;
    if (after.users.size > before.users.size && after.users.size > usersMax) return `more than gateway.auth.usersMax (${usersMax}) users`;
    if (after.roles.size > before.roles.size && after.roles.size > rolesMax) return `more than gateway.auth.rolesMax (${rolesMax}) roles`;
    for (const r of after.roles.values()) {
      const was = before.roles.get(r.name)?.permissions.length ?? 0;
      if (r.permissions.length > was && r.permissions.length > permissionsPerRoleMax) return `more than gateway.auth.permissionsPerRoleMax (${permissionsPerRoleMax}) permissions in role ${r.name}`;
    }
    return null;
  }
}

function checkName(name: string): AuthChangeResult | null {
  return isAuthName(name) ? null : { status: Status.BadRequest, revision: 0, message: `a user or role name is 1-${AUTH_LIMITS.nameBytesMax} of [A-Za-z0-9_.@-]` };
}

function checkPassword(password: string): AuthChangeResult | null {
  const n = Buffer.byteLength(password, 'utf8');
  return n >= 1 && n <= PASSWORD_BYTES_MAX ? null : { status: Status.BadRequest, revision: 0, message: `a password is 1-${PASSWORD_BYTES_MAX} bytes` };
}

/** A log line's view of a change: names and kinds, never a hash. */
function describe(c: AuthChange): string {
  switch (c.op) {
    case 'enable':
      return c.value.enabled ? 'auth enable' : 'auth disable';
    case 'userPut':
      return `user ${c.name}${c.value.passwordHash ? ' password' : ''}${c.value.rolesChange ? ` roles ${RolesChange[c.value.rolesChange]} ${c.value.roles.join(',')}` : ''}`;
    case 'rolePut':
      return `role ${c.name} ${PermissionsChange[c.value.change]} ${c.value.permissions.length} permissions`;
    case 'delete':
      return `delete ${c.value.kind === AuthDeleteKind.User ? 'user' : 'role'} ${c.name}`;
  }
}
