import { TOKEN_BYTES_MAX, TokenIssuer } from './tokens';

describe('TokenIssuer (HS256 JWT)', () => {
  const secret = Buffer.alloc(32, 1);

  it('verifies its own token until it expires', async () => {
    let now = 1_700_000_000_000;
    const t = new TokenIssuer(secret, 60_000, () => now);
    const { token, expiresAtMs } = await t.issue('alice', 'fp');
    expect(expiresAtMs).toBe(now + 60_000);
    expect(await t.verify(token)).toEqual({ user: 'alice', fingerprint: 'fp', expiresAtMs });
    now += 59_000;
    expect(await t.verify(token)).not.toBeNull();
    now += 1_000;
    expect(await t.verify(token)).toBeNull();
  });

  it('refuses a token of another secret, a tampered one, garbage and an oversized one', async () => {
    const a = new TokenIssuer(secret, 60_000);
    const b = new TokenIssuer(Buffer.alloc(32, 2), 60_000);
    const { token } = await a.issue('alice', 'fp');
    expect(await b.verify(token)).toBeNull();
    const [h, p, s] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'root' })).toString('base64url');
    expect(await a.verify(`${h}.${forged}.${s}`)).toBeNull();
    expect(await a.verify('not a token')).toBeNull();
    expect(await a.verify('x'.repeat(TOKEN_BYTES_MAX + 1))).toBeNull();
  });

  it('refuses a short secret', () => {
    expect(() => new TokenIssuer(Buffer.alloc(31), 1000)).toThrow(RangeError);
  });
});
