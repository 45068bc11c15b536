import { PASSWORD_BYTES_MAX, VerifiedCache, hashFingerprint, hashPassword, verifyPassword } from './passwords';

describe('passwords (scrypt)', () => {
  it('verifies the password it hashed and nothing else', async () => {
    const h = await hashPassword('s3cret', 1024);
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(await verifyPassword('s3cret', h)).toBe(true);
    expect(await verifyPassword('s3cret ', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });

  it('salts: the same password hashes differently', async () => {
    const [a, b] = await Promise.all([hashPassword('x', 1024), hashPassword('x', 1024)]);
    expect(a).not.toBe(b);
    expect(hashFingerprint(a)).not.toBe(hashFingerprint(b));
  });

  it('never matches a malformed hash or out-of-range parameters', async () => {
    const h = await hashPassword('p', 1024);
    expect(await verifyPassword('p', 'plain')).toBe(false);
    expect(await verifyPassword('p', h.replace('$1024$', '$1000$'))).toBe(false);
    expect(await verifyPassword('p', h.replace('$1024$', '$262144$'))).toBe(false);
    expect(await verifyPassword('p', h.slice(0, -4))).toBe(false);
  });

  it('refuses a cost that is not a power of two in range', async () => {
    await expect(hashPassword('p', 1000)).rejects.toThrow(RangeError);
    await expect(hashPassword('p', 512)).rejects.toThrow(RangeError);
    await expect(hashPassword('p', 262_144)).rejects.toThrow(RangeError);
    expect(PASSWORD_BYTES_MAX).toBe(256);
  });

  it('VerifiedCache misses on another password or hash, and forgets the oldest past its bound', () => {
    const c = new VerifiedCache(2);
    c.add('u', 'p', 'h1');
    expect(c.has('u', 'p', 'h1')).toBe(true);
    expect(c.has('u', 'q', 'h1')).toBe(false);
    expect(c.has('u', 'p', 'h2')).toBe(false);
    c.add('v', 'p', 'h1');
    c.add('w', 'p', 'h1');
    expect(c.has('u', 'p', 'h1')).toBe(false);
    expect(c.has('w', 'p', 'h1')).toBe(true);
  });
});
