/**
 * Range reads of `cairn get --prefix` / `--from --to` and `cairn ls` (etcdctl `get --prefix`,
 * `get KEY END`, `get --prefix --keys-only`): pages of the TLV RANGE opcode (docs/protocol.md
 * "RANGE") through @cairn/client `pages`, printed as they arrive so memory stays one page.
 */
import type { RangePage, RangeReadOptions, ScanOptions } from '@cairn/client';
import { UsageError } from './exit-codes';
import { kvJson } from './txn';

/** What a range read needs from the connection (CairnPool satisfies it). */
export interface RangeConnection {
  /** The pages of a range read, continuation tokens followed (CairnPool `pages`). */
  pages(opts: ScanOptions): AsyncIterable<RangePage>;
  /** One page (CairnPool `range`): `--count-only` sends one COUNT_ONLY request. */
  range(opts: RangeReadOptions): Promise<RangePage>;
}

/** The range options of `get` as commander hands them over. */
export interface RawRangeOptions {
  /** `--prefix P`, or `--prefix` alone (then KEY, or every key, is the prefix). */
  prefix?: string | true;
  from?: string;
  to?: string;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  reverse?: boolean;
  stale?: boolean;
}

/** A validated range read: which keys, and how to print them. */
export interface RangeRead {
  query: ScanOptions;
  countOnly: boolean;
}

/**
 * The range read of `get [KEY] --prefix [P] | --from A [--to B]`, or null for a single-key GET
 * (none of `--prefix`, `--from`, `--to`).
 * @throws UsageError on KEY together with `--prefix P` or `--from`/`--to`, a range flag
 * (`--limit`, `--keys-only`, `--count-only`, `--reverse`) without a range, or no KEY for a GET.
 */
export function rangeReadOf(key: string | undefined, o: RawRangeOptions): RangeRead | null {
  const ranged = o.prefix !== undefined || o.from !== undefined || o.to !== undefined;
  if (!ranged) {
    const stray = (['limit', 'keysOnly', 'countOnly', 'reverse'] as const).filter((f) => o[f] !== undefined);
    if (stray.length) throw new UsageError(`--${stray[0].replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} needs a range: --prefix P or --from A [--to B]`);
    if (key === undefined) throw new UsageError('get needs a KEY, --prefix P or --from A [--to B]');
    return null;
  }
  if (o.prefix !== undefined && (o.from !== undefined || o.to !== undefined)) throw new UsageError('--prefix excludes --from and --to');
  if (key !== undefined && (typeof o.prefix === 'string' || o.from !== undefined || o.to !== undefined)) throw new UsageError('give the range with KEY --prefix, --prefix P, or --from A [--to B], not both KEY and P/A');
  if (o.keysOnly && o.countOnly) throw new UsageError('--keys-only and --count-only exclude each other');
  const common = { keysMax: o.limit, keysOnly: o.keysOnly === true, reverse: o.reverse === true, stale: o.stale === true };
  const where = o.prefix !== undefined ? { prefix: o.prefix === true ? (key ?? '') : o.prefix } : { start: o.from ?? '', end: o.to };
  return { query: { ...where, ...common }, countOnly: o.countOnly === true };
}

/** Where a range read prints: raw bytes (keys and values are written as they are). */
export interface RangeOutput {
  write(b: string | Uint8Array): unknown;
}

/** What was printed: the first page's `count` and revision, the last page's `more`, pages read, keys printed. */
export interface RangeSummary {
  count: number;
  revision: number;
  more: boolean;
  pages: number;
  keys: number;
}

/**
 * Prints a range read page by page. Text (etcdctl's): each key on a line, then its value on a line
 * unless keys only; `--count-only`: the count. `json`: one object,
 * `{"kvs":[…],"count","more","revision","pages"}` (`revision` of the first page; each page is
 * consistent at its own), a kv as in `get --json`, written as the pages arrive; `keysField`
 * (`cairn ls --json`) lists `"keys":[…]` instead of `kvs`.
 */
export async function printRange(c: RangeConnection, r: RangeRead, out: RangeOutput, json: boolean, keysField = false): Promise<RangeSummary> {
  if (r.countOnly) {
    const { keysMax: _keysMax, ...q } = r.query;
    const page = await c.range({ ...q, countOnly: true });
    out.write(json ? `${JSON.stringify({ count: page.count, revision: page.revision })}\n` : `${page.count}\n`);
    return { count: page.count, revision: page.revision, more: false, pages: 1, keys: 0 };
  }
  const s: RangeSummary = { count: 0, revision: 0, more: false, pages: 0, keys: 0 };
  if (json) out.write(keysField ? '{"keys":[' : '{"kvs":[');
  const NL = Buffer.from('\n');
  for await (const page of c.pages(r.query)) {
    if (s.pages++ === 0) ({ count: s.count, revision: s.revision } = page);
    s.more = page.more;
    for (const it of page.items) {
      const kv = kvJson({ ...it, modRevision: it.revision }, r.query.keysOnly);
      if (json) out.write(`${s.keys ? ',' : ''}${JSON.stringify(keysField ? (kv.key ?? { keyBase64: kv.keyBase64 }) : kv)}`);
      else out.write(Buffer.concat(r.query.keysOnly ? [it.key, NL] : [it.key, NL, it.value, NL]));
      s.keys++;
    }
  }
  if (json) out.write(`],"count":${s.count},"more":${s.more},"revision":${s.revision},"pages":${s.pages}}\n`);
  return s;
}
