import { WatchCancelReason, WatchEventType, type WatchEvent } from '@cairn/protocol';
import { Watcher, WatchersFullError, type WatchHub, type WatchRequest, type WatchSink } from '../watch/watch-hub';
import type { RespClient } from './commands';
import { RespPubSub } from './pubsub';

/** The replies in `b`, decoded to nested strings / numbers / null. */
function decode(b: Buffer): unknown[] {
  const out: unknown[] = [];
  let i = 0;
  const line = () => {
    const end = b.indexOf('\r\n', i);
    const s = b.toString('latin1', i, end);
    i = end + 2;
    return s;
  };
  const one = (): unknown => {
    const l = line();
    if (l[0] === '*') return Array.from({ length: Number(l.slice(1)) }, one);
    if (l[0] === ':') return Number(l.slice(1));
    if (l[0] === '-') return `ERR:${l.slice(1)}`;
    if (l === '$-1') return null;
    const n = Number(l.slice(1));
    const s = b.toString('latin1', i, i + n);
    i += n + 2;
    return s;
  };
  while (i < b.length) out.push(one());
  return out;
}

const put = (key: string, rev: number): WatchEvent => ({ type: WatchEventType.Put, key: Buffer.from(key), value: Buffer.from('v'), modRevision: rev, createRevision: rev, version: 1, prevValue: null });
const del = (key: string, rev: number): WatchEvent => ({ ...put(key, rev), type: WatchEventType.Delete, value: Buffer.alloc(0), createRevision: 0, version: 0 });
const args = (...a: string[]) => a.map((x) => Buffer.from(x));
const client = {} as RespClient;

function setup(opts: { subscriptionsMax?: number; full?: boolean; refused?: (bytes: number) => boolean } = {}) {
  const opened: { req: WatchRequest; sink: WatchSink; watcher: Watcher; canceled: boolean }[] = [];
  const hub = {
    open(req: WatchRequest, sink: WatchSink) {
      if (opts.full) throw new WatchersFullError('100000 watches are open on this gateway (gateway.watchersMax)');
      const watcher = new Watcher(req, sink, 11, 0);
      opened.push({ req, sink, watcher, canceled: false });
      return { watcher, revision: 10 };
    },
    cancel(w: Watcher) {
      opened.find((o) => o.watcher === w)!.canceled = true;
    },
  } satisfies Pick<WatchHub, 'open' | 'cancel'>;
  const pushed: Buffer[] = [];
  const closes: Buffer[] = [];
  let flushes = 0;
  const ps = new RespPubSub({ hub, subscriptionsMax: opts.subscriptionsMax ?? 8 }, { push: (b, flushed) => (pushed.push(b), flushed()), close: (b) => closes.push(b), refused: opts.refused });
  const run = (...a: string[]) => decode(ps.handle(args(...a), client) as Buffer);
  const emit = (events: WatchEvent[]) => opened[opened.length - 1].sink.events(events, events[events.length - 1].modRevision, () => flushes++);
  return { ps, opened, pushed, closes, run, emit, flushes: () => flushes };
}

describe('RespPubSub (keyspace notifications)', () => {
  it("the hub watch asks the connection whether it refuses more (the gateway at pendingBytesMax); a connection that cannot say never refuses", () => {
    const asked: number[] = [];
    const t = setup({ refused: (bytes) => (asked.push(bytes), bytes > 100) });
    t.run('SUBSCRIBE', '__keyevent@0__:set');
    expect([t.opened[0].sink.refused!(50), t.opened[0].sink.refused!(500)]).toEqual([false, true]);
    expect(asked).toEqual([50, 500]);
    const u = setup();
    u.run('SUBSCRIBE', '__keyevent@0__:set');
    expect(u.opened[0].sink.refused!(1 << 30)).toBe(false);
  });

  it('SUBSCRIBE / PSUBSCRIBE reply per channel with the count; changes become keyspace then keyevent messages, patterns pmessages', () => {
    const t = setup();
    expect(t.run('SUBSCRIBE', '__keyspace@0__:a', '__keyevent@0__:del')).toEqual([
      ['subscribe', '__keyspace@0__:a', 1],
      ['subscribe', '__keyevent@0__:del', 2],
    ]);
    expect(t.run('psubscribe', '__key*__:b*')).toEqual([['psubscribe', '__key*__:b*', 3]]);
    expect(t.opened).toHaveLength(1); // one hub watch for every subscription of the connection
    expect(t.opened[0].req).toMatchObject({ start: Buffer.alloc(0), end: null, startRevision: 0 });
    t.emit([put('a', 11), put('b1', 11), del('a', 12), put('zzz', 12)]);
    expect(t.pushed.flatMap(decode)).toEqual([
      ['message', '__keyspace@0__:a', 'set'],
      ['pmessage', '__key*__:b*', '__keyspace@0__:b1', 'set'],
      ['message', '__keyspace@0__:a', 'del'],
      ['message', '__keyevent@0__:del', 'a'],
    ]);
    expect(t.flushes()).toBe(1);
    // A frame with nothing for this connection is flushed at once (the hub's SLOW bound counts unflushed events).
    t.emit([put('zzz', 13)]);
    expect(t.flushes()).toBe(2);
  });

  it('a delete by an expiry is `expired` on both channels (Redis notify.c NOTIFY_EXPIRED), any other delete `del`', () => {
    const t = setup();
    t.run('SUBSCRIBE', '__keyspace@0__:a', '__keyevent@0__:expired', '__keyevent@0__:del');
    t.emit([{ ...del('a', 12), expired: true }, del('b', 13)]);
    expect(t.pushed.flatMap(decode)).toEqual([
      ['message', '__keyspace@0__:a', 'expired'],
      ['message', '__keyevent@0__:expired', 'a'],
      ['message', '__keyevent@0__:del', 'b'],
    ]);
  });

  it('in subscribe mode only (P)(UN)SUBSCRIBE, PING and QUIT run; UNSUBSCRIBE of all leaves it and ends the hub watch', () => {
    const t = setup();
    expect(t.ps.handle(args('GET', 'k'), client)).toBeNull();
    t.run('SUBSCRIBE', 'x');
    expect(t.run('GET', 'k')).toEqual([expect.stringMatching(/^ERR:ERR Can't execute 'get': only \(P\|S\)SUBSCRIBE/)]);
    expect(t.run('PING')).toEqual([['pong', '']]);
    expect(t.run('PING', 'hi')).toEqual([['pong', 'hi']]);
    expect(t.ps.handle(args('QUIT'), client)).toBeNull();
    t.run('PSUBSCRIBE', 'p*');
    expect(t.run('UNSUBSCRIBE')).toEqual([['unsubscribe', 'x', 1]]);
    expect(t.opened[0].canceled).toBe(false);
    expect(t.run('PUNSUBSCRIBE')).toEqual([['punsubscribe', 'p*', 0]]);
    expect(t.opened[0].canceled).toBe(true);
    expect(t.run('UNSUBSCRIBE')).toEqual([['unsubscribe', null, 0]]);
    expect(t.ps.handle(args('GET', 'k'), client)).toBeNull();
    expect(t.run('SUBSCRIBE')).toEqual(["ERR:ERR wrong number of arguments for 'subscribe' command"]);
  });

  it('bounds: watchesPerConnectionMax subscriptions, watchersMax hub watches; a SLOW cancel disconnects the subscriber, UNAVAILABLE re-opens from the next revision', () => {
    const t = setup({ subscriptionsMax: 2 });
    expect(t.run('SUBSCRIBE', 'a', 'b', 'c')).toEqual([['subscribe', 'a', 1], ['subscribe', 'b', 2], expect.stringMatching(/^ERR:ERR 2 subscriptions/)]);
    t.emit([put('k', 20)]);
    t.opened[0].sink.canceled(WatchCancelReason.Unavailable, 0, 'UNAVAILABLE');
    expect(t.opened).toHaveLength(2);
    expect(t.opened[1].req.startRevision).toBe(21);
    expect(t.closes).toHaveLength(0);
    t.opened[1].sink.canceled(WatchCancelReason.Slow, 0, 'watch cancelled: its connection did not take its events');
    expect(decode(t.closes[0])).toEqual([expect.stringMatching(/^ERR:ERR keyspace notifications ended: watch cancelled/)]);

    const full = setup({ full: true });
    expect(full.run('SUBSCRIBE', 'a')).toEqual([expect.stringMatching(/^ERR:ERR 100000 watches/)]);
    expect(full.ps.count()).toBe(0);
  });
});
