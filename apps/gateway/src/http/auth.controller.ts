import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { Permission, Status, type RolePermission } from '@cairn/protocol';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional, IsString, MaxLength, MinLength, ValidateNested } from 'class-validator';
import type { Request } from 'express';
import type { AuthChangeResult } from '../auth/auth-admin';
import { isRefusal } from '../auth/gateway-auth';
import { PASSWORD_BYTES_MAX } from '../auth/passwords';
import { CairnHttpException } from './errors';
import { identityOf } from './http-auth';
import { HTTP_DEPS, type HttpDeps } from './http-deps';

/** Roles named in one request, at most (the applier's rolesPerUserMax). */
const ROLES_PER_REQUEST_MAX = 32;
/** Permissions in one request, at most (the applier's permissionsPerRoleMax). */
const PERMISSIONS_PER_REQUEST_MAX = 256;

/** `PUT /v1/auth/users/:name` body. */
export class PutUserBody {
  @IsString() @MinLength(1) @MaxLength(PASSWORD_BYTES_MAX) password!: string;
  @IsOptional() @IsArray() @ArrayMaxSize(ROLES_PER_REQUEST_MAX) @IsString({ each: true }) roles?: string[];
}

/** `POST /v1/auth/users/:name/password` body. */
export class PasswordBody {
  @IsString() @MinLength(1) @MaxLength(PASSWORD_BYTES_MAX) password!: string;
}

/** `POST /v1/auth/users/:name/roles` body: roles to grant or revoke. */
export class UserRolesBody {
  @IsOptional() @IsArray() @ArrayMaxSize(ROLES_PER_REQUEST_MAX) @IsString({ each: true }) grant?: string[];
  @IsOptional() @IsArray() @ArrayMaxSize(ROLES_PER_REQUEST_MAX) @IsString({ each: true }) revoke?: string[];
}

/** One key-prefix permission: `prefix` as UTF-8 text ("" = every key). */
export class PermissionItem {
  @IsString() @MaxLength(64 * 1024) prefix!: string;
  @IsOptional() @IsIn(['read', 'write', 'readwrite']) permission?: 'read' | 'write' | 'readwrite';
}

/** `POST /v1/auth/roles/:name/permissions` body. */
export class RolePermissionsBody {
  @IsOptional() @IsArray() @ArrayMaxSize(PERMISSIONS_PER_REQUEST_MAX) @ValidateNested({ each: true }) @Type(() => PermissionItem) grant?: PermissionItem[];
  @IsOptional() @IsArray() @ArrayMaxSize(PERMISSIONS_PER_REQUEST_MAX) @ValidateNested({ each: true }) @Type(() => PermissionItem) revoke?: PermissionItem[];
}

/** `PUT /v1/auth/enabled` body. */
export class EnabledBody {
  @IsBoolean() enabled!: boolean;
}

const PERMISSION_OF = { read: Permission.Read, write: Permission.Write, readwrite: Permission.ReadWrite } as const;
const PERMISSION_NAME: Record<Permission, string> = { [Permission.Read]: 'read', [Permission.Write]: 'write', [Permission.ReadWrite]: 'readwrite' };

function permissionsOf(items: PermissionItem[], grant: boolean): RolePermission[] {
  return items.map((p) => {
    if (grant && p.permission === undefined) throw new CairnHttpException(Status.BadRequest, 'a granted permission needs permission: read, write or readwrite');
    return { prefix: Buffer.from(p.prefix, 'utf8'), permission: PERMISSION_OF[p.permission ?? 'read'] };
  });
}

/** An auth change's HTTP answer: 200 `{ revision }`, else the mapped status (412 for a refused change). */
function answer(r: AuthChangeResult): { revision: number } {
  if (r.status !== Status.Ok) throw new CairnHttpException(r.status, r.message);
  return { revision: r.revision };
}

/**
 * Authentication and administration of users and roles (docs/security.md, docs/http.md "Auth"):
 * `POST /v1/auth/token` issues a bearer token to any authenticated user; every other route here
 * is for administrators (role root) while auth is enabled (httpAuthMiddleware). Changes go through
 * the Raft log (AuthAdmin) and are answered once applied, with the new auth revision.
 */
@Controller('v1/auth')
export class AuthController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  private get stack() {
    if (!this.deps.auth) throw new CairnHttpException(Status.Unavailable, 'auth is not wired on this gateway');
    return this.deps.auth;
  }

  /** A bearer token for the user of this request's Basic credentials (checked by the middleware). */
  @Post('token')
  @HttpCode(200)
  async token(@Req() req: Request) {
    const who = identityOf(req);
    if (who.user === null) throw new CairnHttpException(Status.Unauthenticated, 'a token is issued for Basic credentials');
    const t = await this.stack.gate.issueToken(who.user);
    if (isRefusal(t)) throw new CairnHttpException(t.status, t.message);
    return { token: t.token, expiresAtMs: t.expiresAtMs, user: who.user };
  }

  /** Whether auth is enabled, and the auth revision. */
  @Get()
  async status() {
    const on = await this.stack.gate.enabled();
    if (isRefusal(on)) throw new CairnHttpException(on.status, on.message);
    const snap = this.stack.view.current()!;
    return { enabled: snap.state.enabled, revision: snap.revision, users: snap.state.users.size, roles: snap.state.roles.size };
  }

  @Put('enabled')
  async setEnabled(@Body() body: EnabledBody) {
    return answer(await this.stack.admin.setEnabled(body.enabled));
  }

  /** Users and their roles (never a password hash). */
  @Get('users')
  async users() {
    await this.status();
    return { users: [...this.stack.view.current()!.state.users.values()].map((u) => ({ name: u.name, roles: u.roles })).sort((a, b) => a.name.localeCompare(b.name)) };
  }

  @Put('users/:name')
  async addUser(@Param('name') name: string, @Body() body: PutUserBody) {
    return answer(await this.stack.admin.addUser(name, body.password, body.roles ?? []));
  }

  @Post('users/:name/password')
  @HttpCode(200)
  async passwd(@Param('name') name: string, @Body() body: PasswordBody) {
    return answer(await this.stack.admin.setPassword(name, body.password));
  }

  @Post('users/:name/roles')
  @HttpCode(200)
  async userRoles(@Param('name') name: string, @Body() body: UserRolesBody) {
    let r: { revision: number } = { revision: 0 };
    if (body.grant?.length) r = answer(await this.stack.admin.changeUserRoles(name, body.grant, true));
    if (body.revoke?.length) r = answer(await this.stack.admin.changeUserRoles(name, body.revoke, false));
    return r;
  }

  @Delete('users/:name')
  async delUser(@Param('name') name: string) {
    return answer(await this.stack.admin.deleteUser(name));
  }

  /** Roles and their permissions (prefix as UTF-8 text, with `prefixBase64` for exact bytes). */
  @Get('roles')
  async roles() {
    await this.status();
    const roles = [...this.stack.view.current()!.state.roles.values()].sort((a, b) => a.name.localeCompare(b.name));
    return {
      roles: roles.map((r) => ({
        name: r.name,
        permissions: r.permissions.map((p) => ({ prefix: Buffer.from(p.prefix).toString('utf8'), prefixBase64: Buffer.from(p.prefix).toString('base64'), permission: PERMISSION_NAME[p.permission] })),
      })),
    };
  }

  @Put('roles/:name')
  async addRole(@Param('name') name: string) {
    return answer(await this.stack.admin.addRole(name));
  }

  @Post('roles/:name/permissions')
  @HttpCode(200)
  async rolePermissions(@Param('name') name: string, @Body() body: RolePermissionsBody) {
    let r: { revision: number } = { revision: 0 };
    if (body.grant?.length) r = answer(await this.stack.admin.changeRolePermissions(name, permissionsOf(body.grant, true), true));
    if (body.revoke?.length) r = answer(await this.stack.admin.changeRolePermissions(name, permissionsOf(body.revoke, false), false));
    return r;
  }

  @Delete('roles/:name')
  async delRole(@Param('name') name: string) {
    return answer(await this.stack.admin.deleteRole(name));
  }
}
