import { ScanCursors, globMatch, literalPrefix } from './scan';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('RESP glob patterns and SCAN cursors', () => {
  it('globMatch follows Redis stringmatchlen: * ? [set] [^set] [a-z] and escapes', () => {
    const cases: [string, string, boolean][] = [
      ['*', '', true],
      ['user:*', 'user:1', true],
      ['user:*', 'users', false],
      ['h?llo', 'hello', true],
      ['h?llo', 'hllo', false],
      ['h[ae]llo', 'hallo', true],
      ['h[ae]llo', 'hillo', false],
      ['h[^e]llo', 'hallo', true],
      ['h[^e]llo', 'hello', false],
      ['h[a-b]llo', 'hbllo', true],
      ['h[a-b]llo', 'hcllo', false],
      ['h\\*llo', 'h*llo', true],
      ['h\\*llo', 'hello', false],
      ['*a*b*c*', 'xxaxxbxxcxx', true],
      ['*a*b*c*', 'xxaxxcxxbxx', false],
      ['a*', 'a\xff\x00', true],
    ];
    for (const [p, s, want] of cases) expect([p, s, globMatch(b(p), b(s))]).toEqual([p, s, want]);
    // Many stars against a long non-matching string stay fast (no exponential backtracking).
    expect(globMatch(b('*a*a*a*a*a*a*a*a*b'), b('a'.repeat(5000)))).toBe(false);
  });

  it('literalPrefix is what every match starts with', () => {
    expect(literalPrefix(b('user:*'))).toEqual(b('user:'));
    expect(literalPrefix(b('a\\*b?'))).toEqual(b('a*b'));
    expect(literalPrefix(b('[ab]x'))).toEqual(b(''));
    expect(literalPrefix(b('plain'))).toEqual(b('plain'));
  });

  it('cursors are numbers from 1, used once, and the oldest is forgotten beyond cursorsMax', () => {
    const c = new ScanCursors(2);
    const a = c.add(b('ta'));
    const bb = c.add(b('tb'));
    const cc = c.add(b('tc')); // forgets a
    expect([a, bb, cc]).toEqual([1, 2, 3]);
    expect(c.take(a)).toBeUndefined();
    expect(c.take(bb)).toEqual(b('tb'));
    expect(c.take(bb)).toBeUndefined();
    expect(c.take(cc)).toEqual(b('tc'));
  });
});
