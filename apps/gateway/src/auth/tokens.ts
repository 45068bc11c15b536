import { SignJWT, errors, jwtVerify } from 'jose';

const ISSUER = 'cairn';
const ALGORITHM = 'HS256';
/** A token, bytes at most (an HS256 JWT of a 64-byte name is ~250). */
export const TOKEN_BYTES_MAX = 2048;
/** The HMAC key, bytes at least (RFC 7518 §3.2: the hash size). */
export const TOKEN_SECRET_BYTES_MIN = 32;

/** What a valid token says. */
export interface TokenClaims {
  user: string;
  /** hashFingerprint of the user's password hash when issued: a later password change ends the token. */
  fingerprint: string;
  expiresAtMs: number;
}

/**
 * Bearer tokens: HS256 JWTs (RFC 7519, signed with `jose`) with the user as `sub`, issuer `cairn`,
 * `iat`/`exp` (`ttlMs` after issue) and `pwd` (the password hash fingerprint). Every gateway that
 * has the same secret (config / env / Kubernetes Secret, docs/security.md) accepts any gateway's
 * token. Time comes from `now` (tests: virtual).
 */
export class TokenIssuer {
  private readonly secret: Uint8Array;

  /** @throws RangeError when `secret` is shorter than TOKEN_SECRET_BYTES_MIN. */
  constructor(
    secret: Uint8Array,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (secret.length < TOKEN_SECRET_BYTES_MIN) throw new RangeError(`the token secret must be at least ${TOKEN_SECRET_BYTES_MIN} bytes, got ${secret.length}`);
    this.secret = Uint8Array.from(secret);
  }

  async issue(user: string, fingerprint: string): Promise<{ token: string; expiresAtMs: number }> {
    const nowS = Math.floor(this.now() / 1000);
    const expS = nowS + Math.max(1, Math.ceil(this.ttlMs / 1000));
    const token = await new SignJWT({ pwd: fingerprint }).setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' }).setIssuer(ISSUER).setSubject(user).setIssuedAt(nowS).setExpirationTime(expS).sign(this.secret);
    return { token, expiresAtMs: expS * 1000 };
  }

  /** The token's claims, or null when it is malformed, not signed with this secret, expired, or too long. */
  async verify(token: string): Promise<TokenClaims | null> {
    if (token.length > TOKEN_BYTES_MAX) return null;
    try {
      const { payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, algorithms: [ALGORITHM], currentDate: new Date(this.now()), clockTolerance: 0 });
      if (typeof payload.sub !== 'string' || typeof payload.pwd !== 'string' || typeof payload.exp !== 'number') return null;
      return { user: payload.sub, fingerprint: payload.pwd, expiresAtMs: payload.exp * 1000 };
    } catch (e) {
      if (e instanceof errors.JOSEError) return null;
      throw e;
    }
  }
}
