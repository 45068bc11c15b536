import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileLines, isHeaderLine, parseTsvLine, tsvRows, type TsvRow } from './tsv';

async function collect(lines: string[], skip?: 'auto' | 'yes' | 'no'): Promise<TsvRow[]> {
  const out: TsvRow[] = [];
  for await (const r of tsvRows(lines, skip)) out.push(r);
  return out;
}

describe('parseTsvLine', () => {
  it('key is the first column, value the rest of the row with its tabs', () => {
    expect(parseTsvLine('0http\t5.1.0\t24764\tZero friction HTTP\trouter')).toEqual({ key: '0http', value: '5.1.0\t24764\tZero friction HTTP\trouter' });
  });
  it('keeps an empty last column (empty summary) as a trailing tab', () => {
    expect(parseTsvLine('0g\t0.4.2\t2352\t')).toEqual({ key: '0g', value: '0.4.2\t2352\t' });
  });
  it('drops the \\r of a CRLF line ending only', () => {
    expect(parseTsvLine('k\tv\r')).toEqual({ key: 'k', value: 'v' });
    expect(parseTsvLine('k\tv\rx')).toEqual({ key: 'k', value: 'v\rx' });
  });
  it('a row without a tab has an empty value; an empty line is no row', () => {
    expect(parseTsvLine('lonely')).toEqual({ key: 'lonely', value: '' });
    expect(parseTsvLine('')).toBeNull();
    expect(parseTsvLine('\r')).toBeNull();
  });
  it('keeps non-ASCII bytes as they are', () => {
    expect(parseTsvLine('00ricardo-utils\tRicardo Briceño — ✓')).toEqual({ key: '00ricardo-utils', value: 'Ricardo Briceño — ✓' });
  });
});

describe('tsvRows', () => {
  it('auto skips a "name<TAB>" header on line 1 only', async () => {
    const rows = await collect(['name\tversion\tdownloads_a_month\tsummary', 'a\t1', 'name\tx']);
    expect(rows.map((r) => [r.lineNo, r.key, r.value])).toEqual([
      [2, 'a', '1'],
      [3, 'name', 'x'],
    ]);
    expect(isHeaderLine('name\tversion')).toBe(true);
    expect(isHeaderLine('names\tversion')).toBe(false);
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
    for await (const r of tsvRows(fileLines(f))) rows.push(r);
    expect(rows.map((r) => [r.key, r.value])).toEqual([
      ['left-pad', '1.3.0\tpad\tthings'],
      ['empty', '0.1.0\t'],
      ['last', '1'],
    ]);
  });
});
