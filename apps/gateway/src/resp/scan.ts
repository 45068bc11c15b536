/**
 * SCAN and KEYS on the RESP door (docs/resp.md "SCAN and KEYS"): Redis glob patterns, and the
 * per-connection cursor table that maps Redis's numeric cursors to range continuation tokens.
 */

/**
 * A connection's live SCAN cursors: number → continuation token, at most `cursorsMax` (the oldest
 * is forgotten first; SCAN with a forgotten or unknown cursor is an error). Numbers start at 1 and
 * only grow; 0 is Redis's "start / done".
 */
export class ScanCursors {
  private readonly tokens = new Map<number, Buffer>();
  private nextId = 1;

  constructor(private readonly cursorsMax: number) {}

  add(token: Buffer): number {
    if (this.tokens.size >= this.cursorsMax) this.tokens.delete(this.tokens.keys().next().value as number);
    const id = this.nextId++;
    this.tokens.set(id, token);
    return id;
  }

  /** The token of cursor `id` (forgotten: a cursor is used once), or undefined. */
  take(id: number): Buffer | undefined {
    const t = this.tokens.get(id);
    this.tokens.delete(id);
    return t;
  }
}

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

/** The bytes of `pattern` before its first unescaped `*`, `?` or `[` (escapes resolved): every match starts with them. */
export function literalPrefix(pattern: Uint8Array): Buffer {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === STAR || c === QUESTION || c === OPEN) break;
    if (c === BACKSLASH && i + 1 < pattern.length) {
      out.push(pattern[++i]);
      continue;
    }
    out.push(c);
  }
  return Buffer.from(out);
}

/**
 * Redis's glob match (util.c stringmatchlen, case-sensitive): `*` any bytes, `?` one byte,
 * `[abc]` `[^abc]` `[a-z]` a set, `\x` the byte x. Iterative with one backtrack point for `*`
 * (linear-ish, no exponential blow-up on many stars).
 */
export function globMatch(pattern: Uint8Array, s: Uint8Array): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    if (p < pattern.length) {
      const c = pattern[p];
      if (c === STAR) {
        while (p < pattern.length && pattern[p] === STAR) p++;
        if (p === pattern.length) return true;
        starP = p;
        starI = i;
        continue;
      }
      const step = matchOne(pattern, p, s[i]);
      if (step > 0) {
        p += step;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    i = ++starI;
  }
  while (p < pattern.length && pattern[p] === STAR) p++;
  return p === pattern.length;
}

/** Pattern bytes consumed when the element at `p` matches byte `b`, else 0. */
function matchOne(pattern: Uint8Array, p: number, b: number): number {
  const c = pattern[p];
  if (c === QUESTION) return 1;
  if (c === BACKSLASH && p + 1 < pattern.length) return pattern[p + 1] === b ? 2 : 0;
  if (c !== OPEN) return c === b ? 1 : 0;
  let q = p + 1;
  const not = pattern[q] === CARET;
  if (not) q++;
  let hit = false;
  while (q < pattern.length && pattern[q] !== CLOSE) {
    if (pattern[q] === BACKSLASH && q + 1 < pattern.length) {
      if (pattern[q + 1] === b) hit = true;
      q += 2;
    } else if (q + 2 < pattern.length && pattern[q + 1] === DASH && pattern[q + 2] !== CLOSE) {
      const lo = Math.min(pattern[q], pattern[q + 2]);
      const hi = Math.max(pattern[q], pattern[q + 2]);
      if (b >= lo && b <= hi) hit = true;
      q += 3;
    } else {
      if (pattern[q] === b) hit = true;
      q++;
    }
  }
  // An unclosed `[` runs to the end of the pattern, as in Redis.
  const consumed = (q < pattern.length ? q + 1 : q) - p;
  return hit !== not ? consumed : 0;
}
