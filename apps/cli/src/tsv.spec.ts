import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSV_LINE_BYTES_MAX, tsvChunkRows, tsvFileRows, tsvRows, type TsvRow } from './tsv';

async function collect(lines: string[], skip?: 'auto' | 'yes' | 'no'): Promise<TsvRow[]> {
  const out: TsvRow[] = [];
  for await (const r of tsvRows(lines, skip)) out.push(r);
  return out;
}

/** The rows of one line. */
async function parse(line: string): Promise<{ key: string; value: string } | null> {
  const rows = await collect([line], 'no');
  return rows.length ? { key: rows[0].key, value: rows[0].value } : null;
}

/** The rows of `text` split into chunks of `size` bytes. */
async function rowsOfChunks(text: Buffer, size: number): Promise<TsvRow[]> {
  const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.subarray(i * size, (i + 1) * size));
  const out: TsvRow[] = [];
  for await (const r of tsvChunkRows(chunks, 'no')) out.push(r);
  return out;
}

describe('a TSV line', () => {
  it('key is the first column, value the rest of the row with its tabs', async () => {
    expect(await parse('0http\t5.1.0\t24764\tZero friction HTTP\trouter')).toEqual({ key: '0http', value: '5.1.0\t24764\tZero friction HTTP\trouter' });
  });
  it('keeps an empty last column (empty summary) as a trailing tab', async () => {
    expect(await parse('0g\t0.4.2\t2352\t')).toEqual({ key: '0g', value: '0.4.2\t2352\t' });
  });
  it('drops the \\r of a CRLF line ending; a lone \\r ends a line, as readline has it', async () => {
    expect(await parse('k\tv\r')).toEqual({ key: 'k', value: 'v' });
    expect((await collect(['k\tv\rx'], 'no')).map((r) => [r.lineNo, r.key, r.value])).toEqual([
      [1, 'k', 'v'],
      [2, 'x', ''],
    ]);
  });
  it('a row without a tab has an empty value; an empty line is no row', async () => {
    expect(await parse('lonely')).toEqual({ key: 'lonely', value: '' });
    expect(await parse('')).toBeNull();
    expect(await parse('\r')).toBeNull();
  });
  it('keeps non-ASCII bytes as they are; a line that is not UTF-8 is stored as its decoding (U+FFFD)', async () => {
    expect(await parse('00ricardo-utils\tRicardo Briceño — ✓')).toEqual({ key: '00ricardo-utils', value: 'Ricardo Briceño — ✓' });
    const [r] = await rowsOfChunks(Buffer.from([0x6b, 0x09, 0x61, 0xff, 0x62, 0x0a]), 64);
    expect(r.valueBytes).toEqual(Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62]));
  });
  it('gives the same rows, bytes and line numbers whatever the chunks (a CRLF or a UTF-8 character split between two)', async () => {
    const text = Buffer.from('a\tñ✓\r\nb\t2\r\rc\t3\n\nd\tx\ty\r\ne', 'utf8');
    const whole = await rowsOfChunks(text, text.length);
    expect(whole.map((r) => [r.lineNo, r.key, r.value, r.bytes])).toEqual([
      [1, 'a', 'ñ✓', 9],
      [2, 'b', '2', 4],
      [4, 'c', '3', 4],
      [6, 'd', 'x\ty', 7],
      [7, 'e', '', 1],
    ]);
    for (const size of [1, 2, 3, 5]) expect((await rowsOfChunks(text, size)).map((r) => [r.lineNo, r.key, r.value, r.bytes])).toEqual(whole.map((r) => [r.lineNo, r.key, r.value, r.bytes]));
  });
  it('refuses a line longer than TSV_LINE_BYTES_MAX without holding it whole', async () => {
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x61);
    const chunks = Array.from({ length: Math.ceil(TSV_LINE_BYTES_MAX / chunk.length) + 2 }, () => chunk);
    await expect(rowsOfChunks(Buffer.concat([Buffer.from('k\n'), ...chunks]), chunk.length)).rejects.toThrow(`line 2: line longer than ${TSV_LINE_BYTES_MAX} bytes`);
  });
});

describe('tsvRows', () => {
  it('auto skips a "name<TAB>" header on line 1 only', async () => {
    const rows = await collect(['name\tversion\tdownloads_a_month\tsummary', 'a\t1', 'name\tx']);
    expect(rows.map((r) => [r.lineNo, r.key, r.value])).toEqual([
      [2, 'a', '1'],
      [3, 'name', 'x'],
    ]);
    expect((await collect(['names\tversion', 'a\t1'])).map((r) => r.key)).toEqual(['names', 'a']);
  });
  it('auto keeps a first line that is data', async () => {
    expect((await collect(['a\t1', 'b\t2'])).map((r) => r.key)).toEqual(['a', 'b']);
  });
  it('yes always skips line 1, no never does', async () => {
    expect((await collect(['a\t1', 'b\t2'], 'yes')).map((r) => r.key)).toEqual(['b']);
    expect((await collect(['name\tv', 'b\t2'], 'no')).map((r) => r.key)).toEqual(['name', 'b']);
  });
  it('skips empty lines and counts bytes with the line ending', async () => {
    const rows = await collect(['a\tñ', '', 'b\t2']);
    expect(rows.map((r) => [r.lineNo, r.key, r.bytes])).toEqual([
      [1, 'a', 5],
      [3, 'b', 4],
    ]);
  });
  it('rejects an empty key with its line number', async () => {
    await expect(collect(['a\t1', '\tvalue'])).rejects.toThrow('line 2: empty key');
  });
  it('streams a CRLF file from disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    const f = join(dir, 'x.tsv');
    writeFileSync(f, 'name\tversion\tsummary\r\nleft-pad\t1.3.0\tpad\tthings\r\nempty\t0.1.0\t\r\nlast\t1');
    const rows: TsvRow[] = [];
    for await (const r of tsvFileRows(f)) rows.push(r);
    expect(rows.map((r) => [r.key, r.value])).toEqual([
      ['left-pad', '1.3.0\tpad\tthings'],
      ['empty', '0.1.0\t'],
      ['last', '1'],
    ]);
  });
});
