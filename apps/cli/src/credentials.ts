import { UsageError } from './exit-codes';
import { CodedError } from '@cairn/protocol';

/** The gateway refused the credentials (HTTP 401, TLV UNAUTHENTICATED) or the user may not do this (403, PERMISSION_DENIED): exit 7. */
export class AuthRefusedError extends CodedError {
  constructor(
    message: string,
    readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED',
  ) {
    super(message);
  }
}

/** Who the CLI is on a cluster with auth enabled: a user and its password, or a bearer token. */
export type CliCredentials = { username: string; password: string } | { token: string };

/** The global options credentials come from (etcdctl's `--user`, `--password`; and `--token`). */
export interface CredentialOptions {
  /** `name` or `name:password` (etcdctl's form; the password is everything after the first colon). */
  user?: string;
  password?: string;
  token?: string;
}

/**
 * The credentials of a command: `--token`; else `--user name[:password]` (password from the
 * option, else `--password`, else $CAIRN_PASSWORD); else $CAIRN_TOKEN; else $CAIRN_USER (its
 * password the same way). Null when none is given (a cluster without auth).
 * @throws UsageError for `--token` with `--user` / `--password`, `--password` without a user, or a
 * user without a password.
 */
export function credentialsOf(o: CredentialOptions, env: NodeJS.ProcessEnv = process.env): CliCredentials | null {
  if (o.token !== undefined) {
    if (o.user !== undefined || o.password !== undefined) throw new UsageError('--token excludes --user and --password');
    return { token: o.token };
  }
  if (o.user === undefined && o.password === undefined && env.CAIRN_TOKEN) return { token: env.CAIRN_TOKEN };
  const u = o.user ?? env.CAIRN_USER;
  if (!u) {
    if (o.password !== undefined) throw new UsageError('--password needs a user: --user name (or $CAIRN_USER)');
    return null;
  }
  const colon = u.indexOf(':');
  const username = colon < 0 ? u : u.slice(0, colon);
  const password = colon >= 0 ? u.slice(colon + 1) : (o.password ?? env.CAIRN_PASSWORD);
  if (!username) throw new UsageError('--user needs a user name: --user name[:password]');
  if (!password) throw new UsageError(`no password for user ${username}: --user ${username}:password, --password, or $CAIRN_PASSWORD`);
  return { username, password };
}

/** The `Authorization` header of `c`: HTTP Basic (RFC 7617) for a user, Bearer (RFC 6750) for a token; none without credentials. */
export function authHeader(c: CliCredentials | null): Record<string, string> {
  if (!c) return {};
  if ('token' in c) return { authorization: `Bearer ${c.token}` };
  return { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}` };
}

/** How to give credentials, for error messages. */
export const AUTH_HOW = 'pass --user name[:password] (with --password or $CAIRN_PASSWORD), --token, or $CAIRN_USER / $CAIRN_TOKEN';

/** The CLI error of an HTTP 401 / 403 answer; null for any other status. */
export function authRefusal(status: number, message: string): AuthRefusedError | null {
  if (status === 401) return new AuthRefusedError(`unauthenticated: ${message} (${AUTH_HOW})`, 'UNAUTHENTICATED');
  if (status === 403) return new AuthRefusedError(`permission denied: ${message}`, 'PERMISSION_DENIED');
  return null;
}
