import type { ClientTlsOptions } from '@cairn/client';
import { Command, Option } from 'commander';
import { request as httpsRequest } from 'node:https';
import { NotAppliedError, UsageError } from './exit-codes';
import { MemberUnavailableError, resolveHttp } from './member';
import { authHeader, authRefusal, credentialsOf } from './credentials';

/** What `cairn user|role|auth` need: an HTTP client (global fetch by default; tests inject one). */
export interface AuthCliDeps {
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
  out(s: string): void;
  /** One line of standard input (a password that is not on the command line); absent: none. */
  readLine?: () => Promise<string | null>;
  /** The command's `--tls`, `--cacert`, `--cert`, `--key` (cli.ts tlsOptionsOf): HTTPS to the gateway when set. */
  tls?: (cmd: Command) => ClientTlsOptions | undefined;
}

/**
 * A fetch over node:https trusting `tls`'s CA (global fetch takes no CA); errors carry the
 * socket's `code` in `cause`, as global fetch's do. Answers are a few KiB of JSON, read whole.
 */
export function fetchOverTls(tls: ClientTlsOptions): typeof fetch {
  return ((url: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}) =>
    new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method, headers: init.headers, signal: init.signal, ...tls }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => resolve(new Response(chunks.length > 0 ? Buffer.concat(chunks) : null, { status: res.statusCode ?? 0, statusText: res.statusMessage })));
      });
      req.once('error', (e) => reject(new Error(e.message, { cause: e })));
      req.end(init.body);
    })) as typeof fetch;
}

/** Maps a non-2xx answer of the gateway HTTP API to the CLI's errors (exit codes: docs/cli.md). */
export function httpFailure(status: number, message: string | undefined, fallback: string): Error {
  const m = message ?? fallback;
  const refused = authRefusal(status, m);
  if (refused) return refused;
  if (status === 412) return new NotAppliedError(`not applied: ${m}`);
  if (status === 400 || status === 413) return new UsageError(m);
  return new MemberUnavailableError(`${status}: ${m}`);
}

const PERMISSIONS = ['read', 'write', 'readwrite'];

/**
 * `cairn user add|del|passwd|grant|revoke|list`, `cairn role add|del|grant|revoke|list`,
 * `cairn auth enable|disable|status` over the gateway HTTP API (docs/cli.md, docs/security.md,
 * docs/http.md "Auth"). Every change is one Raft log entry, answered once applied.
 */
export function authCommands(deps: AuthCliDeps): Command[] {
  const h = helpers(deps);
  return [userCommand(deps, h), roleCommand(deps, h), authCommand(deps, h)];
}

type Helpers = ReturnType<typeof helpers>;

function helpers(deps: AuthCliDeps) {
  const doFetch = deps.fetch ?? fetch;
  const env = deps.env ?? process.env;
  const call = async <T>(cmd: Command, method: string, path: string, body?: unknown): Promise<T> => {
    const o = cmd.optsWithGlobals<{ http?: string; config?: string; user?: string; password?: string; token?: string }>();
    const { host, port } = await resolveHttp(o, env);
    const tls = deps.tls?.(cmd);
    const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
    let res: Response;
    try {
      res = await (tls ? fetchOverTls(tls) : doFetch)(url, { method, headers: { ...authHeader(credentialsOf(o, env)), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      throw new MemberUnavailableError(`cannot reach the gateway HTTP API at ${host}:${port}: ${cause?.code ?? (e as Error).message}`, cause?.code ?? 'TIMEOUT');
    }
    const json = (await res.json().catch(() => ({}))) as T & { message?: string };
    if (!res.ok) throw httpFailure(res.status, json.message, res.statusText);
    return json;
  };
  const json = (cmd: Command) => cmd.optsWithGlobals<{ json?: boolean }>().json === true;
  const httpOpt = () => new Option('--http <host:port>', 'gateway HTTP API (default: first gateway of --config with an httpPort, else $CAIRN_HTTP, else 127.0.0.1:8380)');
  const done = (cmd: Command, r: { revision: number }, what: string) => deps.out(json(cmd) ? JSON.stringify(r) : `${what} (auth revision ${r.revision})`);
  // etcdctl's --new-user-password: the global --password is the caller's own.
  const passwordOf = async (o: { newUserPassword?: string }): Promise<string> => {
    if (o.newUserPassword !== undefined) return o.newUserPassword;
    const line = deps.readLine ? await deps.readLine() : null;
    if (!line) throw new UsageError('no password: pass --new-user-password <password> or write it as the first line of standard input');
    return line;
  };
  const sub = (parent: Command, name: string, description: string) => parent.command(name).description(description).addOption(httpOpt());
  return { call, json, done, passwordOf, sub };
}

function userCommand(deps: AuthCliDeps, { call, json, done, passwordOf, sub }: Helpers): Command {
  const user = new Command('user').description('users of the cluster (auth: docs/security.md)');
  sub(user, 'list', 'users and their roles').action(async (_o, cmd: Command) => {
    const r = await call<{ users: { name: string; roles: string[] }[] }>(cmd, 'GET', '/v1/auth/users');
    deps.out(json(cmd) ? JSON.stringify(r) : r.users.map((u) => `${u.name}\t${u.roles.join(',') || '-'}`).join('\n') || '(no users)');
  });
  sub(user, 'add', 'create a user (password from --new-user-password or the first line of standard input)')
    .argument('<name>')
    .option('--new-user-password <password>', 'the new user\'s password (etcdctl\'s name; --password is your own)')
    .option('--roles <list>', 'roles to give it, comma-separated (root: administrator)')
    .action(async (name: string, o: { newUserPassword?: string; roles?: string }, cmd: Command) => {
      const roles = o.roles ? o.roles.split(',').filter(Boolean) : [];
      done(cmd, await call(cmd, 'PUT', `/v1/auth/users/${encodeURIComponent(name)}`, { password: await passwordOf(o), roles }), `user ${name} added`);
    });
  sub(user, 'passwd', "change a user's password (ends its tokens)")
    .argument('<name>')
    .option('--new-user-password <password>', 'the new password (else the first line of standard input)')
    .action(async (name: string, o: { newUserPassword?: string }, cmd: Command) => done(cmd, await call(cmd, 'POST', `/v1/auth/users/${encodeURIComponent(name)}/password`, { password: await passwordOf(o) }), `password of ${name} changed`));
  sub(user, 'del', 'delete a user').argument('<name>').action(async (name: string, _o, cmd: Command) => done(cmd, await call(cmd, 'DELETE', `/v1/auth/users/${encodeURIComponent(name)}`), `user ${name} deleted`));
  for (const [verb, key] of [['grant', 'grant'], ['revoke', 'revoke']] as const)
    sub(user, verb, `${verb} roles ${verb === 'grant' ? 'to' : 'from'} a user`)
      .argument('<name>')
      .argument('<roles...>')
      .action(async (name: string, roles: string[], _o, cmd: Command) => done(cmd, await call(cmd, 'POST', `/v1/auth/users/${encodeURIComponent(name)}/roles`, { [key]: roles }), `roles of ${name} changed`));
  return user;
}

function roleCommand(deps: AuthCliDeps, { call, json, done, sub }: Helpers): Command {
  const role = new Command('role').description('roles and their key-prefix permissions (auth: docs/security.md)');
  sub(role, 'list', 'roles and their permissions').action(async (_o, cmd: Command) => {
    const r = await call<{ roles: { name: string; permissions: { prefix: string; permission: string }[] }[] }>(cmd, 'GET', '/v1/auth/roles');
    deps.out(json(cmd) ? JSON.stringify(r) : r.roles.map((x) => `${x.name}\t${x.permissions.map((p) => `${p.permission} ${JSON.stringify(p.prefix)}`).join(', ') || '-'}`).join('\n') || '(no roles)');
  });
  sub(role, 'add', 'create a role with no permissions').argument('<name>').action(async (name: string, _o, cmd: Command) => done(cmd, await call(cmd, 'PUT', `/v1/auth/roles/${encodeURIComponent(name)}`), `role ${name} added`));
  sub(role, 'del', 'delete a role (it leaves every user holding it)').argument('<name>').action(async (name: string, _o, cmd: Command) => done(cmd, await call(cmd, 'DELETE', `/v1/auth/roles/${encodeURIComponent(name)}`), `role ${name} deleted`));
  sub(role, 'grant', 'let a role read, write or readwrite every key starting with PREFIX ("" = every key)')
    .argument('<name>')
    .argument('<permission>', 'read, write or readwrite')
    .argument('<prefix>')
    .action(async (name: string, permission: string, prefix: string, _o, cmd: Command) => {
      if (!PERMISSIONS.includes(permission)) throw new UsageError(`permission must be read, write or readwrite, got ${permission}`);
      done(cmd, await call(cmd, 'POST', `/v1/auth/roles/${encodeURIComponent(name)}/permissions`, { grant: [{ prefix, permission }] }), `role ${name}: ${permission} ${JSON.stringify(prefix)}`);
    });
  sub(role, 'revoke', 'remove the permission of a role on PREFIX')
    .argument('<name>')
    .argument('<prefix>')
    .action(async (name: string, prefix: string, _o, cmd: Command) => done(cmd, await call(cmd, 'POST', `/v1/auth/roles/${encodeURIComponent(name)}/permissions`, { revoke: [{ prefix }] }), `role ${name}: ${JSON.stringify(prefix)} revoked`));
  return role;
}

function authCommand(deps: AuthCliDeps, { call, json, done, sub }: Helpers): Command {
  const auth = new Command('auth').description('turn authentication on or off (docs/security.md)');
  sub(auth, 'enable', 'require credentials on every door (user root must exist with role root)').action(async (_o, cmd: Command) => done(cmd, await call(cmd, 'PUT', '/v1/auth/enabled', { enabled: true }), 'auth enabled'));
  sub(auth, 'disable', 'serve everyone again (an administrator only)').action(async (_o, cmd: Command) => done(cmd, await call(cmd, 'PUT', '/v1/auth/enabled', { enabled: false }), 'auth disabled'));
  sub(auth, 'status', 'whether auth is enabled, and the auth revision').action(async (_o, cmd: Command) => {
    const r = await call<{ enabled: boolean; revision: number; users: number; roles: number }>(cmd, 'GET', '/v1/auth');
    deps.out(json(cmd) ? JSON.stringify(r) : `auth ${r.enabled ? 'enabled' : 'disabled'}, revision ${r.revision}, ${r.users} users, ${r.roles} roles`);
  });
  return auth;
}
