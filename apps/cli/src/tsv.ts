import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { CodedError } from '@cairn/protocol';

/**
 * One data row of a TSV file: key = first column, value = the rest of the row after the first
 * tab. `keyBytes` / `valueBytes` are the row's UTF-8 bytes as import sends them; `key` / `value`
 * the same decoded (for messages and verify's compare).
 */
export interface TsvRow {
  /** 1-based line number in the file (for error messages). */
  readonly lineNo: number;
  readonly key: string;
  readonly value: string;
  readonly keyBytes: Buffer;
  readonly valueBytes: Buffer;
  /** Bytes of the line including its line ending, for byte-based progress. */
  readonly bytes: number;
}

/** `auto`: skip line 1 when it starts with `name\t`; `yes`: always skip line 1; `no`: never. */
export type SkipHeader = 'auto' | 'yes' | 'no';

export function isSkipHeader(s: string): s is SkipHeader {
  return s === 'auto' || s === 'yes' || s === 'no';
}

/** Thrown for a row whose key is empty (a line starting with a tab): the store has no empty key. */
export class TsvRowError extends CodedError {
  readonly code = 'TSV_ROW_INVALID';
  constructor(
    readonly lineNo: number,
    message: string,
  ) {
    super(`line ${lineNo}: ${message}`);
  }
}

/** The longest line read, bytes: beyond any row a gateway takes (`keyBytesMax` ≤ 64 KiB plus `valueBytesMax` ≤ 16 MiB). */
export const TSV_LINE_BYTES_MAX = 17 * 1024 * 1024;
/** Reads of a TSV file, bytes. */
const FILE_READ_BYTES = 256 * 1024;
const LF = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
/** Line 1 of the npm packages export starts so (`--skip-header auto`). */
const HEADER_START = Buffer.from('name\t', 'latin1');

/** A row whose strings are decoded only when asked for (import sends the bytes; most rows never need the strings). */
class ByteRow implements TsvRow {
  private keyText: string | undefined;
  private valueText: string | undefined;
  constructor(
    readonly lineNo: number,
    readonly keyBytes: Buffer,
    readonly valueBytes: Buffer,
    readonly bytes: number,
  ) {}

  get key(): string {
    return (this.keyText ??= this.keyBytes.toString('utf8'));
  }

  get value(): string {
    return (this.valueText ??= this.valueBytes.toString('utf8'));
  }
}

/**
 * The rows of TSV bytes arriving in `chunks` (any split), as Node's readline splits lines: at LF,
 * CRLF or a lone CR (a CR at a chunk's end waits for the next byte). Skips the header per
 * `skipHeader` and empty lines. A line that is not valid UTF-8 is stored as its decoding (each
 * bad sequence U+FFFD), as reading it as text did. The rows' bytes are views of the chunks (no
 * copy), so a chunk lives as long as a row of it.
 * @throws TsvRowError on an empty key, or a line longer than TSV_LINE_BYTES_MAX (never held whole).
 */
export async function* tsvChunkRows(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, skipHeader: SkipHeader = 'auto'): AsyncGenerator<TsvRow> {
  const s = { lineNo: 0, skipHeader };
  // The unfinished line: chunks without a line ending are kept apart and joined once (no copy per chunk).
  let parts: Buffer[] = [];
  let partsBytes = 0;
  for await (const chunk of chunks) {
    if (parts.length > 0 && chunk.indexOf(LF) < 0 && chunk.indexOf(CR) < 0) {
      parts.push(chunk);
      partsBytes += chunk.length;
      if (partsBytes > TSV_LINE_BYTES_MAX) throw new TsvRowError(s.lineNo + 1, `line longer than ${TSV_LINE_BYTES_MAX} bytes`);
      continue;
    }
    const buf = parts.length > 0 ? Buffer.concat([...parts, chunk]) : chunk;
    const rows: TsvRow[] = [];
    const end = splitLines(buf, false, s, rows);
    yield* rows;
    parts = end < buf.length ? [buf.subarray(end)] : [];
    partsBytes = buf.length - end;
    if (partsBytes > TSV_LINE_BYTES_MAX) throw new TsvRowError(s.lineNo + 1, `line longer than ${TSV_LINE_BYTES_MAX} bytes`);
  }
  if (parts.length > 0) {
    const rows: TsvRow[] = [];
    splitLines(Buffer.concat(parts), true, s, rows);
    yield* rows;
  }
}

/** The rows of a TSV file (`tsvChunkRows`), streamed, never loaded whole. */
export function tsvFileRows(path: string, skipHeader: SkipHeader = 'auto'): AsyncGenerator<TsvRow> {
  return tsvChunkRows(createReadStream(path, { highWaterMark: FILE_READ_BYTES }) as AsyncIterable<Buffer>, skipHeader);
}

/** The rows of `lines` (strings without their line endings): `tsvChunkRows` of each line and a LF. */
export function tsvRows(lines: AsyncIterable<string> | Iterable<string>, skipHeader: SkipHeader = 'auto'): AsyncGenerator<TsvRow> {
  return tsvChunkRows(
    (async function* () {
      for await (const line of lines) yield Buffer.from(`${line}\n`, 'utf8');
    })(),
    skipHeader,
  );
}

/** Appends the rows of the whole lines of `buf` to `out` (`last`: the final line needs no ending); returns where the unfinished line starts. */
function splitLines(buf: Buffer, last: boolean, s: { lineNo: number; skipHeader: SkipHeader }, out: TsvRow[]): number {
  let pos = 0;
  // CRs are rare: the next one is looked up again only once passed.
  let cr = buf.indexOf(CR);
  while (pos < buf.length) {
    if (cr >= 0 && cr < pos) cr = buf.indexOf(CR, pos);
    const lf = buf.indexOf(LF, pos);
    let stop: number;
    let next: number;
    if (cr >= 0 && (lf < 0 || cr < lf)) {
      // A lone CR or a CRLF; a CR last in the chunk may be the first half of a CRLF.
      if (cr === buf.length - 1 && !last) return pos;
      stop = cr;
      next = buf[cr + 1] === LF ? cr + 2 : cr + 1;
    } else if (lf >= 0) {
      stop = lf;
      next = lf + 1;
    } else {
      if (!last) return pos;
      stop = next = buf.length;
    }
    line(buf.subarray(pos, stop), next - pos, s, out);
    pos = next;
  }
  return pos;
}

function line(text: Buffer, bytes: number, s: { lineNo: number; skipHeader: SkipHeader }, out: TsvRow[]): void {
  const lineNo = ++s.lineNo;
  if (lineNo === 1 && (s.skipHeader === 'yes' || (s.skipHeader === 'auto' && text.subarray(0, HEADER_START.length).equals(HEADER_START)))) return;
  if (text.length === 0) return;
  const t = isUtf8(text) ? text : Buffer.from(text.toString('utf8'), 'utf8');
  const tab = t.indexOf(TAB);
  if (tab === 0) throw new TsvRowError(lineNo, 'empty key (the line starts with a tab)');
  out.push(tab < 0 ? new ByteRow(lineNo, t, t.subarray(t.length), bytes) : new ByteRow(lineNo, t.subarray(0, tab), t.subarray(tab + 1), bytes));
}
