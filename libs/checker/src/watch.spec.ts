import {
  WatchHistoryError,
  checkCommittedHistory,
  checkWatchStream,
  checkWatchStreams,
  checkWritesCommitted,
  committedHistory,
  formatWatchCheckResult,
  inWatchRange,
  type CommittedWrite,
  type WatchEvent,
  type WatchItem,
  type WatchStream,
} from './index';

const put = (revision: number, key: string, value: string): CommittedWrite => ({ type: 'put', key, value, revision });
const del = (revision: number, key: string): CommittedWrite => ({ type: 'delete', key, revision });

// r1 a=1 · r2 b=1 · r3 a=2 · r4 del a · r5 del zz (absent: no event) · r6 a=3, c=1 (one txn) · r7 x=1 (outside prefix "") · r8 b=2
const HISTORY = committedHistory([put(1, 'a', 'a1'), put(2, 'b', 'b1'), put(3, 'a', 'a2'), del(4, 'a'), del(5, 'zz'), put(6, 'a', 'a3'), put(6, 'c', 'c1'), put(7, 'x', 'x1'), put(8, 'b', 'b2')]);
const ev = (modRevision: number, key: string): WatchEvent => {
  const e = HISTORY.events.find((x) => x.modRevision === modRevision && x.key === key);
  if (!e) throw new Error(`no committed event ${key}@${modRevision}`);
  return { ...e };
};
const event = (e: WatchEvent): WatchItem => ({ kind: 'event', event: e });
const open = (fromRevision: number): WatchItem => ({ kind: 'open', fromRevision });
const progress = (revision: number): WatchItem => ({ kind: 'progress', revision });
const stream = (items: WatchItem[], range: WatchStream['range'] = { prefix: '' }, throughRevision?: number): WatchStream => ({ watcherId: 1, range, items, throughRevision });
const messages = (s: WatchStream, oldestRetainedRevision?: number) => checkWatchStream(HISTORY, s, { oldestRetainedRevision }).map((v) => v.message);

describe('committedHistory: events from revision-ordered puts and deletes', () => {
  it('gives create revisions and versions as etcd mvcc does, and no event for a delete of an absent key', () => {
    expect(HISTORY.events.map((e) => [e.type, e.key, e.modRevision, e.createRevision, e.version])).toEqual([
      ['put', 'a', 1, 1, 1],
      ['put', 'b', 2, 2, 1],
      ['put', 'a', 3, 1, 2],
      ['delete', 'a', 4, 0, 0],
      ['put', 'a', 6, 6, 1],
      ['put', 'c', 6, 6, 1],
      ['put', 'x', 7, 7, 1],
      ['put', 'b', 8, 2, 2],
    ]);
    expect(HISTORY.firstRevision).toBe(1);
    expect(HISTORY.lastRevision).toBe(8);
    expect(checkCommittedHistory(HISTORY)).toEqual([]);
  });

  it('refuses a history out of revision order or with a key twice in one revision', () => {
    expect(() => committedHistory([put(2, 'a', '1'), put(1, 'b', '1')])).toThrow(WatchHistoryError);
    expect(() => committedHistory([put(2, 'a', '1'), del(2, 'a')])).toThrow(/twice at revision 2/);
  });
});

describe('checkCommittedHistory: a history given as events is consistent with itself', () => {
  it('accepts keys that existed before the history starts', () => {
    const h = { firstRevision: 10, lastRevision: 12, events: [{ type: 'put' as const, key: 'a', value: 'v', modRevision: 10, createRevision: 3, version: 5 }, { type: 'put' as const, key: 'a', value: 'w', modRevision: 12, createRevision: 3, version: 6 }] };
    expect(checkCommittedHistory(h)).toEqual([]);
  });

  it('rejects a wrong version, a delete of an absent key and events out of order', () => {
    const events = HISTORY.events.map((e) => ({ ...e }));
    events[2]!.version = 3; // a=2 at r3 is version 2
    expect(checkCommittedHistory({ ...HISTORY, events })[0]!.message).toMatch(/create revision 1, version 3; the history gives 1, 2/);
    const afterDelete = [...HISTORY.events.slice(0, 4), { type: 'delete' as const, key: 'a', value: '', modRevision: 5, createRevision: 0, version: 0 }];
    expect(checkCommittedHistory({ ...HISTORY, events: afterDelete })[0]!.message).toMatch(/delete of "a" at revision 5, which does not exist/);
    expect(checkCommittedHistory({ ...HISTORY, events: [HISTORY.events[1]!, HISTORY.events[0]!] })[0]!.message).toMatch(/out of order/);
  });
});

describe('checkWatchStream: histories that pass', () => {
  it('a prefix watch from revision 3 that saw every matching event once, in order, with progress', () => {
    const s = stream([open(3), event(ev(3, 'a')), event(ev(4, 'a')), progress(5), event(ev(6, 'a')), event(ev(6, 'c')), event(ev(8, 'b')), progress(9)], { prefix: '' }, 9);
    expect(messages({ ...s, items: s.items.filter((it) => it.kind !== 'event' || it.event.key !== 'x') })).toEqual(expect.arrayContaining([expect.stringMatching(/gap: put "x"/)]));
    const withX: WatchItem[] = [open(3), event(ev(3, 'a')), event(ev(4, 'a')), progress(5), event(ev(6, 'a')), event(ev(6, 'c')), event(ev(7, 'x')), event(ev(8, 'b')), progress(9)];
    expect(messages(stream(withX, { prefix: '' }, 9))).toEqual([]);
  });

  it('a key watch and a range watch see only their keys', () => {
    expect(messages(stream([open(1), event(ev(1, 'a')), event(ev(3, 'a')), event(ev(4, 'a')), event(ev(6, 'a'))], { key: 'a' }, 8))).toEqual([]);
    expect(messages(stream([open(1), event(ev(2, 'b')), event(ev(6, 'c')), event(ev(8, 'b'))], { start: 'b', end: 'd' }, 8))).toEqual([]);
    expect(inWatchRange({ start: 'b', end: 'd' }, 'd')).toBe(false);
  });

  it('resumptions from the last revision seen + 1 (after a gateway failover) leave no gap and no duplicate', () => {
    const items = [open(1), event(ev(1, 'a')), event(ev(2, 'b')), open(3), event(ev(3, 'a')), event(ev(4, 'a')), progress(5), open(6), event(ev(6, 'a')), event(ev(6, 'c')), event(ev(7, 'x')), event(ev(8, 'b'))];
    const r = checkWatchStreams(HISTORY, [stream(items, { prefix: '' }, 8)]);
    expect(r).toMatchObject({ ok: true, streams: 1, events: 8, resumptions: 2 });
    expect(formatWatchCheckResult(r)).toBe('watch streams consistent: 1 streams, 8 events, 2 resumptions, 0 violations');
  });

  it('COMPACTED below the oldest retained revision, then a watch from the oldest one', () => {
    const items: WatchItem[] = [open(1), { kind: 'compacted', fromRevision: 1, oldestRevision: 4 }, open(4), event(ev(4, 'a')), event(ev(6, 'a'))];
    expect(messages(stream(items, { key: 'a' }, 8), 4)).toEqual([]);
  });
});

describe('checkWatchStream: histories that fail', () => {
  const ok: WatchItem[] = [open(1), event(ev(1, 'a')), event(ev(2, 'b')), event(ev(3, 'a')), event(ev(4, 'a')), event(ev(6, 'a')), event(ev(6, 'c')), event(ev(7, 'x')), event(ev(8, 'b'))];
  const without = (i: number) => ok.filter((_, j) => j !== i);

  it('the passing base history passes', () => {
    expect(messages(stream(ok, { prefix: '' }, 8))).toEqual([]);
  });

  it('a gap: an event skipped, one of a transaction missing, or the tail missing at the end', () => {
    expect(messages(stream(without(3)))).toEqual([expect.stringMatching(/^gap: put "a" = "a2" at revision 3 .* not delivered before delete "a" at revision 4/)]);
    expect(messages(stream(without(6)))).toEqual([expect.stringMatching(/^gap: put "c" = "c1" at revision 6/)]);
    expect(messages(stream(without(8), { prefix: '' }, 8))).toEqual([expect.stringMatching(/^gap: put "b" = "b2" at revision 8 .* the end of the stream/)]);
  });

  it('a duplicate, also across a resumption from an older revision', () => {
    expect(messages(stream([...ok.slice(0, 3), event(ev(2, 'b')), ...ok.slice(3)]))).toEqual([expect.stringMatching(/^duplicate: put "b"/)]);
    expect(messages(stream([...ok.slice(0, 4), open(3), event(ev(3, 'a')), ...ok.slice(4)]))).toEqual([expect.stringMatching(/^duplicate: put "a" = "a2" at revision 3/)]);
  });

  it('events out of revision order', () => {
    const swapped = [...ok.slice(0, 2), ok[3]!, ok[2]!, ...ok.slice(4)];
    expect(messages(stream(swapped))).toEqual(expect.arrayContaining([expect.stringMatching(/^out of order: put "b" = "b1" at revision 2/)]));
  });

  it('an event that differs from the committed one (value, create revision, version, type) or was never committed', () => {
    const wrong = (patch: Partial<WatchEvent>) => messages(stream([...ok.slice(0, 3), event({ ...ev(3, 'a'), ...patch }), ...ok.slice(4)]));
    expect(wrong({ value: 'a1' })).toEqual([expect.stringMatching(/differs from the committed put "a" = "a2"/)]);
    expect(wrong({ createRevision: 3 })).toEqual([expect.stringMatching(/create 3, version 2\) differs/)]);
    expect(wrong({ version: 1 })).toEqual([expect.stringMatching(/differs/)]);
    expect(wrong({ type: 'delete', value: '', createRevision: 0, version: 0 })).toEqual([expect.stringMatching(/^delete "a" at revision 3 .* differs/)]);
    const phantom: WatchEvent = { type: 'put', key: 'q', value: 'q1', modRevision: 5, createRevision: 5, version: 1 };
    expect(messages(stream([...ok.slice(0, 5), event(phantom), ...ok.slice(5)]))).toEqual([expect.stringMatching(/put "q" = "q1" at revision 5 .* was never committed/)]);
  });

  it('an event outside the range, or below the revision the watch was opened from', () => {
    expect(messages(stream([open(1), event(ev(1, 'a')), event(ev(2, 'b'))], { key: 'a' }))).toEqual([expect.stringMatching(/outside the watched range \{"key":"a"\}/)]);
    expect(messages(stream([open(3), event(ev(2, 'b')), event(ev(3, 'a'))]))).toEqual([expect.stringMatching(/put "b" .* is below revision 3, which the watch was opened from/)]);
  });

  it('a progress notification that claims past an event not yet delivered', () => {
    const items = [open(1), event(ev(1, 'a')), event(ev(2, 'b')), progress(3), event(ev(3, 'a')), ...ok.slice(4)];
    expect(messages(stream(items))).toEqual([expect.stringMatching(/^gap: put "a" = "a2" at revision 3 .* before the progress notification at revision 3/), expect.stringMatching(/arrives after revision 3 was claimed complete/)]);
  });

  it('COMPACTED for a retained revision, or naming an oldest revision not above the one asked', () => {
    expect(messages(stream([open(2), { kind: 'compacted', fromRevision: 2, oldestRevision: 4 }]), 1)).toEqual([expect.stringMatching(/^COMPACTED for revision 2, but the cluster retained every revision from 1/)]);
    expect(messages(stream([open(2), { kind: 'compacted', fromRevision: 2, oldestRevision: 2 }]), 3)).toEqual([expect.stringMatching(/names oldest revision 2, not above it/)]);
  });

  it('a resumption that skips revisions it has not seen', () => {
    expect(messages(stream([open(1), event(ev(1, 'a')), open(4), event(ev(4, 'a'))]))).toEqual([expect.stringMatching(/^resumed from revision 4, skipping 2..3/), expect.stringMatching(/^gap: put "b" = "b1"/), expect.stringMatching(/^gap: put "a" = "a2"/)]);
  });

  it('a stream that must start with open; a flood of gaps is capped per stream', () => {
    expect(() => checkWatchStream(HISTORY, stream([event(ev(1, 'a'))]))).toThrow(WatchHistoryError);
    const big = committedHistory(Array.from({ length: 50 }, (_, i) => put(i + 1, `k${i}`, `v${i}`)));
    const v = checkWatchStream(big, stream([open(1)], { prefix: '' }, 50));
    expect(v).toHaveLength(21);
    expect(v[20]!.message).toBe('30 more violations not listed (20 per stream)');
  });
});

describe('checkWritesCommitted: the committed history against what the writers saw', () => {
  it('passes when acknowledged writes are committed at their revisions and every committed value has a writer', () => {
    const writes = [
      { type: 'put' as const, key: 'a', value: 'a1', outcome: 'ok' as const, revision: 1 },
      { type: 'put' as const, key: 'b', value: 'b1', outcome: 'info' as const },
      { type: 'put' as const, key: 'a', value: 'a2', outcome: 'ok' as const, revision: 3 },
      { type: 'delete' as const, key: 'a', outcome: 'ok' as const, revision: 4 },
      { type: 'delete' as const, key: 'zz', outcome: 'ok' as const, revision: 5 },
      { type: 'put' as const, key: 'a', value: 'a3', outcome: 'ok' as const, revision: 6 },
      { type: 'put' as const, key: 'c', value: 'c1', outcome: 'ok' as const, revision: 6 },
      { type: 'put' as const, key: 'x', value: 'x1', outcome: 'ok' as const, revision: 7 },
      { type: 'put' as const, key: 'b', value: 'b2', outcome: 'info' as const },
      { type: 'put' as const, key: 'b', value: 'never', outcome: 'fail' as const },
    ];
    expect(checkWritesCommitted(HISTORY, writes)).toEqual([]);
  });

  it('fails on an acknowledged write missing or elsewhere, a failed write committed, a value nobody wrote, a value committed twice', () => {
    const base = [{ type: 'put' as const, key: 'b', value: 'b1', outcome: 'ok' as const, revision: 2 }];
    const h = committedHistory([put(1, 'a', 'a1'), put(2, 'b', 'b1'), put(3, 'a', 'a1')]);
    const v = checkWritesCommitted(h, [
      ...base,
      { type: 'put', key: 'a', value: 'a1', outcome: 'ok', revision: 2 },
      { type: 'put', key: 'a', value: 'a1', outcome: 'fail' },
      { type: 'delete', key: 'b', outcome: 'ok', revision: 2 },
    ]).map((x) => x.message);
    expect(v).toEqual([
      expect.stringMatching(/put "a" = "a1" at revision 3 .* commits the value of put "a" = "a1" at revision 1/),
      expect.stringMatching(/put "a" = "a1" acknowledged at revision 2, but the history has no event of the key there/),
      expect.stringMatching(/a failed put of "a" = "a1" was committed/),
      expect.stringMatching(/delete "b" acknowledged at revision 2, but the history has put "b"/),
    ]);
    expect(checkWritesCommitted(h, base).map((x) => x.message)).toEqual(expect.arrayContaining([expect.stringMatching(/put "a" = "a1" at revision 1 .* no writer wrote this value/)]));
  });
});
