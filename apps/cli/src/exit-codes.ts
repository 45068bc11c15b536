/**
 * Process exit codes of `cairn` (documented in `cairn --help` and docs/cli.md).
 */
import { CodedError } from '@cairn/protocol';

export const ExitCode = {
  ok: 0,
  notFound: 1,
  usage: 2,
  unavailable: 3,
  verifyFailed: 4,
  serverError: 5,
  notApplied: 6,
  denied: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  key not found (get), or a lease not live (put --lease, lease keepalive / revoke / ttl)
  2  usage error (bad arguments, unreadable file, bad config)
  3  unavailable: cannot connect, connection lost, timeout, no leader (after retries)
  4  verify found missing or mismatched keys
  5  other server error
  6  not applied: the condition of put --nx / --xx / --if-rev or del --if-rev was false, lease grant --id of a live lease, or the member, user or role change does not apply
  7  unauthenticated or permission denied (auth enabled: --user, --password, --token, $CAIRN_USER / $CAIRN_PASSWORD / $CAIRN_TOKEN)`;

/** Bad arguments or input the user must fix (exit 2). */
export class UsageError extends CodedError {
  readonly code = 'USAGE';
}

/** `get` of a missing key (exit 1). */
export class NotFoundError extends CodedError {
  readonly code = 'NOT_FOUND';
  constructor(key: string) {
    super(`key not found: ${key}`);
  }
}

/** `put --nx` / `put --xx` whose condition was false: nothing written (exit 6). */
export class NotAppliedError extends CodedError {
  readonly code = 'NOT_APPLIED';
}

/** `verify` found missing or mismatched keys (exit 4). */
export class VerifyFailedError extends CodedError {
  readonly code = 'VERIFY_FAILED';
}

/** Error codes of socket/timeouts that mean "could not reach the cluster" rather than "it refused". */
export const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

type Coded = { code?: unknown; retryable?: unknown; name?: unknown };

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as Coded).code === 'string' ? ((err as Coded).code as string) : '';
}

/**
 * True when retrying the same request may succeed: the client marks it `retryable` (UNAVAILABLE:
 * no leader, replicas catching up), the connection was refused/closed/reset, or it timed out.
 */
export function isRetryable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as Coded).retryable === true) return true;
  return isConnectionError(err) || /TIMEOUT|UNAVAILABLE/.test(codeOf(err));
}

/** True when the connection itself is broken (reconnect before retrying), not just the request. */
export function isConnectionError(err: unknown): boolean {
  const code = codeOf(err);
  return CONNECTION_ERROR_CODES.has(code) || /CONNECTION|CLOSED|DISCONNECT/.test(code) || /TIMEOUT/.test(code);
}

/**
 * Node's codes for a TLS handshake that failed on trust or configuration: the gateway's certificate
 * not trusted or not for this name (X.509 verify codes, ERR_TLS_CERT_ALTNAME_INVALID), or an alert /
 * mismatch from OpenSSL (ERR_SSL_*: a client certificate required, a version below minVersion, a
 * TLS client at a plain door). Exit 3 like any failed connect; the fix is in the flags (--cacert,
 * --cert/--key, --tls), which the hint names, not in a retry.
 */
export function isTlsSetupError(err: unknown): boolean {
  return /^(ERR_TLS_CERT|ERR_SSL_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_)/.test(codeOf(err));
}

/** Maps any error a command throws to the process exit code. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof NotFoundError) return ExitCode.notFound;
  if (err instanceof UsageError) return ExitCode.usage;
  if (err instanceof VerifyFailedError) return ExitCode.verifyFailed;
  if (err instanceof NotAppliedError) return ExitCode.notApplied;
  const code = codeOf(err);
  // A lease that is not live is a missing thing (put --lease, lease revoke / keepalive / ttl); a grant of a live id did not apply.
  if (code === 'LEASE_NOT_FOUND' || code === 'LEASE_LOST') return ExitCode.notFound;
  if (code === 'LEASE_EXISTS') return ExitCode.notApplied;
  if (code === 'UNAUTHENTICATED' || code === 'PERMISSION_DENIED') return ExitCode.denied;
  if (code === 'CONFIG_INVALID' || code === 'TSV_ROW_INVALID' || code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') return ExitCode.usage;
  if (code.startsWith('commander.')) return ExitCode.usage;
  if (isTlsSetupError(err)) return ExitCode.unavailable;
  if (isRetryable(err)) return ExitCode.unavailable;
  return ExitCode.serverError;
}
