/** The gateway refused the credentials (HTTP 401) or the user may not do this (403): exit 7. */
export class AuthRefusedError extends Error {
  constructor(
    message: string,
    readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED',
  ) {
    super(message);
    this.name = 'AuthRefusedError';
  }
}

/**
 * The `Authorization` header of `--user name[:password]` (else $CAIRN_USER; the password from
 * $CAIRN_PASSWORD when not in the option): HTTP Basic (RFC 7617). None without a user.
 */
export function basicAuthHeader(user: string | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const u = user ?? env.CAIRN_USER;
  if (!u) return {};
  const colon = u.indexOf(':');
  const name = colon < 0 ? u : u.slice(0, colon);
  const password = colon < 0 ? (env.CAIRN_PASSWORD ?? '') : u.slice(colon + 1);
  return { authorization: `Basic ${Buffer.from(`${name}:${password}`, 'utf8').toString('base64')}` };
}

/** The CLI error of an HTTP 401 / 403 answer; null for any other status. */
export function authRefusal(status: number, message: string): AuthRefusedError | null {
  if (status === 401) return new AuthRefusedError(`unauthenticated: ${message} (pass --user name[:password], or $CAIRN_USER / $CAIRN_PASSWORD)`, 'UNAUTHENTICATED');
  if (status === 403) return new AuthRefusedError(`permission denied: ${message}`, 'PERMISSION_DENIED');
  return null;
}
