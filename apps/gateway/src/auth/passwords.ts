import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** Salt per password, bytes. */
export const PASSWORD_SALT_BYTES = 16;
/** Derived key stored, bytes. */
export const PASSWORD_KEY_BYTES = 32;
/** scrypt block size and parallelization (RFC 7914 recommends r = 8, p = 1). */
const SCRYPT_R = 8;
const SCRYPT_P = 1;
/** Accepted scrypt cost range (N, a power of two): below is too cheap, above needs more than 128 MiB per check. */
export const SCRYPT_COST_MIN = 1024;
export const SCRYPT_COST_MAX = 131_072;
/** A password, bytes (UTF-8) at most; longer ones are refused before any hashing. */
export const PASSWORD_BYTES_MAX = 256;

function derive(password: string, salt: Buffer, cost: number, r: number, p: number): Promise<Buffer> {
  const opts: ScryptOptions = { N: cost, r, p, maxmem: 256 * cost * r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, PASSWORD_KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/**
 * A salted scrypt hash of `password` (node:crypto, RFC 7914), as the string stored in the auth
 * state: `scrypt$<N>$<r>$<p>$<salt base64url>$<key base64url>`. The clear password is never
 * stored, proposed or logged. Runs on libuv's thread pool (does not block the event loop).
 * @throws RangeError when `cost` is not a power of two in SCRYPT_COST_MIN..SCRYPT_COST_MAX.
 */
export async function hashPassword(password: string, cost: number): Promise<string> {
  if (!Number.isInteger(cost) || cost < SCRYPT_COST_MIN || cost > SCRYPT_COST_MAX || (cost & (cost - 1)) !== 0) throw new RangeError(`scrypt cost must be a power of two in ${SCRYPT_COST_MIN}..${SCRYPT_COST_MAX}, got ${cost}`);
  const salt = randomBytes(PASSWORD_SALT_BYTES);
  const key = await derive(password, salt, cost, SCRYPT_R, SCRYPT_P);
  return `scrypt$${cost}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const STORED = /^scrypt\$(\d{4,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{8,64})\$([A-Za-z0-9_-]{16,128})$/;

/**
 * Whether `password` matches `stored` (a `hashPassword` string), compared in constant time
 * (timingSafeEqual). A malformed stored hash, or parameters out of the accepted range, never matches.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = STORED.exec(stored);
  if (!m) return false;
  const [cost, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (cost < SCRYPT_COST_MIN || cost > SCRYPT_COST_MAX || (cost & (cost - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5], 'base64url');
  const key = await derive(password, Buffer.from(m[4], 'base64url'), cost, r, p);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A short fingerprint of a stored hash (tokens carry it, so a password change ends the tokens issued before). */
export function hashFingerprint(stored: string): string {
  return createHash('sha256').update(stored).digest('base64url').slice(0, 16);
}

/**
 * Successful password checks remembered so HTTP Basic (credentials on every request) does not pay
 * one scrypt per request: keyed by an HMAC (process-random key) of user, password and the stored
 * hash, so a changed password or hash misses. At most `entriesMax`, oldest forgotten first.
 * Failures are never cached (they are rate-limited instead).
 */
export class VerifiedCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Set<string>();

  constructor(private readonly entriesMax = 1024) {}

  private id(user: string, password: string, stored: string): string {
    return createHmac('sha256', this.key).update(user).update('\0').update(password).update('\0').update(stored).digest('base64url');
  }

  has(user: string, password: string, stored: string): boolean {
    return this.entries.has(this.id(user, password, stored));
  }

  add(user: string, password: string, stored: string): void {
    const id = this.id(user, password, stored);
    this.entries.delete(id);
    this.entries.add(id);
    if (this.entries.size > this.entriesMax) this.entries.delete(this.entries.values().next().value as string);
  }
}
