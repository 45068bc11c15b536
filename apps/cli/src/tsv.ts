import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CodedError } from '@cairn/protocol';

/** One data row of a TSV file: key = first column, value = the rest of the row after the first tab. */
export interface TsvRow {
  /** 1-based line number in the file (for error messages). */
  lineNo: number;
  key: string;
  value: string;
  /** Bytes of the line including its line ending, for byte-based progress. */
  bytes: number;
}

/** `auto`: skip line 1 when it starts with `name\t`; `yes`: always skip line 1; `no`: never. */
export type SkipHeader = 'auto' | 'yes' | 'no';

export function isSkipHeader(s: string): s is SkipHeader {
  return s === 'auto' || s === 'yes' || s === 'no';
}

/** True for the header line of the npm packages export (`name\tversion\t...`). */
export function isHeaderLine(line: string): boolean {
  return line.startsWith('name\t');
}

/**
 * Splits one line (without its `\n`; a trailing `\r` from CRLF is dropped) into key and value.
 * The value keeps every other byte as is, tabs included; a row without a tab has an empty value.
 * @returns null for an empty line (nothing to store).
 */
export function parseTsvLine(line: string): { key: string; value: string } | null {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text.length === 0) return null;
  const tab = text.indexOf('\t');
  if (tab < 0) return { key: text, value: '' };
  return { key: text.slice(0, tab), value: text.slice(tab + 1) };
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

/**
 * Turns lines into rows: skips the header per `skipHeader` and empty lines.
 * @throws TsvRowError on an empty key.
 */
export async function* tsvRows(lines: AsyncIterable<string> | Iterable<string>, skipHeader: SkipHeader = 'auto'): AsyncGenerator<TsvRow> {
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    const bytes = Buffer.byteLength(line, 'utf8') + 1;
    if (lineNo === 1 && (skipHeader === 'yes' || (skipHeader === 'auto' && isHeaderLine(line)))) continue;
    const kv = parseTsvLine(line);
    if (!kv) continue;
    if (kv.key.length === 0) throw new TsvRowError(lineNo, 'empty key (the line starts with a tab)');
    yield { lineNo, key: kv.key, value: kv.value, bytes };
  }
}

/** Streams the lines of a UTF-8 file (LF or CRLF) without reading it all into memory. */
export function fileLines(path: string): AsyncIterable<string> {
  const input = createReadStream(path);
  return createInterface({ input, crlfDelay: Infinity });
}
