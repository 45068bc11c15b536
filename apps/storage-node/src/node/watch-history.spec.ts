import * as fs from 'node:fs';
import * as os from 'node:os';
import { BitcaskEngine } from '@cairn/engine';
import { CommandOp, decodeWatchEvents, decodeWatchHistoryReply, encodeWatchHistoryRequest, WatchEventType, WatchHistoryResult, type Command, type WatchEvent } from '@cairn/protocol';
import { entriesOf, useTempDir } from './apply.spec-helpers';
import { CommandApplier } from './command-applier';
import { WatchHistory } from './watch-history';
import { WatchSource } from './watch-source';
import { realClock } from '@cairn/world';

const set = (key: string, value: string): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from(value) });
const del = (key: string): Command => ({ op: CommandOp.Delete, key: Buffer.from(key), value: Buffer.alloc(0) });
const incr = (key: string, by: bigint): Command => ({ op: CommandOp.Incr, key: Buffer.from(key), value: Buffer.from(new BigInt64Array([by]).buffer).reverse() });
const put = (key: string, value: string, rev: number, create = rev, version = 1, prev: string | null = null): WatchEvent => ({
  type: WatchEventType.Put,
  key: Buffer.from(key),
  value: Buffer.from(value),
  modRevision: rev,
  createRevision: create,
  version,
  prevValue: prev === null ? null : Buffer.from(prev),
});
const LIMITS = { revisionsMax: 1_000_000, historyMs: 3_600_000, bytesMax: 1024 * 1024 * 1024 };
const all = { start: Buffer.alloc(0), end: null, bytesMax: 1 << 20, eventsMax: 1000 };
const show = (evs: WatchEvent[]) => evs.map((e) => `${e.type === WatchEventType.Put ? 'PUT' : 'DEL'} ${Buffer.from(e.key).toString()}=${Buffer.from(e.value).toString()}@${e.modRevision} c${e.createRevision} v${e.version} prev=${e.prevValue ? Buffer.from(e.prevValue).toString() : '-'}`);

describe('watch events from the applier (the one hook)', () => {
  const dir = useTempDir();

  it('produces one event per mutation with etcd create/mod revision, version and previous value; a DEL of a missing key is no event', async () => {
    const engine = await BitcaskEngine.open({ clock: realClock, dir: dir() });
    const applier = new CommandApplier({ get: (k) => engine.get(k) });
    const b1 = applier.toEngineEntries(entriesOf(1, [set('a', '1'), set('a', '2'), del('missing'), incr('n', 5n)]));
    await engine.apply(b1.engine);
    const b2 = applier.toEngineEntries(entriesOf(5, [set('a', '3'), del('a'), set('a', '4'), incr('n', 1n)]));
    await engine.apply(b2.engine);
    expect(show(b1.events)).toEqual(['PUT a=1@1 c1 v1 prev=-', 'PUT a=2@2 c1 v2 prev=1', 'PUT n=5@4 c4 v1 prev=-']);
    // across batches the engine's keydir supplies create revision and version
    expect(show(b2.events)).toEqual(['PUT a=3@5 c1 v3 prev=2', 'DEL a=@6 c0 v0 prev=3', 'PUT a=4@7 c7 v1 prev=-', 'PUT n=6@8 c4 v2 prev=5']);
    await engine.close();
  });
});

describe('WatchHistory', () => {
  const dir = useTempDir();
  const open = (appliedIndex: number, limits = LIMITS) => WatchHistory.open({ dir: dir(), limits, fsyncPolicy: 'always', appliedIndex });

  it('pages events by revision and key range, whole revisions only, and survives a restart', async () => {
    const h = await open(0);
    await h.append(1, 3, [put('a', '1', 1), put('b', '1', 3)], 0);
    await h.append(4, 4, [], 0);
    await h.append(5, 6, [put('a', '2', 5, 1, 2, '1'), put('c', 'x', 5), put('b', '2', 6, 3, 2, '1')], 0);
    expect(show(h.page({ ...all, fromRevision: 1, toRevision: 0 }, 1 << 20).events)).toHaveLength(5);
    const onlyA = h.page({ ...all, start: Buffer.from('a'), end: Buffer.from('b'), fromRevision: 2, toRevision: 0 }, 1 << 20);
    expect(show(onlyA.events)).toEqual(['PUT a=2@5 c1 v2 prev=1']);
    expect(onlyA.nextRevision).toBe(7);
    // eventsMax 2: revision 5 has two events, so the page stops before it (never half a revision)
    const p1 = h.page({ ...all, eventsMax: 2, fromRevision: 1, toRevision: 0 }, 1 << 20);
    expect(show(p1.events).map((s) => s.split(' ')[1])).toEqual(['a=1@1', 'b=1@3']);
    expect(p1.nextRevision).toBe(5);
    const p2 = h.page({ ...all, eventsMax: 2, fromRevision: p1.nextRevision, toRevision: 0 }, 1 << 20);
    expect(show(p2.events).map((s) => s.split(' ')[1])).toEqual(['a=2@5', 'c=x@5']);
    expect(p2.nextRevision).toBe(6);
    await h.close();
    const again = await open(6);
    expect([again.oldestRevision(), again.lastRevision()]).toEqual([1, 6]);
    expect(again.page({ ...all, fromRevision: 1, toRevision: 0 }, 1 << 20).events).toHaveLength(5);
    await again.close();
  });

  it('answers COMPACTED naming the oldest revision once bounds dropped records (revisions, time, bytes)', async () => {
    const h = await open(0, { revisionsMax: 10, historyMs: 1000, bytesMax: 1024 * 1024 * 1024 });
    for (let r = 1; r <= 20; r++) await h.append(r, r, [put('k', String(r), r, 1, r)], r < 15 ? 0 : 5000);
    h.trim(5000);
    // revisions: r ≤ 20 − 10 dropped; time: atMs 0 < 5000 − 1000 dropped → records 15..20 stay
    expect(h.oldestRevision()).toBe(15);
    const c = h.page({ ...all, fromRevision: 3, toRevision: 0 }, 1 << 20);
    expect([c.result, c.oldestRevision]).toEqual([WatchHistoryResult.Compacted, 15]);
    expect(h.page({ ...all, fromRevision: 15, toRevision: 0 }, 1 << 20).events).toHaveLength(6);
    // time passes with no writes: every record goes, and only the future can be watched
    h.trim(10_000);
    expect(h.oldestRevision()).toBe(21);
    expect(h.page({ ...all, fromRevision: 21, toRevision: 0 }, 1 << 20)).toMatchObject({ result: WatchHistoryResult.Ok, events: [] });
    await h.close();
  });

  it('keeps the bytes bound (newest record always) and restarts after a gap or a lost tail', async () => {
    const h = await open(0, { ...LIMITS, bytesMax: 1024 * 1024 });
    const big = 'x'.repeat(400 * 1024);
    for (let r = 1; r <= 5; r++) await h.append(r, r, [put('k', big, r)], 0);
    h.trim(0);
    expect(h.sizeBytes()).toBeLessThanOrEqual(1024 * 1024);
    expect(h.oldestRevision()).toBe(4);
    // a batch that does not follow (a peer snapshot was installed up to 99): older revisions are gone
    await h.append(100, 101, [put('z', '1', 101)], 0);
    expect([h.oldestRevision(), h.lastRevision()]).toEqual([100, 101]);
    await h.close();
    // the engine is ahead of the history (the history's tail was not durable): restart at the applied index
    const again = await open(150);
    expect([again.oldestRevision(), again.lastRevision()]).toEqual([151, 150]);
    expect(again.page({ ...all, fromRevision: 120, toRevision: 0 }, 1 << 20).result).toBe(WatchHistoryResult.Compacted);
    await again.close();
  });

  it('skips revisions applied again after a restart (no duplicate events)', async () => {
    const h = await open(0);
    await h.append(1, 2, [put('a', '1', 1), put('a', '2', 2, 1, 2, '1')], 0);
    await h.close();
    const again = await open(1); // the engine lost entry 2; it is applied again
    await again.append(2, 3, [put('a', '2', 2, 1, 2, '1'), put('a', '3', 3, 1, 3, '2')], 0);
    expect(show(again.page({ ...all, fromRevision: 1, toRevision: 0 }, 1 << 20).events).map((s) => s.split(' ')[1])).toEqual(['a=1@1', 'a=2@2', 'a=3@3']);
    await again.close();
  });
});

describe('WatchSource', () => {
  it('splits a batch into chained messages under the payload bound, at revision boundaries, dropping a previous value that does not fit', () => {
    const src = new WatchSource('s1', () => 8 * 1024);
    const v = 'v'.repeat(1500);
    const evs = [put('a', v, 1), put('b', v, 1), put('c', v, 2), put('d', v, 3), put('e', v, 3), put('f', 'x', 4, 4, 2, 'p'.repeat(9000))];
    const msgs = src.encode(0, 9, evs).map(decodeWatchEvents);
    // chained: each message's prevRevision is the previous one's lastRevision; the last ends at the batch's
    expect(msgs.map((m) => [m.prevRevision, m.lastRevision])).toEqual([[0, 3], [3, 9]]);
    // revision 3's second event crosses the bound but stays with the first
    expect(msgs[0].events.map((e) => e.modRevision)).toEqual([1, 1, 2, 3, 3]);
    const f = msgs[1].events.find((e) => Buffer.from(e.key).toString() === 'f')!;
    expect([f.prevValue, f.prevOmitted]).toEqual([null, true]);
    expect(msgs.flatMap((m) => m.events)).toHaveLength(6);
  });

  it('answers a history request, UNAVAILABLE without a history', async () => {
    const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    const h = await WatchHistory.open({ dir, limits: LIMITS, fsyncPolicy: 'always', appliedIndex: 0 });
    await h.append(1, 1, [put('a', '1', 1)], 0);
    const src = new WatchSource('s1', () => 1 << 20);
    const req = encodeWatchHistoryRequest({ fromRevision: 1, toRevision: 0, start: Buffer.alloc(0), end: null, bytesMax: 1 << 20, eventsMax: 10 });
    expect(decodeWatchHistoryReply(src.history(req, h, () => undefined))).toMatchObject({ result: WatchHistoryResult.Ok, nextRevision: 2, lastRevision: 1 });
    expect(decodeWatchHistoryReply(src.history(req, null, () => undefined)).result).toBe(WatchHistoryResult.Unavailable);
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
