const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;

/** C `isspace`: space, \t, \n, \v, \f, \r. */
function isSpace(b: number): boolean {
  return b === SPACE || (b >= TAB && b <= CR);
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

const ESCAPES: Record<number, number> = { 0x6e: LF, 0x72: CR, 0x74: TAB, 0x62: 0x08, 0x61: 0x07 }; // n r t b a

/**
 * Splits one inline command line into arguments with Redis's quoting rules (`sdssplitargs`,
 * sds.c): arguments are separated by whitespace; `"..."` understands `\xHH`, `\n`, `\r`, `\t`,
 * `\b`, `\a` and `\<any>` = that byte; `'...'` understands only `\'`; a closing quote must be
 * followed by whitespace or the end of the line. A NUL byte ends the line (sds strings are
 * C strings there).
 *
 * @param line the line without its trailing `\r\n`
 * @returns the arguments (possibly none, for a blank line), or null on unbalanced quotes
 *   (Redis: "Protocol error: unbalanced quotes in request").
 */
export function splitInlineArgs(line: Uint8Array): Buffer[] | null {
  const args: Buffer[] = [];
  const n = line.length;
  const at = (i: number) => (i < n ? line[i] : NUL);
  let p = 0;
  for (;;) {
    while (p < n && line[p] !== NUL && isSpace(line[p])) p++;
    if (at(p) === NUL) return args;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = at(p);
      if (inDouble) {
        if (c === BACKSLASH && at(p + 1) === 0x78 && hexValue(at(p + 2)) >= 0 && hexValue(at(p + 3)) >= 0) {
          cur.push(hexValue(at(p + 2)) * 16 + hexValue(at(p + 3)));
          p += 3;
        } else if (c === BACKSLASH && at(p + 1) !== NUL) {
          p++;
          cur.push(ESCAPES[at(p)] ?? at(p));
        } else if (c === DQUOTE) {
          if (at(p + 1) !== NUL && !isSpace(at(p + 1))) return null;
          done = true;
        } else if (c === NUL) {
          return null;
        } else cur.push(c);
      } else if (inSingle) {
        if (c === BACKSLASH && at(p + 1) === SQUOTE) {
          p++;
          cur.push(SQUOTE);
        } else if (c === SQUOTE) {
          if (at(p + 1) !== NUL && !isSpace(at(p + 1))) return null;
          done = true;
        } else if (c === NUL) {
          return null;
        } else cur.push(c);
      } else if (c === SPACE || c === LF || c === CR || c === TAB || c === NUL) {
        done = true;
      } else if (c === DQUOTE) inDouble = true;
      else if (c === SQUOTE) inSingle = true;
      else cur.push(c);
      if (at(p) !== NUL) p++;
    }
    args.push(Buffer.from(cur));
  }
}

