import { AUTH_LIMITS, Status, isAuthName } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import type { KvGuard } from '../paths/kv-session';
import type { AuthView } from './auth-view';
import { FailureLimiter } from './failure-limiter';
import { KeyAccess } from './key-access';
import { PASSWORD_BYTES_MAX, VerifiedCache, hashFingerprint, hashPassword, verifyPassword } from './passwords';
import type { TokenIssuer } from './tokens';

/** Why a request is refused: UNAUTHENTICATED (no or bad credentials), PERMISSION_DENIED, or UNAVAILABLE (state not loaded). */
export interface AuthRefusal {
  status: Status;
  message: string;
}

/** Who a connection (or an HTTP request) is: null until it authenticates. */
export interface AuthIdentity {
  user: string | null;
}

/** The auth settings a gateway runs with (config `gateway.auth`, docs/security.md). */
export interface AuthSettings {
  scryptCost: number;
  failuresPerAddressMax: number;
  failureWindowMs: number;
  failuresPerConnectionMax: number;
  /** How long a request waits for the auth state to become known before UNAVAILABLE, ms. */
  readyTimeoutMs: number;
  /** Whether HTTP `/metrics` is open while auth is enabled (gateway.auth.metricsPublic). */
  metricsPublic: boolean;
}

/** The answer to a wrong user or password (never says which: it does not reveal whether a user exists). */
export const WRONG_CREDENTIALS = 'invalid user name or password';
export const AUTH_REQUIRED = 'authentication required';
export const TOO_MANY_FAILURES = 'too many failed authentications from this address; try again later';

export function isRefusal(x: unknown): x is AuthRefusal {
  return typeof x === 'object' && x !== null && 'status' in x && 'message' in x;
}

/**
 * The one place every door asks about authentication and authorization (docs/security.md):
 * password and token checks (rate-limited per client address), and whether a user may read or
 * write a key, read a range, or administer. Decisions are taken against the current AuthView
 * state at each request, so a revoked permission or a deleted user is refused as soon as this
 * gateway loaded the change. With auth disabled every request is allowed, as before auth existed.
 */
export class GatewayAuth {
  private readonly limiter: FailureLimiter;
  private readonly verified = new VerifiedCache();
  private dummyHash: Promise<string> | null = null;
  private cache: { revision: number; access: Map<string, KeyAccess | null> } = { revision: -1, access: new Map() };

  constructor(
    readonly view: AuthView,
    private readonly tokens: TokenIssuer,
    readonly settings: AuthSettings,
    now: () => number,
    private readonly log?: Logger,
  ) {
    this.limiter = new FailureLimiter(settings.failuresPerAddressMax, settings.failureWindowMs, now);
  }

  /** Whether auth is enabled, or a refusal (UNAVAILABLE) when the state is not known in time. */
  async enabled(): Promise<boolean | AuthRefusal> {
    if (!(await this.view.ready(this.settings.readyTimeoutMs))) return { status: Status.Unavailable, message: 'the auth state is not loaded yet (no storage node heard from)' };
    return this.view.current()!.state.enabled;
  }

  /** The key access of `who`, or why none. */
  async access(who: AuthIdentity): Promise<KeyAccess | AuthRefusal> {
    const on = await this.enabled();
    if (isRefusal(on)) return on;
    return this.accessNow(who)!;
  }

  /**
   * `access` decided now, without waiting: undefined while the auth state is not known yet (the
   * caller then waits with `access`). The same decision `access` takes once the state is known.
   */
  accessNow(who: AuthIdentity): KeyAccess | AuthRefusal | undefined {
    const snap = this.view.current();
    if (!snap) return undefined;
    if (!snap.state.enabled) return KeyAccess.ALL;
    if (who.user === null) return { status: Status.Unauthenticated, message: AUTH_REQUIRED };
    if (this.cache.revision !== snap.revision) this.cache = { revision: snap.revision, access: new Map() };
    let a = this.cache.access.get(who.user);
    if (a === undefined) {
      a = KeyAccess.of(snap.state, who.user);
      this.cache.access.set(who.user, a);
    }
    // A user deleted since it authenticated is no one.
    return a ?? { status: Status.Unauthenticated, message: AUTH_REQUIRED };
  }

  /** null when `who` may read (`write` false) or write `key`, else the refusal. */
  async authorizeKey(who: AuthIdentity, key: Uint8Array, write: boolean): Promise<AuthRefusal | null> {
    return keyDecision(who, await this.access(who), key, write);
  }

  /** `authorizeKey` decided now: undefined while the auth state is not known yet (then ask `authorizeKey`). */
  authorizeKeyNow(who: AuthIdentity, key: Uint8Array, write: boolean): AuthRefusal | null | undefined {
    const a = this.accessNow(who);
    return a === undefined ? undefined : keyDecision(who, a, key, write);
  }

  /** null when `who` may read (`write`: write) every key of `[start, end)`, else the refusal. */
  async authorizeRange(who: AuthIdentity, start: Uint8Array, end: Uint8Array | null, write = false): Promise<AuthRefusal | null> {
    const a = await this.access(who);
    if (isRefusal(a)) return a;
    if (write ? a.canWriteRange(start, end) : a.canReadRange(start, end)) return null;
    return { status: Status.PermissionDenied, message: `user ${who.user} has no ${write ? 'write' : 'read'} permission on the whole range` };
  }

  /**
   * The KvSession guard of `who`: each call checks the identity `who` has at that moment (a later
   * AUTH on the connection counts for later requests, not for one already being checked).
   */
  guardFor(who: AuthIdentity): KvGuard {
    return {
      key: (key, write) => this.authorizeKey({ user: who.user }, key, write),
      keyNow: (key, write) => this.authorizeKeyNow(who, key, write),
      range: (start, end, write) => this.authorizeRange({ user: who.user }, start, end, write),
      authenticated: () => this.access({ user: who.user }).then((a) => (isRefusal(a) ? a : null)),
    };
  }

  /** null when `who` may administer (membership, users and roles, snapshots): anyone while auth is disabled, else role root. */
  async authorizeAdmin(who: AuthIdentity): Promise<AuthRefusal | null> {
    const a = await this.access(who);
    if (isRefusal(a)) return a;
    return a.admin ? null : { status: Status.PermissionDenied, message: `user ${who.user} is not an administrator (role root)` };
  }

  /**
   * Checks a user name and password from `address` (the client's IP). UNAUTHENTICATED with the
   * same message for an unknown user and a wrong password (an unknown user costs one scrypt too);
   * after `failuresPerAddressMax` failures in `failureWindowMs` the address is refused unchecked.
   */
  async checkPassword(user: string, password: string, address: string): Promise<{ user: string } | AuthRefusal> {
    if (this.limiter.blocked(address)) return { status: Status.Unauthenticated, message: TOO_MANY_FAILURES };
    const on = await this.enabled();
    if (isRefusal(on)) return on;
    const record = isAuthName(user) && Buffer.byteLength(password) <= PASSWORD_BYTES_MAX ? this.view.current()!.state.users.get(user) : undefined;
    if (record && this.verified.has(user, password, record.passwordHash)) return { user };
    const ok = record ? await verifyPassword(password, record.passwordHash) : await verifyPassword(password, await this.dummy()).then(() => false);
    if (ok && record) {
      this.verified.add(user, password, record.passwordHash);
      return { user };
    }
    this.limiter.fail(address);
    this.log?.info({ address }, 'authentication failed');
    return { status: Status.Unauthenticated, message: WRONG_CREDENTIALS };
  }

  /** A bearer token's user, when the token is valid, the user exists and its password did not change since. */
  async checkToken(token: string): Promise<{ user: string } | AuthRefusal> {
    const claims = await this.tokens.verify(token);
    const on = await this.enabled();
    if (isRefusal(on)) return on;
    const record = claims ? this.view.current()!.state.users.get(claims.user) : undefined;
    if (!claims || !record || hashFingerprint(record.passwordHash) !== claims.fingerprint) return { status: Status.Unauthenticated, message: 'invalid or expired token' };
    return { user: claims.user };
  }

  /** A token for `user` (after a successful password check). */
  async issueToken(user: string): Promise<{ token: string; expiresAtMs: number } | AuthRefusal> {
    const record = this.view.current()?.state.users.get(user);
    if (!record) return { status: Status.Unauthenticated, message: WRONG_CREDENTIALS };
    return this.tokens.issue(user, hashFingerprint(record.passwordHash));
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword('cairn-no-such-user', this.settings.scryptCost);
    return this.dummyHash;
  }
}

/** The answer to a key request of `who` given its access `a` (or the refusal to look it up). */
function keyDecision(who: AuthIdentity, a: KeyAccess | AuthRefusal, key: Uint8Array, write: boolean): AuthRefusal | null {
  if (isRefusal(a)) return a;
  if (write ? a.canWrite(key) : a.canRead(key)) return null;
  return { status: Status.PermissionDenied, message: `user ${who.user} has no ${write ? 'write' : 'read'} permission on this key` };
}

/** The bounds a gateway enforces on auth changes (config `gateway.auth`, each ≤ AUTH_LIMITS). */
export interface AuthChangeLimits {
  usersMax: number;
  rolesMax: number;
  permissionsPerRoleMax: number;
}

export const AUTH_CHANGE_LIMITS_DEFAULT: AuthChangeLimits = Object.freeze({ usersMax: 1000, rolesMax: 100, permissionsPerRoleMax: 64 });
export { AUTH_LIMITS };
